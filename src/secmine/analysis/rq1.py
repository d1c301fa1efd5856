"""RQ1: how much security reporting there is in AI projects, where, and how it grows.

From the classified corpus (``classify`` stage) and the corpus texts (``collect`` stage):

* security threads per source (platform and kind): counts and proportions with Wilson intervals;
* keyword matching against the classifier;
* growth: monthly and yearly counts, the security share of all threads, and a fitted exponential
  growth rate with its interval (:func:`secmine.analysis.stats.growth_rate`);
* concentration across projects: top projects, Lorenz curves, Gini coefficients;
* CVE and CWE identifiers mentioned in security threads, and the most frequent ones;
* Hugging Face: by pipeline task and base versus downstream model, when the model metadata
  (``data/raw/models.parquet``, collected in live mode) is there;
* the paper's own per-project distribution, from the replication package's id lists.

Tables show ids, repositories and links, never thread text.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from secmine.analysis import stats
from secmine.analysis.data import _comment_bodies, repo_url, source_order, thread_texts
from secmine.schema import SOURCE_NAMES, source_name

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

CVE_RE = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.IGNORECASE)
CWE_RE = re.compile(r"\bCWE-\d+\b", re.IGNORECASE)
DIGITS = 6
PLATFORM_NAMES = {"github": "GitHub", "huggingface": "Hugging Face"}
CLASSIFIED_BATCH_ROWS = 50_000  # rows of the classified file checked and counted at a time


@dataclass(frozen=True)
class RQ1Params:
    """The ``rq1`` parameters (``params.yaml``)."""

    confidence: float = 0.95
    top_n: int = 20
    growth_model: str = "quasipoisson"
    min_growth_months: int = 6
    drop_incomplete_last_month: bool = True
    growth_start: str = ""  # YYYY-MM, empty = first month with data
    growth_end: str = ""  # YYYY-MM, empty = last (complete) month


@dataclass
class RQ1Result:
    """Everything the notebook shows: tables by name, figures by name, metrics."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- extent ----------------------------------------------------------------------------------------


SELECTED_ORIGINS: tuple[str, ...] = ("replication",)
RATE_BASIS_UNSELECTED = "threads not selected as security posts"
RATE_BASIS_NONE = "none: every thread was selected as a security post"


def selected_mask(classified: pd.DataFrame) -> Any:
    """True for threads that were selected as security posts (``origin`` in :data:`SELECTED_ORIGINS`:
    the replication package's coded posts); all False without an ``origin`` column."""
    if "origin" not in classified.columns:
        return np.zeros(len(classified), dtype=bool)
    return classified["origin"].isin(SELECTED_ORIGINS).to_numpy()


# -- the classified corpus, counted in bounded memory -----------------------------------------------

EXTENT_KEYS: tuple[str, ...] = ("platform", "kind", "source", "origin", "created", "label", "keyword_match")
PROJECT_KEYS: tuple[str, ...] = ("platform", "kind", "source", "repo", "origin", "label")


@dataclass
class ClassifiedCounts:
    """The classified corpus as the RQ1 tables need it, held in memory that does not follow the
    number of threads:

    * ``extent``: threads per :data:`EXTENT_KEYS` (``created`` is the UTC day; NaT when undated),
      count in ``n`` — a few rows per source and day;
    * ``projects``: threads per :data:`PROJECT_KEYS`, count in ``n`` — rows per repository;
    * ``rename_rows``: one row per thread, only for the repositories a rename could merge
      (:func:`secmine.analysis.renames.candidate_repositories`), in id order;
    * ``security_ids``: the ids of the security threads (label 1), sorted — texts are read for
      those only (CVE/CWE identifiers);
    * ``origins_known``: whether the corpus said which threads are the replication package's coded
      posts (``origin`` ``replication``; else ``origin`` is empty everywhere).

    Every function of this module takes a counted frame (rows weighted by ``n``) as well as one
    row per thread.
    """

    extent: pd.DataFrame
    projects: pd.DataFrame
    rename_rows: pd.DataFrame
    security_ids: list[str]
    candidates: set[tuple[str, str]]
    origins_known: bool


