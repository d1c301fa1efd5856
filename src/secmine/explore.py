"""The thread explorer behind ``notebooks/explore.ipynb`` (``make explore``).

:func:`load_threads` joins the classified corpus (``data/processed/classified.parquet``), the corpus
titles and bodies (``data/raw/corpus``), the keyword matches (``data/interim/keywords.parquet``) and
the coded sample (the replication package's, or your own coding) into one frame, one row a thread,
with a **short excerpt** only (the first :data:`EXCERPT_CHARS` characters of the body, e-mail
addresses masked: texts can hold personal data).  :class:`Filters` and :func:`apply_filters` select
threads by platform, kind, repository, year, keyword, classifier probability and -- for coded posts --
theme, sub-theme and code; :func:`summary` counts what is selected; :func:`thread_cards` renders
title, excerpt and URL.  :func:`explorer` builds the ipywidgets interface from these functions
(works offline: the widgets need only the running kernel).
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.replication import CodedSample

EXCERPT_CHARS = 240
CARDS = 20
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SPACE_RE = re.compile(r"\s+")
LIST_COLUMNS = ("keywords", "themes", "sub_themes", "codes")
COLUMNS = ["id", "platform", "kind", "source", "repo", "number", "year", "keyword_match", "keywords", "probability",
           "label", "coded", "themes", "sub_themes", "codes", "title", "excerpt", "url"]


class ExploreInputError(ValueError):
    """An input of the explorer is missing or malformed; the message says which and what to run."""


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line excerpt of ``text`` with e-mail addresses masked."""
    flat = _SPACE_RE.sub(" ", _EMAIL_RE.sub("[email]", text if isinstance(text, str) else "")).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "\u2026"


def coded_labels(sample: CodedSample, posts: pd.DataFrame) -> pd.DataFrame:
    """Per coded thread (``id``: the corpus thread id): its ``themes``, ``sub_themes`` and ``codes``
    (sorted lists, issue and solution codes together)."""
    import pandas as pd

    ids = posts.set_index("post_id")["thread_id"]
    mentions = sample.mentions.assign(id=sample.mentions["post_id"].map(ids))
    grouped = mentions.groupby("id")
    out = pd.DataFrame({
        "themes": grouped["theme"].agg(lambda s: sorted(set(s))),
        "sub_themes": grouped["sub_theme"].agg(lambda s: sorted(set(s))),
        "codes": grouped["code"].agg(lambda s: sorted(set(s))),
    }).reset_index()
    coded_ids = set(posts.loc[posts["post_id"].isin(set(sample.posts["post_id"])), "thread_id"])
    missing = sorted(coded_ids - set(out["id"]))
    if missing:  # coded posts without a code of either type
        out = pd.concat([out, pd.DataFrame({"id": missing, "themes": [[]] * len(missing),
                                            "sub_themes": [[]] * len(missing), "codes": [[]] * len(missing)})])
    return out.sort_values("id").reset_index(drop=True)


def load_threads(
    classified: str | os.PathLike[str] | pd.DataFrame = "data/processed/classified.parquet",
    corpus: str | os.PathLike[str] | pd.DataFrame | None = "data/raw/corpus",
    *,
    keywords: str | os.PathLike[str] | pd.DataFrame | None = "data/interim/keywords.parquet",
    coded: pd.DataFrame | None = None,
    replication_dir: str | os.PathLike[str] | None = "data/external/ai_sec_dev",
) -> pd.DataFrame:
    """One row a classified thread with its title, excerpt, URL, keywords and (for coded posts) labels.

    ``coded``: :func:`coded_labels`'s frame; by default the replication package's coded sample
    (``replication_dir``), left out when the package is absent."""
    import pandas as pd

    from secmine.analysis.data import AnalysisInputError, check_classified, load_classified, source_name
    from secmine.schema import thread_url

    if isinstance(classified, pd.DataFrame):
        frame = check_classified(classified, where="classified frame")
    else:
        try:
            frame = load_classified(classified)
        except AnalysisInputError as exc:
            raise ExploreInputError(f"{exc} -- `make repro` builds it") from None
    texts = _corpus_texts(corpus, set(frame["id"]))
    frame = frame.merge(texts, on="id", how="left")
    frame["title"] = frame["title"].fillna("")
    frame["excerpt"] = frame["body"].map(excerpt)
    frame["url"] = [u if isinstance(u, str) and u else thread_url(p, k, r, int(n))
                    for u, p, k, r, n in zip(frame["url"], frame["platform"], frame["kind"], frame["repo"], frame["number"])]
    frame["source"] = [source_name(p, k) for p, k in zip(frame["platform"], frame["kind"])]
    frame["year"] = frame["created"].dt.year.astype("Int64")
    frame["keywords"] = _keywords(keywords, frame["id"])
    if coded is None and replication_dir is not None and Path(replication_dir, "theme", "mapped.csv").is_file():
        from secmine.replication import load_coded_sample, load_posts

        posts = load_posts(replication_dir)
        coded = coded_labels(load_coded_sample(replication_dir, posts=posts), posts)
    if coded is not None:
        frame = frame.merge(coded, on="id", how="left")
    for column in ("themes", "sub_themes", "codes"):
        if column not in frame.columns:
            frame[column] = None
        frame[column] = [v if isinstance(v, list) else [] for v in frame[column]]
    frame["coded"] = frame["id"].isin(set(coded["id"])) if coded is not None else False
    return frame[COLUMNS].sort_values("id").reset_index(drop=True)