def selected_ids(corpus: str | os.PathLike[str] | pd.DataFrame | None) -> set[str] | None:
    """Ids of the corpus threads selected as security posts (origin in :data:`SELECTED_ORIGINS`:
    the part of the corpus ``source`` before the colon); None without a corpus or ``source``.
    A corpus folder is streamed (``id``/``source`` only); the set is as small as the selection."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if corpus is None:
        return None
    if not isinstance(corpus, (str, os.PathLike)):
        if "source" not in corpus.columns:
            return None
        origin = corpus["source"].astype(str).str.split(":").str[0]
        return set(corpus.loc[origin.isin(SELECTED_ORIGINS), "id"].astype(str))
    if not Path(corpus).exists():
        return None
    from secmine.collect.corpus import iter_batches

    out: set[str] = set()
    for batch in iter_batches(corpus, columns=["id", "source"]):
        origin = pc.list_element(pc.split_pattern(batch.column("source"), ":", max_splits=1), 0)
        chosen = pc.is_in(origin, value_set=pa.array(list(SELECTED_ORIGINS), pa.string()))
        out.update(batch.column("id").filter(pc.fill_null(chosen, False)).to_pylist())
    return out


def count_classified(
    batches: Any,
    selected: set[str] | None,
) -> ClassifiedCounts:
    """Count the classified corpus (:class:`ClassifiedCounts`).  ``batches`` is a callable that
    returns an iterator of checked frames (:func:`secmine.analysis.data.iter_classified`); it is
    called twice: once to count, once to keep the threads of the repositories a rename could merge.
    ``selected``: ids selected as security posts (:func:`selected_ids`)."""
    import pandas as pd
    from tqdm.auto import tqdm

    from secmine.analysis import renames

    chosen = selected or set()

    def with_origin(frame: pd.DataFrame) -> pd.DataFrame:
        origin = np.where(frame["id"].isin(chosen), SELECTED_ORIGINS[0], "") if chosen else ""
        return frame.assign(origin=origin, created=frame["created"].dt.floor("D"))

    extent_parts, project_parts, security_parts = [], [], []
    progress = tqdm(desc="rq1: counting threads", unit="thread", mininterval=5, disable=None)
    for frame in batches():
        frame = with_origin(frame)
        extent_parts.append(_count(frame, EXTENT_KEYS))
        project_parts.append(_count(frame, PROJECT_KEYS))
        security_parts.append(frame.loc[frame["label"] == 1, "id"].astype(str).to_numpy())
        progress.update(len(frame))
    progress.close()
    extent = _combine(extent_parts, EXTENT_KEYS)
    projects = _combine(project_parts, PROJECT_KEYS)
    unselected = projects[~selected_mask(projects)]
    candidates = renames.candidate_repositories(unselected)
    rows = []
    if candidates:
        wanted = pd.DataFrame(sorted(candidates), columns=["platform", "repo"])
        for frame in batches():
            part = frame.merge(wanted, on=["platform", "repo"], how="inner")
            if len(part):
                rows.append(with_origin(part))
    columns = [*(c for c in ("id", "platform", "kind", "repo", "number", "label", "origin"))]
    rename_rows = (
        pd.concat([r[columns] for r in rows], ignore_index=True).sort_values("id", kind="stable").reset_index(drop=True)
        if rows
        else pd.DataFrame({c: pd.Series(dtype="int64" if c in ("number", "label") else object) for c in columns})
    )
    security = sorted(str(i) for part in security_parts for i in part)
    return ClassifiedCounts(extent, projects, rename_rows, security, candidates, selected is not None)


def _count(frame: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    return frame.groupby(list(keys), sort=False, dropna=False).size().rename("n").reset_index()


def _combine(parts: list[pd.DataFrame], keys: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.concat(parts, ignore_index=True)
    combined = frame.groupby(list(keys), sort=True, dropna=False)["n"].sum().reset_index()
    combined["n"] = combined["n"].astype("int64")
    return combined


def security_by_source(classified: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Threads and security threads (classifier label 1) per source, and the security share with
    its Wilson interval **over the threads not selected as security posts only**.

    A rate needs an unselected denominator: the replication package's coded posts (``origin``
    ``replication``) were sampled from the paper's security discussions, so their share of
    security threads says nothing about a population.  Columns: ``threads, security`` (all),
    ``selected`` (threads selected as security posts), ``rate_threads, rate_security`` (the
    denominator and numerator of the rate), ``proportion, ci_low, ci_high`` (NaN when every thread
    of the source was selected) and ``rate_basis``."""
    import pandas as pd

    selected = selected_mask(classified)
    n = _weights(classified)
    frame = pd.DataFrame(
        {
            "source": classified["source"].to_numpy(),
            "_n": n,
            "is_security": (classified["label"] == 1).to_numpy(),
            "_selected": selected,
        }
    )
    frame["_security_n"] = frame["is_security"] * n
    frame["_selected_n"] = selected * n
    unselected = frame[~frame["_selected"]]
    rates = stats.proportion_table(unselected, ["source"], "is_security", weight="_n", confidence=confidence,
                                   digits=DIGITS)
    rates = rates.rename(columns={"n": "rate_threads", "count": "rate_security"})
    totals = frame.groupby("source").agg(
        threads=("_n", "sum"), security=("_security_n", "sum"), selected=("_selected_n", "sum")
    )
    all_row = pd.DataFrame(
        {
            "threads": [int(n.sum())],
            "security": [int(frame["_security_n"].sum())],
            "selected": [int(frame["_selected_n"].sum())],
        },
        index=pd.Index(["all"], name="source"),
    )
    totals = pd.concat([totals, all_row]).reset_index().rename(columns={"index": "source"})
    table = totals.merge(rates, on="source", how="left")
    for column in ("threads", "security", "selected"):
        table[column] = table[column].astype("int64")
    for column in ("rate_threads", "rate_security"):
        table[column] = table[column].fillna(0).astype("int64")
    table["rate_basis"] = [RATE_BASIS_UNSELECTED if n else RATE_BASIS_NONE for n in table["rate_threads"]]
    columns = ["source", "threads", "security", "selected", "rate_threads", "rate_security", "proportion",
               "ci_low", "ci_high", "rate_basis"]
    return _order_sources(table[columns])


def keyword_vs_classifier(classified: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Keyword matching against the classifier per source: both, keyword only, classifier only,
    and the share of keyword matches the classifier confirms (with its Wilson interval)."""
    import pandas as pd

    rows = []
    groups = [(name, part) for name, part in classified.groupby("source", sort=True)]
    groups.append(("all", classified))
    for name, part in groups:
        n = _weights(part)
        keyword = part["keyword_match"].to_numpy(bool)
        model = (part["label"] == 1).to_numpy()
        n_keyword = int(n[keyword].sum())
        both = int(n[keyword & model].sum())
        low, high = stats.wilson_interval(both, n_keyword, confidence)
        rows.append(
            {
                "source": name,
                "threads": int(n.sum()),
                "keyword": n_keyword,
                "classifier": int(n[model].sum()),
                "both": both,
                "keyword_only": int(n[keyword & ~model].sum()),
                "classifier_only": int(n[~keyword & model].sum()),
                "neither": int(n[~keyword & ~model].sum()),
                "confirmed_share": _round(both / n_keyword) if n_keyword else math.nan,
                "confirmed_ci_low": _round(low),
                "confirmed_ci_high": _round(high),
            }
        )
    return _order_sources(pd.DataFrame(rows))


# -- growth ----------------------------------------------------------------------------------------


def _month_bounds(classified: pd.DataFrame, params: RQ1Params) -> tuple[pd.Period, pd.Period] | None:
    import pandas as pd

    dated = classified["created"].dropna()
    if dated.empty:
        return None
    first = dated.min().tz_convert(None).to_period("M")
    last = dated.max().tz_convert(None).to_period("M")
    latest = dated.max().tz_convert(None)
    if params.drop_incomplete_last_month and latest < (last + 1).to_timestamp() - pd.Timedelta(days=1):
        last = last - 1
    if params.growth_start:
        first = max(first, pd.Period(params.growth_start, freq="M"))
    if params.growth_end:
        last = min(last, pd.Period(params.growth_end, freq="M"))
    if last < first:
        return None
    return first, last


def monthly_counts(classified: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per source (and ``all``) and calendar month: threads, security threads, their share with
    its Wilson interval.  Months without threads inside a source's span are listed with zeros;
    threads without a creation date are left out."""
    return _period_counts(classified, "M", confidence)


def yearly_counts(classified: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """As :func:`monthly_counts`, by calendar year."""
    return _period_counts(classified, "Y", confidence)


def _period_counts(classified: pd.DataFrame, freq: str, confidence: float) -> pd.DataFrame:
    import pandas as pd

    dated = classified.dropna(subset=["created"])
    column = "month" if freq == "M" else "year"
    rows = []
    groups = [(name, part) for name, part in dated.groupby("source", sort=True)]
    groups.append(("all", dated))
    for name, part in groups:
        if part.empty:
            continue
        periods = part["created"].dt.tz_convert(None).dt.to_period(freq)
        span = pd.period_range(periods.min(), periods.max(), freq=freq)
        threads, security = _period_sums(periods, part, span)
        for period in span:
            n, k = int(threads[period]), int(security[period])
            low, high = stats.wilson_interval(k, n, confidence)
            rows.append(
                {
                    "source": name,
                    column: str(period),
                    "threads": n,
                    "security": k,
                    "share": _round(k / n) if n else math.nan,
                    "ci_low": _round(low),
                    "ci_high": _round(high),
                }
            )
    table = pd.DataFrame(
        rows, columns=["source", column, "threads", "security", "share", "ci_low", "ci_high"]
    )
    return _order_sources(table, keep=[column])


def _period_sums(periods: pd.Series, part: pd.DataFrame, span: pd.PeriodIndex) -> tuple[pd.Series, pd.Series]:
    """Threads and security threads per period of ``span`` (rows weighted by their ``n``)."""
    import pandas as pd

    n = _weights(part)
    security = n * (part["label"].to_numpy() == 1)
    sums = pd.DataFrame({"period": periods.array, "n": n, "s": security}).groupby("period")[["n", "s"]].sum()
    sums = sums.reindex(span, fill_value=0)
    return sums["n"].astype("int64"), sums["s"].astype("int64")


def growth_table(classified: pd.DataFrame, params: RQ1Params) -> pd.DataFrame:
    """Fitted exponential growth per source (and ``all``) of (a) the monthly number of security
    threads and (b) the security share of all threads (a rate model with all threads as exposure).

    The fit runs over complete months (``drop_incomplete_last_month``), from the first month a
    source has threads, within ``growth_start``..``growth_end``; sources with fewer than
    ``min_growth_months`` months or no security thread get no fit (a row with empty values).
    """
    import pandas as pd

    bounds = _month_bounds(classified, params)
    rows: list[dict[str, Any]] = []
    if bounds is None:
        return pd.DataFrame(columns=_GROWTH_COLUMNS)
    first, last = bounds
    dated = classified.dropna(subset=["created"])
    groups = [(name, part) for name, part in dated.groupby("source", sort=True)]
    groups.append(("all", dated))
    for name, part in groups:
        periods = part["created"].dt.tz_convert(None).dt.to_period("M")
        start = max(first, periods.min())
        span = pd.period_range(start, last, freq="M") if start <= last else pd.PeriodIndex([], freq="M")
        thread_counts, security_counts = _period_sums(periods, part, span)
        threads = thread_counts.to_numpy(float)
        security = security_counts.to_numpy(float)
        for measure in ("security threads", "security share"):
            row: dict[str, Any] = {"source": name, "measure": measure}
            usable = len(span) >= params.min_growth_months and security.sum() > 0
            if measure == "security share":
                # months without any thread carry no information about the share
                keep = threads > 0
                usable = usable and keep.sum() >= params.min_growth_months
            if not usable:
                row.update({"months": len(span), "total": int(security.sum()), "note": "too little data"})
                rows.append(row)
                continue
            if measure == "security threads":
                fit = stats.growth_rate(
                    security,
                    model=params.growth_model,
                    confidence=params.confidence,  # type: ignore[arg-type]
                    first_month=str(span[0]),
                    last_month=str(span[-1]),
                )
            else:
                # a rate model needs consecutive months only for the time axis; drop empty ones
                fit = stats.growth_rate(
                    security[keep],
                    exposure=threads[keep],
                    times=np.flatnonzero(keep),
                    model=params.growth_model,
                    confidence=params.confidence,  # type: ignore[arg-type]
                    first_month=str(span[0]),
                    last_month=str(span[-1]),
                )
            row.update(fit.as_dict(DIGITS))
            row["note"] = ""
            rows.append(row)
    table = pd.DataFrame(rows)
    for column in _GROWTH_COLUMNS:
        if column not in table.columns:
            table[column] = np.nan
    table = table[_GROWTH_COLUMNS]
    return _order_sources(
        table.assign(_m=table["measure"].map({"security threads": 0, "security share": 1})), keep=["_m"]
    ).drop(columns="_m")


_GROWTH_COLUMNS = [
    "source",
    "measure",
    "model",
    "first_month",
    "last_month",
    "months",
    "total",
    "beta_per_month",
    "beta_se",
    "monthly_rate",
    "annual_rate",
    "annual_ci_low",
    "annual_ci_high",
    "doubling_months",
    "dispersion",
    "note",
]


# -- concentration ---------------------------------------------------------------------------------


def project_counts(classified: pd.DataFrame) -> pd.DataFrame:
    """Per project (platform, repo): all threads and security threads."""
    import pandas as pd

    n = _weights(classified)
    frame = pd.DataFrame(
        {
            "platform": classified["platform"].to_numpy(),
            "repo": classified["repo"].to_numpy(),
            "threads": n,
            "security": n * (classified["label"] == 1).to_numpy(),
        }
    )
    counts = frame.groupby(["platform", "repo"], sort=True)[["threads", "security"]].sum().reset_index()
    counts["threads"] = counts["threads"].astype("int64")
    counts["security"] = counts["security"].astype("int64")
    return counts


def top_projects(counts: pd.DataFrame, n: int = 20, *, value: str = "security") -> pd.DataFrame:
    """The ``n`` projects with the most security threads (ties by name), with their share of all
    security threads and the cumulative share; a link to each project."""
    ranked = counts[counts[value] > 0].sort_values([value, "platform", "repo"], ascending=[False, True, True])
    total = ranked[value].sum()
    ranked = ranked.assign(
        share=(ranked[value] / total).round(DIGITS) if total else np.nan,
        cumulative_share=(ranked[value].cumsum() / total).round(DIGITS) if total else np.nan,
    ).head(n)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    ranked["platform"] = ranked["platform"].map(lambda p: PLATFORM_NAMES.get(p, p))
    ranked["url"] = [repo_url(_platform_key(p), r) for p, r in zip(ranked["platform"], ranked["repo"])]
    if "threads" in ranked.columns:
        ranked["security_rate"] = (ranked[value] / ranked["threads"]).round(DIGITS)
    return ranked.reset_index(drop=True)


def _platform_key(name: str) -> str:
    return {v: k for k, v in PLATFORM_NAMES.items()}.get(name, name)


def concentration_table(
    counts: pd.DataFrame, *, value: str = "security", by: str = "platform"
) -> pd.DataFrame:
    """Per group (and ``all``): projects, projects with a security thread, Gini over projects with
    one (and over all projects, zeros included, when ``threads`` is known), share of the top 10%
    and top 10 projects."""
    import pandas as pd

    rows = []
    groups = [(name, part) for name, part in counts.groupby(by, sort=True)]
    if len(groups) > 1:
        groups.append(("all", counts))
    for name, part in groups:
        values = part[value].to_numpy(float)
        positive = values[values > 0]
        rows.append(
            {
                by: PLATFORM_NAMES.get(name, name),
                "projects": int(values.size),
                "projects_with_security": int(positive.size),
                "security": int(values.sum()),
                "gini": _round(stats.gini(positive)) if positive.size else math.nan,
                "gini_all_projects": _round(stats.gini(values))
                if values.size and "threads" in part
                else math.nan,
                "top10pct_share": _round(stats.top_share(positive, 0.10)) if positive.size else math.nan,
                "top10_share": _round(np.sort(positive)[::-1][:10].sum() / positive.sum())
                if positive.size
                else math.nan,
            }
        )
    return pd.DataFrame(rows)


# -- CVE and CWE -----------------------------------------------------------------------------------


def find_identifiers(text: str) -> tuple[list[str], list[str]]:
    """Distinct CVE and CWE identifiers in a text, upper-cased and sorted."""
    cves = sorted({m.upper() for m in CVE_RE.findall(text or "")})
    cwes = sorted({m.upper() for m in CWE_RE.findall(text or "")})
    return cves, cwes


def identifier_mentions(classified: pd.DataFrame, texts: pd.DataFrame) -> pd.DataFrame:
    """One row per (thread, identifier): ``id, source, repo, kind_of_id (CVE|CWE), identifier``."""
    import pandas as pd
    from tqdm.auto import tqdm

    merged = classified[["id", "source", "repo"]].merge(texts, on="id", how="inner")
    rows = []
    items = merged[["id", "source", "repo", "text"]].itertuples(index=False)
    for thread, source, repo, text in tqdm(
        items, total=len(merged), desc="CVE/CWE ids", unit="thread", disable=len(merged) < 5000, mininterval=5
    ):
        cves, cwes = find_identifiers(text)
        rows.extend(
            {"id": thread, "source": source, "repo": repo, "type": "CVE", "identifier": c} for c in cves
        )
        rows.extend(
            {"id": thread, "source": source, "repo": repo, "type": "CWE", "identifier": c} for c in cwes
        )
    return pd.DataFrame(rows, columns=["id", "source", "repo", "type", "identifier"])


def identifier_summary(
    security: pd.DataFrame, mentions: pd.DataFrame, confidence: float = 0.95
) -> pd.DataFrame:
    """Per source: security threads, threads mentioning a CVE / a CWE (share, Wilson interval),
    distinct identifiers.  ``security``: one row per security thread (``id, source``), or the
    security threads counted per source (``source, n``; ``mentions`` then holds only theirs)."""
    import pandas as pd

    rows = []
    groups = [(name, part) for name, part in security.groupby("source", sort=True)]
    groups.append(("all", security))
    counted = "n" in security.columns and "id" not in security.columns
    for name, part in groups:
        if counted:  # security threads counted per source; mentions are of those threads only
            size = int(part["n"].sum())
            in_part = mentions if name == "all" else mentions[mentions["source"] == name]
        else:
            ids = set(part["id"])
            size = len(ids)
            in_part = mentions[mentions["id"].isin(ids)]
        row: dict[str, Any] = {"source": name, "security_threads": size}
        for kind in ("CVE", "CWE"):
            sub = in_part[in_part["type"] == kind]
            k = sub["id"].nunique()
            low, high = stats.wilson_interval(k, size, confidence)
            row[f"with_{kind.lower()}"] = int(k)
            row[f"{kind.lower()}_share"] = _round(k / size) if size else math.nan
            row[f"{kind.lower()}_ci_low"] = _round(low)
            row[f"{kind.lower()}_ci_high"] = _round(high)
            row[f"distinct_{kind.lower()}"] = int(sub["identifier"].nunique())
        rows.append(row)
    return _order_sources(pd.DataFrame(rows))


def top_identifiers(mentions: pd.DataFrame, kind: str, n: int = 20) -> pd.DataFrame:
    """The ``n`` identifiers of a type mentioned in the most threads (ties by identifier)."""
    import pandas as pd

    sub = mentions[mentions["type"] == kind]
    if sub.empty:
        return pd.DataFrame(columns=["rank", "identifier", "threads", "projects", "sources", "url"])
    grouped = sub.groupby("identifier").agg(
        threads=("id", "nunique"),
        projects=("repo", "nunique"),
        sources=("source", lambda s: ", ".join(source_order(s.unique()))),
    )
    grouped = grouped.reset_index().sort_values(["threads", "identifier"], ascending=[False, True]).head(n)
    grouped.insert(0, "rank", np.arange(1, len(grouped) + 1))
    if kind == "CVE":
        grouped["url"] = "https://nvd.nist.gov/vuln/detail/" + grouped["identifier"]
    else:
        grouped["url"] = [
            f"https://cwe.mitre.org/data/definitions/{i.split('-', 1)[1]}.html" for i in grouped["identifier"]
        ]
    return grouped.reset_index(drop=True)


# -- Hugging Face model metadata -------------------------------------------------------------------


def load_models(path: str | os.PathLike[str] | None) -> pd.DataFrame | None:
    """The HF model metadata written beside a live-crawled corpus
    (``data/raw/corpus/_hf_models.parquet``, see :mod:`secmine.collect.corpus`) as
    ``repo, pipeline_tag, base_model, relation``; ``None`` when it was not collected (no file,
    or an empty one as a snapshot corpus has).

    ``repo`` is the model id as thread repos name it (``org/name``; ``datasets/org/name`` for
    datasets); ``base_model`` comes from ``base_models`` (JSON: a list of ids, or
    ``{"relation": ..., "models": [{"id": ...}]}``), else from ``card_data['base_model']``.
    """
    import pandas as pd

    if path is None or not Path(path).is_file():
        return None
    frame = pd.read_parquet(path)
    if frame.empty:
        return None
    id_column = next((c for c in ("repo_id", "model_id", "id", "repo") if c in frame.columns), None)
    if id_column is None:
        raise ValueError(f"{path}: no model id column (repo_id) in {list(frame.columns)}")
    repo_type = frame["repo_type"] if "repo_type" in frame.columns else pd.Series("model", index=frame.index)
    repos = [
        str(r) if (t or "model") == "model" else f"{t}s/{r}" for r, t in zip(frame[id_column], repo_type)
    ]
    bases: list[str | None] = []
    relations: list[str | None] = []
    for position in range(len(frame)):
        base, relation = None, None
        if "base_models" in frame.columns:
            base, relation = _parse_base_models(frame["base_models"].iloc[position])
        if base is None and "card_data" in frame.columns:
            card = _json_value(frame["card_data"].iloc[position])
            if isinstance(card, dict):
                base = _ids_text(card.get("base_model"))
        bases.append(base)
        relations.append(relation if base else None)
    out = pd.DataFrame(
        {
            "repo": repos,
            "pipeline_tag": frame["pipeline_tag"] if "pipeline_tag" in frame.columns else None,
            "base_model": bases,
            "relation": relations,
        }
    )
    return out.drop_duplicates("repo").reset_index(drop=True)


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def _json_value(value: Any) -> Any:
    import json

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(str(value))
    except ValueError:
        return str(value)


def _ids_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("models", value.get("id"))
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [str(v.get("id", "")) if isinstance(v, dict) else str(v) for v in value]
        items = [i for i in items if i]
        return ", ".join(items) or None
    text = str(value).strip()
    return text or None


def _parse_base_models(value: Any) -> tuple[str | None, str | None]:
    data = _json_value(value)
    relation = data.get("relation") if isinstance(data, dict) else None
    return _ids_text(data), (str(relation) if relation else None)


def hf_model_tables(
    classified: pd.DataFrame, models: pd.DataFrame, confidence: float = 0.95
) -> dict[str, pd.DataFrame]:
    """HF discussions by the model's pipeline task and by base versus downstream model: models,
    threads, security threads and the security share with its Wilson interval."""
    hf = classified[classified["platform"] == "huggingface"].merge(models, on="repo", how="left")
    hf = hf.assign(
        is_security=hf["label"] == 1,
        pipeline_task=hf["pipeline_tag"].fillna("(unknown)"),
        model_role=[
            "(no metadata)"
            if not known
            else (
                "base"
                if _missing(base)
                else f"downstream ({'unspecified' if _missing(relation) else relation})"
            )
            for known, base, relation in zip(
                hf["repo"].isin(set(models["repo"])), hf["base_model"], hf["relation"]
            )
        ],
    )
    out = {}
    for name, column in (("hf_by_pipeline_task", "pipeline_task"), ("hf_base_vs_downstream", "model_role")):
        table = stats.proportion_table(hf.assign(_n=_weights(hf)), [column], "is_security", weight="_n",
                                       confidence=confidence, digits=DIGITS)
        models_per = hf.groupby(column)["repo"].nunique()
        table.insert(1, "models", [int(models_per.get(v, hf["repo"].nunique())) for v in table[column]])
        table = table.rename(columns={"n": "threads", "count": "security"})
        body = table[table[column] != "all"].sort_values(["security", column], ascending=[False, True])
        out[name] = _concat(body, table[table[column] == "all"])
    return out


# -- the paper's per-project distribution ----------------------------------------------------------


def replication_project_counts(security_only: pd.DataFrame) -> pd.DataFrame:
    """Per source and project: the paper's security threads (``load_security_only`` lists)."""
    frame = security_only.assign(
        source=[source_name(p, k) for p, k in zip(security_only["platform"], security_only["kind"])]
    )
    counts = frame.groupby(["source", "platform", "repo"], sort=True).size().rename("security").reset_index()
    return counts


# -- figures ---------------------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 4.0) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    ax = fig.subplots()
    return fig, ax


def plot_proportions(table: pd.DataFrame, label: str, title: str) -> Figure:
    """Bar chart of proportions with Wilson error bars (rows other than ``all`` with a rate); a
    row without a rate (every thread selected as a security post, see :func:`security_by_source`)
    is named under the axis instead of drawn."""
    from matplotlib.ticker import PercentFormatter

    body = table[table[label] != "all"]
    has_rate = body["proportion"].notna() if "proportion" in body else body[label].notna()
    shown, missing = body[has_rate.to_numpy()], body[~has_rate.to_numpy()]
    fig, ax = _figure(6.5, 3.8)
    x = np.arange(len(shown))
    p = shown["proportion"].to_numpy(float) * 100
    high = shown["ci_high"].to_numpy(float) * 100
    err = np.vstack([p - shown["ci_low"].to_numpy(float) * 100, high - p])
    ax.bar(x, p, color="#4C72B0")
    ax.errorbar(x, p, yerr=err, fmt="none", ecolor="black", capsize=4, linewidth=1)
    ax.set_xticks(
        x,
        shown[label].astype(str),
        rotation=20 if len(shown) > 4 else 0,
        ha="right" if len(shown) > 4 else "center",
    )
    ax.set_ylabel("security threads (%)")
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_title(title, fontsize=10)
    numerator = "rate_security" if "rate_security" in shown else "security" if "security" in shown else "count"
    denominator = "rate_threads" if "rate_threads" in shown else "threads" if "threads" in shown else "n"
    for xi, hi, k, n in zip(x, high, shown[numerator], shown[denominator]):
        ax.annotate(f"{int(k):,} / {int(n):,}", (xi, hi), textcoords="offset points", xytext=(0, 4), ha="center",
                    fontsize=8)
    ax.set_ylim(0, max(1.0, float(np.nanmax(high)) if len(high) else 1.0) * 1.2)
    if len(missing):
        names = ", ".join(
            f"{row[label]} ({int(row['threads']):,} threads)" if "threads" in row else str(row[label])
            for _, row in missing.iterrows()
        )
        fig.text(0.01, 0.01, f"No rate for {names}: every thread was selected as a security post "
                 "(the replication package's coded posts).", fontsize=7, ha="left", va="bottom", wrap=True)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
    else:
        fig.tight_layout()
    return fig


def plot_keyword_vs_classifier(table: pd.DataFrame) -> Figure:
    """Keyword matching against the classifier per source: grouped bars on a linear axis, each
    with its count (a log axis cannot show the zeros)."""
    from matplotlib.ticker import MaxNLocator

    body = table[table["source"] != "all"]
    fig, ax = _figure(6.5, 3.8)
    x = np.arange(len(body))
    width = 0.27
    top = 1
    for offset, column, color, name in (
        (-width, "keyword_only", "#DD8452", "keyword only"),
        (0.0, "both", "#55A868", "both"),
        (width, "classifier_only", "#4C72B0", "classifier only"),
    ):
        values = body[column].to_numpy(int)
        top = max(top, int(values.max()) if len(values) else 1)
        bars = ax.bar(x + offset, values, width, label=name, color=color)
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=2, fontsize=7)
    ax.set_xticks(x, body["source"])
    ax.set_ylabel("threads")
    ax.set_ylim(0, top * 1.25)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Keyword matching against the classifier")
    ax.legend(frameon=False, ncols=3, loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def plot_growth(monthly: pd.DataFrame, growth: pd.DataFrame) -> Figure:
    """Monthly security threads per source (with the fitted exponential trend) and the monthly
    security share of all threads."""
    import pandas as pd
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 6.0))
    ax_count, ax_share = fig.subplots(2, 1, sharex=True)
    colors = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]
    sources = [s for s in monthly["source"].unique() if s != "all"]
    for color, source in zip(colors, sources):
        part = monthly[monthly["source"] == source]
        months = pd.PeriodIndex(part["month"], freq="M").to_timestamp()
        ax_count.plot(months, part["security"], color=color, linewidth=1.2, label=source)
        shown = part["threads"] >= 20
        ax_share.plot(
            months[shown.to_numpy()], part["share"][shown] * 100, color=color, linewidth=1.2, label=source
        )
        fit = growth[(growth["source"] == source) & (growth["measure"] == "security threads")]
        if not fit.empty and isinstance(fit["first_month"].iloc[0], str) and fit["first_month"].iloc[0]:
            span = pd.period_range(fit["first_month"].iloc[0], fit["last_month"].iloc[0], freq="M")
            observed = (
                part.set_index("month")["security"].reindex([str(p) for p in span]).fillna(0).to_numpy(float)
            )
            t = np.arange(len(span))
            beta = float(fit["beta_per_month"].iloc[0])
            # the level implied by the fit: Poisson score equation sum(y) = sum(exp(a + b t))
            level = observed.sum() / np.exp(beta * t).sum()
            ax_count.plot(
                span.to_timestamp(), level * np.exp(beta * t), color=color, linestyle="--", linewidth=0.9
            )
    from matplotlib.ticker import MaxNLocator

    ax_count.set_ylabel("security threads / month")
    ax_count.set_ylim(bottom=0)
    ax_count.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_count.legend(frameon=False, fontsize=8, loc="upper left")
    ax_count.set_title("Security threads per month (dashed: fitted exponential growth)")
    ax_share.set_ylabel("security share (%)")
    ax_share.set_title("Security share of all threads (months with at least 20 threads)")
    fig.tight_layout()
    return fig