def _corpus_texts(corpus: str | os.PathLike[str] | pd.DataFrame | None, ids: set[str]) -> pd.DataFrame:
    import pandas as pd

    empty = pd.DataFrame({"id": pd.Series(dtype=str), "title": pd.Series(dtype=str), "body": pd.Series(dtype=str),
                          "url": pd.Series(dtype=str)})
    if corpus is None:
        return empty
    if isinstance(corpus, pd.DataFrame):
        frame = corpus
    else:
        if not Path(corpus).exists():
            return empty
        from secmine.collect.corpus import read_corpus

        frame = read_corpus(corpus, columns=["id", "title", "body", "url"])
    for column in ("title", "body", "url"):
        if column not in frame.columns:
            frame = frame.assign(**{column: ""})
    frame = frame[frame["id"].isin(ids)][["id", "title", "body", "url"]]
    return frame.drop_duplicates("id")


def _keywords(keywords: str | os.PathLike[str] | pd.DataFrame | None, ids: pd.Series) -> list[list[str]]:
    import pandas as pd

    if keywords is None:
        return [[] for _ in ids]
    if not isinstance(keywords, pd.DataFrame):
        if not Path(keywords).is_file():
            return [[] for _ in ids]
        keywords = pd.read_parquet(keywords, columns=["id", "matched_keywords"])
    found = {i: sorted(str(k) for k in (ks if ks is not None else [])) for i, ks in
             zip(keywords["id"], keywords["matched_keywords"])}
    return [found.get(i, []) for i in ids]