def plot_lorenz(counts: pd.DataFrame, group: str, value: str, title: str) -> Figure:
    """Lorenz curves of security threads across projects, one per group, with their Gini."""
    fig, ax = _figure(5.0, 5.0)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="equality")
    colors = ["#4C72B0", "#DD8452", "#55A868", "#C44E52"]
    for color, (name, part) in zip(colors, counts.groupby(group, sort=True)):
        values = part[value].to_numpy(float)
        values = values[values > 0]
        if values.size == 0:
            continue
        x, y = stats.lorenz_curve(values)
        label = PLATFORM_NAMES.get(name, name)
        ax.plot(
            x,
            y,
            color=color,
            linewidth=1.5,
            label=f"{label} (Gini {stats.gini(values):.2f}, {values.size:,} projects)",
        )
    ax.set_xlabel("share of projects (fewest security threads first)")
    ax.set_ylabel("share of security threads")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_top(table: pd.DataFrame, label: str, value: str, title: str, xlabel: str) -> Figure:
    """Horizontal bars of counts, each labelled, on an axis with whole-number ticks."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _figure(7.0, max(2.5, 0.28 * len(table) + 1.0))
    if table.empty:
        ax.text(0.5, 0.5, "none found", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        y = np.arange(len(table))[::-1]
        bars = ax.barh(y, table[value], color="#4C72B0")
        ax.bar_label(bars, labels=[f"{int(v):,}" for v in table[value]], padding=2, fontsize=7)
        ax.set_yticks(y, table[label], fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_xlim(0, float(table[value].max()) * 1.12)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    fig.tight_layout()
    return fig


# -- the stage -------------------------------------------------------------------------------------


def run_rq1(
    classified_path: str | os.PathLike[str],
    corpus_path: str | os.PathLike[str] | None,
    *,
    models_path: str | os.PathLike[str] | None = None,
    replication_root: str | os.PathLike[str] | None = None,
    tables_dir: str | os.PathLike[str] = "reports/tables/rq1",
    figures_dir: str | os.PathLike[str] = "reports/figures/rq1",
    metrics_path: str | os.PathLike[str] | None = "reports/metrics/rq1.json",
    params: RQ1Params | None = None,
    classified: pd.DataFrame | None = None,
    corpus: pd.DataFrame | None = None,
    write: bool = True,
    paper_tables_dir: str | os.PathLike[str] | None = None,
    paper_figures_dir: str | os.PathLike[str] | None = None,
) -> RQ1Result:
    """Compute every RQ1 table, figure and metric and (``write``) save them.

    ``classified``/``corpus`` frames replace reading the files (tests, notebooks).  Fig. 2 of the
    paper (:mod:`secmine.analysis.trend`: ``fig2_yearly.csv`` and ``fig2_trend``) goes to
    ``paper_tables_dir`` / ``paper_figures_dir`` (default: a ``paper`` folder beside
    ``tables_dir`` / ``figures_dir``, i.e. ``reports/tables/paper`` and ``reports/figures/paper``).

    Rates (security shares) and the concentration across projects use only the threads that
    were not selected as security posts (the corpus ``source`` of the replication package's coded
    posts is ``replication``); the notes say what was left out.  Repositories listed under two
    names are merged (:mod:`secmine.analysis.renames`) in the run's project counts and in the
    paper's id lists.
    """
    from secmine.analysis import renames, trend
    from secmine.analysis.classified import iter_classified
    from secmine.analysis.data import check_classified
    from secmine.io import save_figure, write_json, write_table

    params = params or RQ1Params()
    result = RQ1Result()
    # one pass over the classified file counts it (ClassifiedCounts); nothing holds a row per thread
    if classified is not None:
        checked = check_classified(classified, where="classified frame")

        def batches() -> Any:
            return iter([checked])
    else:
        def batches() -> Any:
            return iter_classified(classified_path, batch_rows=CLASSIFIED_BATCH_ROWS)
    corpus_source = corpus if corpus is not None else corpus_path
    counted = count_classified(batches, selected_ids(corpus_source))
    frame = counted.extent
    weights = _weights(frame)
    selected = selected_mask(frame)
    n_selected = int(weights[selected].sum())
    if not counted.origins_known:
        result.notes.append(
            "Thread origins unknown (no corpus `source` column): rates are over every thread, including any "
            "selected as security posts."
        )
    elif n_selected:
        result.notes.append(
            f"{n_selected:,} threads are the replication package's coded posts, selected as security "
            "posts: they count as threads, but no rate (security share) and no concentration is computed over them."
        )
    t = result.tables
    t["security_by_source"] = security_by_source(frame, params.confidence)
    t["keyword_vs_classifier"] = keyword_vs_classifier(frame, params.confidence)
    t["security_monthly"] = monthly_counts(frame, params.confidence)
    t["security_yearly"] = yearly_counts(frame, params.confidence)
    t["growth_rate"] = growth_table(frame, params)
    counts, run_renames = _unselected_project_counts(counted, int(weights[~selected].sum()))
    if run_renames.renames:
        result.notes.append(f"This run's projects: {run_renames.summary()}.")
    t["top_projects"] = top_projects(counts, params.top_n)
    t["concentration"] = concentration_table(counts)
    yearly = trend.yearly_reports(frame, weight="n" if "n" in frame.columns else None)
    t["fig2_yearly"] = yearly.table
    result.notes.extend(f"Fig. 2: {note}" for note in yearly.notes)
    undated = int(weights[frame["created"].isna().to_numpy()].sum())
    if undated:
        result.notes.append(
            f"{undated:,} of {int(weights.sum()):,} threads have no creation date (e.g. replication posts) "
            "and are left out of the growth analysis."
        )

    n_security = len(counted.security_ids)
    if corpus is not None or (corpus_path is not None and Path(corpus_path).exists()):
        mentions, with_text = _security_mentions(corpus_source, counted.security_ids)
        missing = n_security - int(with_text["n"].sum())
        if missing:
            result.notes.append(
                f"{missing:,} security threads have no text in the corpus; CVE/CWE counts omit them."
            )
        t["identifiers"] = identifier_summary(with_text, mentions, params.confidence)
        t["top_cve"] = top_identifiers(mentions, "CVE", params.top_n)
        t["top_cwe"] = top_identifiers(mentions, "CWE", params.top_n)
    else:
        result.notes.append("No corpus found: CVE/CWE identifiers were not counted.")

    models = load_models(models_path)
    if models is None:
        result.notes.append(
            "No Hugging Face model metadata (a live `collect` run writes it beside the corpus as "
            "_hf_models.parquet; a snapshot corpus has none): the pipeline-task and base/downstream "
            "tables are not produced."
        )
    elif not (frame["platform"] == "huggingface").any():
        result.notes.append("Model metadata present but the corpus has no Hugging Face threads.")
        models = None
    else:
        t.update(hf_model_tables(counted.projects, models, params.confidence))

    replication_counts = None
    if replication_root is not None:
        from secmine.replication import ReplicationError, load_security_only

        try:
            security_only = load_security_only(replication_root)
        except ReplicationError as exc:
            result.notes.append(f"Replication id lists unavailable: {exc}")
        else:
            listed = security_only.assign(source=[source_name(p, k) for p, k in
                                                  zip(security_only["platform"], security_only["kind"])])
            merged, paper_renames = renames.merge_renamed(security_only)
            replication_counts = replication_project_counts(merged)
            by_source = replication_counts.groupby("source")["security"].agg(["sum", "size"]).reset_index()
            by_source.columns = ["source", "security_distinct", "projects"]
            as_listed = listed.groupby("source").agg(security=("repo", "size"), projects_listed=("repo", "nunique"))
            by_source = by_source.merge(as_listed.reset_index(), on="source", how="left")
            by_source["listed_twice"] = by_source["security"] - by_source["security_distinct"]
            t["paper_by_source"] = _order_sources(
                by_source[["source", "security", "security_distinct", "listed_twice", "projects_listed", "projects"]]
            )
            t["paper_renamed_repositories"] = paper_renames.as_frame()
            result.notes.append(f"Paper's id lists: {paper_renames.summary()}.")
            result.metrics["paper_renamed_repositories"] = paper_renames.repositories_merged
            result.metrics["paper_threads_listed_twice"] = paper_renames.threads_dropped
            top = replication_counts.sort_values(
                ["security", "source", "repo"], ascending=[False, True, True]
            )
            top = top.head(params.top_n).reset_index(drop=True)
            top.insert(0, "rank", np.arange(1, len(top) + 1))
            top["url"] = [repo_url(p, r) for p, r in zip(top["platform"], top["repo"])]
            t["paper_top_projects"] = top.drop(columns="platform")
            t["paper_concentration"] = concentration_table(
                replication_counts.drop(columns="platform"), by="source"
            ).drop(columns="gini_all_projects")
            missing_lists = sorted(
                set(SOURCE_NAMES[k] for k in [("github", "issue")]) - set(by_source["source"])
            )
            if missing_lists:
                result.notes.append(
                    "The replication package lacks the id list of: "
                    + ", ".join(missing_lists)
                    + " (as published)."
                )

    f = result.figures
    f["security_by_source"] = plot_proportions(
        t["security_by_source"],
        "source",
        f"Security share per source ({round(params.confidence * 100):g}% Wilson CI), over threads not selected as "
        "security posts",
    )
    f["keyword_vs_classifier"] = plot_keyword_vs_classifier(t["keyword_vs_classifier"])
    if not t["security_monthly"].empty:
        f["growth"] = plot_growth(t["security_monthly"], t["growth_rate"])
    if (counts["security"] > 0).any():
        f["lorenz"] = plot_lorenz(
            counts, "platform", "security",
            "Concentration of security threads across projects\n(threads not selected as security posts)",
        )
    paper_figures = {"fig2_trend": trend.trend_figure(yearly)}
    f["top_projects"] = plot_top(
        t["top_projects"].assign(name=t["top_projects"]["repo"]),
        "name",
        "security",
        f"Top {params.top_n} projects by security threads",
        "security threads",
    )
    if "top_cve" in t:
        f["top_cve"] = plot_top(
            t["top_cve"], "identifier", "threads", "Most mentioned CVE identifiers", "threads"
        )
        f["top_cwe"] = plot_top(
            t["top_cwe"], "identifier", "threads", "Most mentioned CWE identifiers", "threads"
        )
    if "hf_by_pipeline_task" in t:
        table = t["hf_by_pipeline_task"].rename(columns={"pipeline_task": "task"}).head(params.top_n + 1)
        f["hf_by_pipeline_task"] = plot_proportions(
            table.rename(columns={"security": "count"}), "task", "HF security share by pipeline task"
        )
    if replication_counts is not None:
        f["paper_lorenz"] = plot_lorenz(
            replication_counts,
            "source",
            "security",
            "Paper's security threads across projects (replication ids)",
        )
        f["paper_top_projects"] = plot_top(
            t["paper_top_projects"].assign(
                name=t["paper_top_projects"]["repo"] + " (" + t["paper_top_projects"]["source"] + ")"
            ),
            "name",
            "security",
            f"Paper: top {params.top_n} projects by security threads",
            "security threads",
        )

    paper_metrics = {k: v for k, v in result.metrics.items() if k.startswith("paper_")}
    result.metrics = _metrics(frame, t, params, models is not None, replication_counts is not None)
    result.metrics.update(paper_metrics)
    result.metrics["selected_threads"] = n_selected
    result.metrics["renamed_repositories_merged"] = run_renames.repositories_merged
    result.metrics["fig2_last_complete_year"] = yearly.last_complete_year
    result.metrics["notes"] = list(result.notes)
    result.figures.update(paper_figures)
    if write:
        paper_tables = Path(paper_tables_dir) if paper_tables_dir is not None else Path(tables_dir).parent / "paper"
        paper_figs = Path(paper_figures_dir) if paper_figures_dir is not None else Path(figures_dir).parent / "paper"
        for name, table in t.items():
            if name != "fig2_yearly":
                write_table(table, Path(tables_dir) / name)
        for name, fig in f.items():
            if name not in paper_figures:
                save_figure(fig, Path(figures_dir) / name)
        trend.write(yearly, paper_figures["fig2_trend"], tables_dir=paper_tables, figures_dir=paper_figs)
        if metrics_path is not None:
            write_json(metrics_path, result.metrics)
    return result


def _unselected_project_counts(counted: ClassifiedCounts, unselected_threads: int) -> tuple[pd.DataFrame, Any]:
    """:func:`project_counts` over the threads not selected as security posts, with repositories
    listed under two names merged (:func:`secmine.analysis.renames.merge_renamed` over the threads
    of the repositories a rename could merge; the others are counted as they are)."""
    import pandas as pd

    from secmine.analysis import renames

    rows = counted.rename_rows
    merged, found = renames.merge_renamed(rows[~selected_mask(rows)], id_column="id")
    report = renames.RenameReport(
        renames=found.renames, threads_before=unselected_threads,
        threads_after=unselected_threads - found.threads_dropped,
    )
    projects = counted.projects[~selected_mask(counted.projects)]
    keep = [(p, r) not in counted.candidates for p, r in zip(projects["platform"], projects["repo"])]
    kept = projects[np.asarray(keep, dtype=bool)]
    together = pd.concat(
        [kept[["platform", "repo", "label", "n"]], merged[["platform", "repo", "label"]].assign(n=1)],
        ignore_index=True,
    )
    return project_counts(together), report


def _security_mentions(corpus: Any, ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CVE/CWE mentions of the security threads ``ids`` (:func:`identifier_mentions`) and, per
    source, how many of them have a text in the corpus (``source, n``).  A corpus folder is read
    batch by batch, only those threads: memory follows one batch and the mentions."""
    import pandas as pd
    from tqdm.auto import tqdm

    from secmine.text import thread_text

    found: dict[str, int] = {}
    parts = []
    if isinstance(corpus, pd.DataFrame):
        texts = thread_texts(corpus, ids)
        where = corpus[["id", "platform", "kind", "repo"]].drop_duplicates("id")
        chunks = [texts.merge(where, on="id", how="inner")]
    else:
        from secmine.collect.corpus import iter_batches

        def stream() -> Any:
            columns = ["id", "platform", "kind", "repo", "title", "body", "comments"]
            for batch in iter_batches(corpus, columns=columns, ids=ids, batch_size=2_000):
                frame = batch.to_pandas()
                frame["text"] = [
                    thread_text(title, body, _comment_bodies(comments), None)
                    for title, body, comments in zip(frame["title"], frame["body"], frame["comments"])
                ]
                yield frame[["id", "platform", "kind", "repo", "text"]]

        chunks = stream()
    progress = tqdm(total=len(ids), desc="rq1: CVE/CWE ids", unit="thread", mininterval=5, disable=None)
    for chunk in chunks:
        chunk = chunk.assign(source=[source_name(p, k) for p, k in zip(chunk["platform"], chunk["kind"])])
        for name, size in chunk.groupby("source").size().items():
            found[str(name)] = found.get(str(name), 0) + int(size)
        parts.append(identifier_mentions(chunk[["id", "source", "repo"]], chunk[["id", "text"]]))
        progress.update(len(chunk))
    progress.close()
    columns = ["id", "source", "repo", "type", "identifier"]
    mentions = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else (
        pd.DataFrame(columns=columns))
    with_text = pd.DataFrame(sorted(found.items()), columns=["source", "n"])
    return mentions[columns], with_text