@dataclass
class Filters:
    """What to show; an empty tuple (or None) means "any"."""

    platforms: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    repos: tuple[str, ...] = ()
    years: tuple[int, int] | None = None  # inclusive; undated threads drop out when set
    keyword: str = ""  # one of the matched keywords ("" any)
    text: str = ""  # case-insensitive search in titles and excerpts
    probability: tuple[float, float] = (0.0, 1.0)
    security_only: bool = False
    coded_only: bool = False
    themes: tuple[str, ...] = ()
    sub_themes: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def apply_filters(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The threads of ``frame`` that pass every filter (theme, sub-theme and code filters keep only
    coded posts holding one of the chosen labels)."""
    import numpy as np

    keep = np.ones(len(frame), dtype=bool)
    for column, chosen in (("platform", filters.platforms), ("kind", filters.kinds), ("repo", filters.repos)):
        if chosen:
            keep &= frame[column].isin(chosen).to_numpy()
    if filters.years is not None:
        low, high = filters.years
        year = frame["year"]
        keep &= (year.notna() & (year.fillna(0) >= low) & (year.fillna(0) <= high)).to_numpy()
    if filters.keyword:
        keep &= frame["keywords"].map(lambda ks: filters.keyword in ks).to_numpy()
    if filters.text:
        needle = filters.text.casefold()
        keep &= (frame["title"].str.casefold().str.contains(needle, regex=False)
                 | frame["excerpt"].str.casefold().str.contains(needle, regex=False)).to_numpy()
    low, high = filters.probability
    if (low, high) != (0.0, 1.0):
        keep &= frame["probability"].between(low, high).to_numpy()
    if filters.security_only:
        keep &= (frame["label"] == 1).to_numpy()
    if filters.coded_only or filters.themes or filters.sub_themes or filters.codes:
        keep &= frame["coded"].to_numpy(bool)
    for column, chosen in (("themes", filters.themes), ("sub_themes", filters.sub_themes), ("codes", filters.codes)):
        if chosen:
            wanted = set(chosen)
            keep &= frame[column].map(lambda labels: bool(wanted.intersection(labels))).to_numpy()
    return frame[keep]


def summary(selected: pd.DataFrame) -> pd.DataFrame:
    """Per source: threads selected, security threads among them (classifier label 1), coded posts."""
    import pandas as pd

    if selected.empty:
        return pd.DataFrame({"source": ["all"], "threads": [0], "security": [0], "coded": [0]})
    grouped = selected.groupby("source", sort=True).agg(
        threads=("id", "size"), security=("label", lambda s: int((s == 1).sum())), coded=("coded", "sum"))
    table = grouped.reset_index()
    total = pd.DataFrame({"source": ["all"], "threads": [len(selected)], "security": [int((selected["label"] == 1).sum())],
                          "coded": [int(selected["coded"].sum())]})
    out = pd.concat([table, total], ignore_index=True)
    out["coded"] = out["coded"].astype("int64")
    return out


def options(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """The values each filter can take, sorted (for the widgets)."""
    def flat(column: str) -> list[str]:
        return sorted({label for labels in frame[column] for label in labels})

    years = sorted(int(y) for y in frame["year"].dropna().unique())
    return {
        "platforms": sorted(frame["platform"].unique()), "kinds": sorted(frame["kind"].unique()),
        "repos": sorted(frame["repo"].unique()), "years": years, "keywords": flat("keywords"),
        "themes": flat("themes"), "sub_themes": flat("sub_themes"), "codes": flat("codes"),
    }


def thread_cards(selected: pd.DataFrame, limit: int = CARDS) -> str:
    """HTML for the first ``limit`` threads (by descending probability, then id): title, short
    excerpt, URL; everything escaped."""
    rows = selected.sort_values(["probability", "id"], ascending=[False, True]).head(limit)
    cards = []
    for row in rows.itertuples(index=False):
        title = html.escape(row.title or "(no title in the corpus)")
        labels = ", ".join(row.codes) if row.codes else ""
        meta = f"{html.escape(row.source)} &middot; {html.escape(row.repo)} &middot; p = {row.probability:.2f}"
        if labels:
            meta += f" &middot; codes: {html.escape(labels)}"
        cards.append(
            f'<div style="margin:.4em 0;padding:.4em;border:1px solid #ddd">'
            f'<b>{title}</b><br><small>{meta}</small><br>{html.escape(row.excerpt)}<br>'
            f'<a href="{html.escape(row.url)}" target="_blank" rel="noopener">{html.escape(row.url)}</a></div>'
        )
    more = len(selected) - len(rows)
    if more > 0:
        cards.append(f"<p>... and {more:,} more (narrow the filters).</p>")
    return "".join(cards) or "<p>No thread matches these filters.</p>"


def explorer(frame: pd.DataFrame, *, cards: int = CARDS) -> Any:
    """The ipywidgets interface: filter widgets, the counts table and the thread cards; every
    change re-applies the filters.  Returns the top-level widget (its ``.children`` hold the parts)."""
    import ipywidgets as w

    opts = options(frame)
    years = opts["years"] or [0]

    def multi(name: str, values: list[str]) -> Any:
        return w.SelectMultiple(options=values, description=name, rows=min(6, max(2, len(values))),
                                layout=w.Layout(width="32%"))

    controls = {
        "platforms": multi("platform", opts["platforms"]),
        "kinds": multi("kind", opts["kinds"]),
        "repos": multi("repository", opts["repos"]),
        "years": w.IntRangeSlider(value=(years[0], years[-1]), min=years[0], max=years[-1], description="year"),
        "keyword": w.Dropdown(options=["", *opts["keywords"]], value="", description="keyword"),
        "text": w.Text(value="", description="search", placeholder="in titles and excerpts"),
        "probability": w.FloatRangeSlider(value=(0.0, 1.0), min=0.0, max=1.0, step=0.05, description="probability"),
        "security_only": w.Checkbox(value=False, description="security threads only"),
        "coded_only": w.Checkbox(value=False, description="coded posts only"),
        "themes": multi("theme", opts["themes"]),
        "sub_themes": multi("sub-theme", opts["sub_themes"]),
        "codes": multi("code", opts["codes"]),
    }
    counts = w.HTML()
    listing = w.HTML()

    def current() -> Filters:
        years_value = controls["years"].value
        full_span = tuple(years_value) == (years[0], years[-1])
        return Filters(
            platforms=tuple(controls["platforms"].value), kinds=tuple(controls["kinds"].value),
            repos=tuple(controls["repos"].value), years=None if full_span else tuple(years_value),
            keyword=controls["keyword"].value, text=controls["text"].value.strip(),
            probability=tuple(controls["probability"].value), security_only=controls["security_only"].value,
            coded_only=controls["coded_only"].value, themes=tuple(controls["themes"].value),
            sub_themes=tuple(controls["sub_themes"].value), codes=tuple(controls["codes"].value),
        )

    def refresh(_: Any = None) -> None:
        selected = apply_filters(frame, current())
        counts.value = summary(selected).to_html(index=False)
        listing.value = thread_cards(selected, cards)

    for control in controls.values():
        control.observe(refresh, names="value")
    refresh()
    box = w.VBox([
        w.HBox([controls["platforms"], controls["kinds"], controls["repos"]]),
        w.HBox([controls["years"], controls["probability"]]),
        w.HBox([controls["keyword"], controls["text"], controls["security_only"], controls["coded_only"]]),
        w.HBox([controls["themes"], controls["sub_themes"], controls["codes"]]),
        counts, listing,
    ])
    box.controls = controls  # for tests and for scripting the explorer
    box.counts, box.listing = counts, listing
    return box


__all__ = ["CARDS", "EXCERPT_CHARS", "ExploreInputError", "Filters", "apply_filters", "coded_labels", "excerpt",
           "explorer", "load_threads", "options", "summary", "thread_cards"]