def _metrics(
    frame: pd.DataFrame, t: dict[str, pd.DataFrame], params: RQ1Params, has_models: bool, has_paper: bool
) -> dict[str, Any]:
    by_source = t["security_by_source"].set_index("source")
    metrics: dict[str, Any] = {
        "threads": int(_weights(frame).sum()),
        "security_threads": int(_weights(frame)[(frame["label"] == 1).to_numpy()].sum()),
        # shares are over the threads not selected as security posts (see security_by_source)
        "security_share": _none(by_source.loc["all", "proportion"]),
        "security_share_ci": [_none(by_source.loc["all", "ci_low"]), _none(by_source.loc["all", "ci_high"])],
        "security_share_threads": int(by_source.loc["all", "rate_threads"]),
        "by_source": {
            source: {
                "threads": int(row["threads"]),
                "security": int(row["security"]),
                "selected": int(row["selected"]),
                "share": _none(row["proportion"]),
            }
            for source, row in by_source.iterrows()
            if source != "all"
        },
        "keyword_matches": int(_weights(frame)[frame["keyword_match"].to_numpy(bool)].sum()),
        "keyword_confirmed_share": _none(
            t["keyword_vs_classifier"].set_index("source").loc["all", "confirmed_share"]
        ),
        "confidence": params.confidence,
        "hf_model_metadata": has_models,
        "paper_id_lists": has_paper,
    }
    growth = t["growth_rate"]
    overall = growth[(growth["source"] == "all") & (growth["measure"] == "security threads")]
    if not overall.empty and overall["note"].iloc[0] == "":
        metrics["annual_growth"] = _none(overall["annual_rate"].iloc[0])
        metrics["annual_growth_ci"] = [
            _none(overall["annual_ci_low"].iloc[0]),
            _none(overall["annual_ci_high"].iloc[0]),
        ]
    conc = t["concentration"].set_index("platform")
    metrics["gini"] = {str(k): _none(v) for k, v in conc["gini"].items()}
    if "identifiers" in t:
        ident = t["identifiers"].set_index("source").loc["all"]
        metrics["threads_with_cve"] = int(ident["with_cve"])
        metrics["threads_with_cwe"] = int(ident["with_cwe"])
        metrics["distinct_cve"] = int(ident["distinct_cve"])
        metrics["distinct_cwe"] = int(ident["distinct_cwe"])
    if "paper_concentration" in t:
        metrics["paper_gini"] = {
            str(k): _none(v) for k, v in t["paper_concentration"].set_index("source")["gini"].items()
        }
    return metrics


# -- helpers ---------------------------------------------------------------------------------------


def _weights(frame: pd.DataFrame) -> np.ndarray:
    """Threads per row: ``n`` of a counted frame (:func:`count_classified`), else 1 per row."""
    if "n" in frame.columns:
        return frame["n"].to_numpy(dtype="int64")
    return np.ones(len(frame), dtype="int64")


def _round(value: float) -> float:
    return round(float(value), DIGITS) if value is not None and math.isfinite(float(value)) else math.nan


def _none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else round(float(value), DIGITS)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _order_sources(table: pd.DataFrame, keep: list[str] | None = None) -> pd.DataFrame:
    """Rows in the paper's source order, ``all`` last; ``keep`` columns sort within a source."""
    order = {name: i for i, name in enumerate(source_order([s for s in table["source"] if s != "all"]))}
    order["all"] = len(order)
    key = table["source"].map(order)
    sort_columns = ["_order", *(keep or [])]
    return (
        table.assign(_order=key)
        .sort_values(sort_columns, kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def _concat(*frames: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    return pd.concat([f for f in frames if not f.empty], ignore_index=True)


__all__ = [
    "RQ1Params",
    "RQ1Result",
    "concentration_table",
    "find_identifiers",
    "growth_table",
    "identifier_mentions",
    "identifier_summary",
    "keyword_vs_classifier",
    "load_models",
    "monthly_counts",
    "project_counts",
    "replication_project_counts",
    "run_rq1",
    "security_by_source",
    "top_identifiers",
    "top_projects",
    "yearly_counts",
]
