"""The labelled set: every labelled text with its provenance, in one canonical text form.

Sources (each row keeps ``source`` and ``origin`` = file and row it came from):

``replication_coded``
    The replication package's coded posts (``theme/data.xlsx`` via
    :func:`secmine.replication.load_posts`).  Every coded post was selected as a security
    discussion, so each is a positive.
``security_labels``
    ``ai_issues/security_labels.csv`` (``id,label,theme``; ``id`` = ``{repo}#{number}``): keyword
    matches of the snapshot labelled security-related (1) or not (0) — the hard cases.  Text comes
    from the corpus (GitHub thread with that repo and number).
``replication_labels``
    The paper's labelled ids (:func:`secmine.replication.load_labelled`), rehydrated with text
    when the corpus holds the thread (ids without text are counted, not used).
``user``
    Any CSV with a text and a label column (names configurable), optionally an id column.
``weak_negatives``
    Corpus threads that match no keyword, sampled with a seed and labelled 0 *weakly* (``weak``
    is true): a thread that never says vulnerability/CVE/CWE/security is very likely not a
    security discussion, but nobody read it.

Texts pass through :func:`secmine.text.canonical_text` whatever the source.  When a thread
is listed by more than one source, the first source in the priority order wins (conflicting labels
are reported); exact duplicate texts are dropped the same way.  ``group`` (the thread id, or the
text fingerprint for rows without one) keeps a thread in a single fold.

Every row also carries ``repo`` (from its thread id or the CSV's repo column; the unit of a
project-held-out split), ``created_at`` (from the corpus or the CSV's date column, ISO text; the time
of a time-ordered split; empty where the source has no date) and, once
:func:`mark_keyword_match` ran, ``keyword_match``: whether the thread contains a keyword -- the
population the classifier is applied to, on which it is selected and reported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine.errors import SecmineError
from secmine.text import DEFAULT_MAX_CHARS, canonical_text, text_hash, thread_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

LABELLED_COLUMNS: tuple[str, ...] = (
    "uid",
    "group",
    "thread_id",
    "platform",
    "kind",
    "source",
    "origin",
    "weak",
    "label",
    "text",
    "text_hash",
    "repo",
    "created_at",
)
SOURCES: tuple[str, ...] = ("replication_coded", "security_labels", "replication_labels", "user", "weak_negatives")
DEFAULT_SOURCES = "replication_coded,security_labels,replication_labels,weak_negatives"

_TRUE = {"1", "true", "yes", "y", "security", "t"}
_FALSE = {"0", "false", "no", "n", "not_security", "f"}


class LabelledError(SecmineError, ValueError):
    """Bad labelled data; the message names the file, row and field."""


@dataclass
class LabelledSet:
    """The assembled labelled set and what happened while assembling it."""

    frame: pd.DataFrame
    dropped: pd.DataFrame  # rows removed as duplicates, with the reason
    notes: list[str] = field(default_factory=list)

    def provenance(self) -> pd.DataFrame:
        """Rows per source and label (and how many were weak)."""
        frame = self.frame
        table = (
            frame.groupby(["source", "label"], sort=True)
            .agg(rows=("uid", "size"), weak=("weak", "sum"))
            .reset_index()
        )
        table["weak"] = table["weak"].astype("int64")
        return table


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(LABELLED_COLUMNS))
    frame["label"] = frame["label"].astype("int64")
    frame["weak"] = frame["weak"].astype(bool)
    for column in ("repo", "created_at"):
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna(), None)
    return frame


def _repo_of(thread_id: str | None) -> str | None:
    from secmine.schema import SchemaError, parse_thread_id

    if not thread_id:
        return None
    try:
        return parse_thread_id(thread_id)[2]
    except (SchemaError, ValueError):
        return None


def _date(value: Any, *, where: str | None = None) -> str | None:
    """An ISO date-time text (UTC, seconds) or None; a value that is no date is an error at ``where``."""
    import pandas as pd

    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    if not text or text.lower() in {"nan", "nat", "none"}:
        return None
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        if where is None:
            return None
        raise LabelledError(f"{where}: {text!r} is not a date (use ISO 8601, e.g. 2024-05-01T12:00:00Z)") from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(
    *,
    source: str,
    origin: str,
    text: str,
    label: int,
    thread_id: str | None = None,
    platform: str | None = None,
    kind: str | None = None,
    weak: bool = False,
    repo: str | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    digest = text_hash(text.casefold())[:16]  # duplicates differ only in case
    return {
        "uid": f"{source}:{thread_id or digest}",
        "group": thread_id or f"text:{digest}",
        "thread_id": thread_id,
        "platform": platform,
        "kind": kind,
        "source": source,
        "origin": origin,
        "weak": weak,
        "label": int(label),
        "text": text,
        "text_hash": digest,
        "repo": repo or _repo_of(thread_id),
        "created_at": created_at,
    }


def parse_label(value: Any, *, where: str) -> int:
    """0/1 (also true/false, yes/no) to an int; anything else is an error naming ``where``."""
    text = str(value).strip().lower() if value is not None else ""
    if text.endswith(".0"):
        text = text[:-2]
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise LabelledError(f"{where}: label {value!r} is not 0/1")


# -- sources -----------------------------------------------------------------------------------


def from_replication_posts(
    root: str | os.PathLike[str] | None = None, *, max_chars: int = DEFAULT_MAX_CHARS
) -> pd.DataFrame:
    """Positives: the replication package's coded posts (``theme/data.xlsx``)."""
    from secmine.replication import POSTS_FILE, load_posts

    posts = load_posts(root)
    rows = [
        _row(
            source="replication_coded",
            origin=f"ai_sec_dev/{POSTS_FILE}:row {position + 2}",
            text=canonical_text(post.text, max_chars),
            label=1,
            thread_id=post.thread_id,
            platform=post.platform,
            kind=post.kind,
        )
        for position, post in enumerate(posts.itertuples(index=False))
    ]
    return _frame(rows)


def _corpus_index(corpus: pd.DataFrame) -> dict[tuple[str, str, int], int]:
    """(platform, repo, number) -> row position in the corpus frame."""
    return {
        (p, r, int(n)): i
        for i, (p, r, n) in enumerate(zip(corpus["platform"], corpus["repo"], corpus["number"], strict=True))
    }


def _thread_date(thread: Any) -> str | None:
    return _date(thread["created_at"]) if "created_at" in thread.index else None


def _corpus_text(corpus: pd.DataFrame, position: int, max_chars: int) -> str:
    row = corpus.iloc[position]
    comments = row["comments"] if "comments" in corpus.columns else ()
    return thread_text(row["title"], row["body"], comments if comments is not None else (), max_chars)


def from_security_labels(
    path: str | os.PathLike[str],
    corpus: pd.DataFrame,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """Hard cases: ``security_labels.csv`` rows joined to the corpus for their text."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: security labels not found")
    from secmine.inputs import read_csv

    table = read_csv(path, what="labelled CSV", dtype=str, keep_default_na=False)
    missing = [c for c in ("id", "label") if c not in table.columns]
    if missing:
        raise LabelledError(f"{path}: missing column(s) {missing} (found {list(table.columns)})")
    index = _corpus_index(corpus)
    rows, absent = [], 0
    for position, record in enumerate(table.to_dict(orient="records")):
        where = f"{path}, row {position + 2}"
        repo, sep, number = str(record["id"]).strip().rpartition("#")
        if not sep or not repo or not number.isdigit():
            raise LabelledError(f"{where}, field 'id': {record['id']!r} is not of the form owner/name#number")
        label = parse_label(record["label"], where=f"{where}, field 'label'")
        hit = index.get(("github", repo, int(number)))
        if hit is None:
            absent += 1
            continue
        thread = corpus.iloc[hit]
        rows.append(
            _row(
                source="security_labels",
                origin=f"ai_issues/{path.name}:row {position + 2}",
                text=_corpus_text(corpus, hit, max_chars),
                label=label,
                thread_id=thread["id"],
                platform=thread["platform"],
                kind=thread["kind"],
                created_at=_thread_date(thread),
            )
        )
    if notes is not None and absent:
        notes.append(f"{path.name}: {absent} of {len(table)} labelled ids are not in the corpus (no text; skipped)")
    return _frame(rows)


def from_replication_labels(
    corpus: pd.DataFrame,
    root: str | os.PathLike[str] | None = None,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """The paper's labelled ids, with text where the corpus holds the thread."""
    from secmine.replication import LABELLED_FILES, load_labelled

    labelled = load_labelled(root)
    by_id = {tid: i for i, tid in enumerate(corpus["id"].tolist())}
    rows = []
    for record in labelled.itertuples(index=False):
        hit = by_id.get(record.thread_id)
        if hit is None:
            continue
        rows.append(
            _row(
                source="replication_labels",
                origin=f"ai_sec_dev/{LABELLED_FILES[record.split]}:{record.repo}#{record.number}",
                text=_corpus_text(corpus, hit, max_chars),
                label=int(record.is_security),
                thread_id=record.thread_id,
                platform=record.platform,
                kind=record.kind,
                created_at=_thread_date(corpus.iloc[hit]),
            )
        )
    if notes is not None:
        notes.append(
            f"replication labels: {len(rows)} of {len(labelled)} labelled ids rehydrated with corpus text"
        )
    return _frame(rows)


def from_user_csv(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    id_column: str = "id",
    max_chars: int = DEFAULT_MAX_CHARS,
    date_column: str = "created_at",
    repo_column: str = "repo",
) -> pd.DataFrame:
    """Any labelled CSV: ``text_column`` and ``label_column`` (0/1), ``id_column``, ``date_column``
    (ISO date, for a time-ordered split) and ``repo_column`` (project, for a project-held-out split)
    when present.

    An id that parses as a thread id (``gh:issue:owner/name#1``) keeps the thread's platform, kind and
    repository.
    """
    import pandas as pd

    from secmine.schema import SchemaError, parse_thread_id

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: labelled CSV not found")
    from secmine.inputs import read_csv

    table = read_csv(path, what="labelled CSV", dtype=str, keep_default_na=False)
    missing = [c for c in (text_column, label_column) if c not in table.columns]
    if missing:
        raise LabelledError(
            f"{path}: missing column(s) {missing} (found {list(table.columns)}); "
            "set the text/label column names"
        )
    rows = []
    for position, record in enumerate(table.to_dict(orient="records")):
        where = f"{path}, row {position + 2}"
        label = parse_label(record[label_column], where=f"{where}, field {label_column!r}")
        text = canonical_text(record[text_column], max_chars)
        if not text:
            raise LabelledError(f"{where}, field {text_column!r}: empty text")
        ident = str(record.get(id_column, "") or "").strip() or None
        created = _date(record.get(date_column), where=f"{where}, field {date_column!r}")
        repo = str(record.get(repo_column, "") or "").strip() or None
        platform = kind = None
        if ident:
            try:
                platform, kind, _, _ = parse_thread_id(ident)
            except SchemaError:
                platform = kind = None
        rows.append(
            _row(
                source="user",
                origin=f"{path.name}:row {position + 2}",
                text=text,
                label=label,
                thread_id=ident,
                platform=platform,
                kind=kind,
                repo=repo,
                created_at=created,
            )
        )
    return _frame(rows)


def weak_negatives(
    corpus: pd.DataFrame,
    keyword_match: pd.Series,
    n: int,
    *,
    seed: int,
    exclude: set[str] | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    min_chars: int = 20,
) -> pd.DataFrame:
    """``n`` corpus threads with no keyword match, sampled with ``seed``, labelled 0 and ``weak``.

    ``keyword_match`` is a boolean Series indexed by thread id.  Threads in ``exclude`` (already
    labelled) and texts shorter than ``min_chars`` are not drawn.
    """
    import numpy as np

    if n <= 0:
        return _frame([])
    exclude = exclude or set()
    matched = keyword_match.reindex(corpus["id"]).fillna(True).to_numpy(dtype=bool)
    candidates = [
        i for i, (tid, hit) in enumerate(zip(corpus["id"].tolist(), matched, strict=True)) if not hit and tid not in exclude
    ]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(candidates))
    rows = []
    for j in order:
        position = candidates[int(j)]
        text = _corpus_text(corpus, position, max_chars)
        if len(text) < min_chars:
            continue
        thread = corpus.iloc[position]
        rows.append(
            _row(
                source="weak_negatives",
                origin="corpus: no keyword match (seeded sample)",
                text=text,
                label=0,
                thread_id=thread["id"],
                platform=thread["platform"],
                kind=thread["kind"],
                weak=True,
                created_at=_thread_date(thread),
            )
        )
        if len(rows) >= n:
            break
    return _frame(rows)


# -- assembly ----------------------------------------------------------------------------------


def combine(parts: Sequence[pd.DataFrame], *, notes: list[str] | None = None) -> LabelledSet:
    """Concatenate sources in priority order; drop repeated threads and repeated texts.

    The first occurrence (highest priority) wins; a repeated thread with another label is noted.
    """
    import pandas as pd

    notes = notes if notes is not None else []
    frames = [p for p in parts if len(p)]
    if not frames:
        raise LabelledError("the labelled set is empty: no source produced any labelled text")
    frame = pd.concat(frames, ignore_index=True)
    empty = frame["text"].str.len() == 0
    dropped = [frame[empty].assign(reason="empty text")]
    frame = frame[~empty]
    has_id = frame["thread_id"].notna()
    dup_thread = has_id & frame["thread_id"].duplicated(keep="first")
    if dup_thread.any():
        first_label = frame[has_id].drop_duplicates("thread_id").set_index("thread_id")["label"]
        conflicts = frame[dup_thread & (frame["thread_id"].map(first_label) != frame["label"])]
        if len(conflicts):
            notes.append(
                f"{len(conflicts)} thread(s) labelled differently by two sources; the higher-priority label is kept: "
                + ", ".join(sorted(conflicts["thread_id"].astype(str))[:10])
            )
    dropped.append(frame[dup_thread].assign(reason="thread listed by a higher-priority source"))
    frame = frame[~dup_thread]
    dup_text = frame["text_hash"].duplicated(keep="first")
    dropped.append(frame[dup_text].assign(reason="same text as a higher-priority row"))
    frame = frame[~dup_text]
    uid_dup = frame["uid"].duplicated(keep="first")
    if uid_dup.any():  # same text hash within one source without thread ids: already dropped above
        frame = frame[~uid_dup]
    dropped_frame = pd.concat(dropped, ignore_index=True)
    for reason, count in dropped_frame["reason"].value_counts().sort_index().items():
        notes.append(f"dropped {count} row(s): {reason}")
    return LabelledSet(frame.reset_index(drop=True), dropped_frame.reset_index(drop=True), notes)


def assemble_labelled(
    *,
    sources: str | Sequence[str] = DEFAULT_SOURCES,
    corpus: pd.DataFrame | None = None,
    keyword_match: pd.Series | None = None,
    replication_root: str | os.PathLike[str] | None = None,
    security_labels: str | os.PathLike[str] | None = None,
    user_csv: str | os.PathLike[str] | None = None,
    text_column: str = "text",
    label_column: str = "label",
    id_column: str = "id",
    n_weak_negatives: int = 0,
    seed: int = 0,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> LabelledSet:
    """Assemble the labelled set from ``sources`` (names of :data:`SOURCES`, in priority order)."""
    names = [s.strip() for s in (sources.split(",") if isinstance(sources, str) else sources) if s.strip()]
    unknown = [s for s in names if s not in SOURCES]
    if unknown:
        raise LabelledError(f"unknown labelled source(s) {unknown}; choose from {', '.join(SOURCES)}")
    needs_corpus = {"security_labels", "replication_labels", "weak_negatives"} & set(names)
    if needs_corpus and corpus is None:
        raise LabelledError(f"source(s) {sorted(needs_corpus)} need a corpus for their text")
    notes: list[str] = []
    parts: list[pd.DataFrame] = []
    for name in names:
        if name == "replication_coded":
            parts.append(from_replication_posts(replication_root, max_chars=max_chars))
        elif name == "security_labels":
            if security_labels is None:
                from secmine import config

                security_labels = config.snapshot_dir() / "security_labels.csv"
            parts.append(from_security_labels(security_labels, corpus, max_chars=max_chars, notes=notes))
        elif name == "replication_labels":
            parts.append(from_replication_labels(corpus, replication_root, max_chars=max_chars, notes=notes))
        elif name == "user":
            if not user_csv:
                raise LabelledError("source 'user' needs a labelled CSV (user_csv)")
            parts.append(
                from_user_csv(
                    user_csv, text_column=text_column, label_column=label_column, id_column=id_column, max_chars=max_chars
                )
            )
        elif name == "weak_negatives":
            if keyword_match is None:
                raise LabelledError("source 'weak_negatives' needs the keyword matches of the corpus")
            taken = {tid for p in parts for tid in p["thread_id"].dropna()}
            parts.append(
                weak_negatives(corpus, keyword_match, n_weak_negatives, seed=seed, exclude=taken, max_chars=max_chars)
            )
            if len(parts[-1]) < n_weak_negatives:
                notes.append(f"weak negatives: only {len(parts[-1])} of {n_weak_negatives} could be drawn")
    return combine(parts, notes=notes)


def read_labelled_file(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    id_column: str = "id",
    max_chars: int = DEFAULT_MAX_CHARS,
    date_column: str = "created_at",
    repo_column: str = "repo",
) -> LabelledSet:
    """A labelled set from a file: the Parquet the ``train`` stage writes (with provenance), or any
    CSV with text and label columns."""
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
        missing = [c for c in ("text", "label") if c not in frame.columns]
        if missing:
            raise LabelledError(f"{path}: missing column(s) {missing}")
        if "uid" not in frame.columns:
            return combine(
                [
                    _frame(
                        [
                            _row(source="user", origin=f"{path.name}:row {i + 1}", text=canonical_text(t, max_chars),
                                 label=parse_label(v, where=f"{path}, row {i + 1}, field 'label'"))
                            for i, (t, v) in enumerate(zip(frame["text"], frame["label"], strict=True))
                        ]
                    )
                ]
            )
        keep = [c for c in (*LABELLED_COLUMNS, "keyword_match", "split", "fold") if c in frame.columns]
        frame = frame[keep].reset_index(drop=True)
        for column in ("repo", "created_at"):
            if column not in frame.columns:
                frame[column] = None
        return LabelledSet(frame, _frame([]).assign(reason=[]), [])
    if path.suffix.lower() != ".csv" and path.is_file():
        raise LabelledError(f"{path}: a labelled set is a CSV (text and label columns) or the train stage's Parquet")
    return combine(
        [from_user_csv(path, text_column=text_column, label_column=label_column, id_column=id_column, max_chars=max_chars,
                       date_column=date_column, repo_column=repo_column)]
    )


# -- the population the classifier meets -------------------------------------------------------


def mark_keyword_match(
    frame: pd.DataFrame,
    *,
    keywords: Sequence[str] | None = None,
    word_boundary: bool = True,
    thread_matches: pd.Series | None = None,
) -> pd.DataFrame:
    """A copy of ``frame`` with a boolean ``keyword_match``: the thread contains a keyword.

    A row is a keyword match when the keywords stage matched its thread (``thread_matches``: bool
    by thread id, over the whole title, body and comments), when its text contains a keyword
    (``keywords``, the paper's by default), or when it comes from ``security_labels`` (which lists
    keyword matches only).  A ``keyword_match`` column already present (e.g. from a CSV) is kept and
    OR-ed with these."""
    import numpy as np

    from secmine.detect.keywords import PAPER_KEYWORDS, KeywordMatcher

    matcher = KeywordMatcher(tuple(keywords) if keywords else PAPER_KEYWORDS, word_boundary=word_boundary)
    out = frame.copy()
    hit = np.array([matcher.matches(t) for t in out["text"].tolist()], dtype=bool)
    if thread_matches is not None and "thread_id" in out.columns:
        known = out["thread_id"].map(thread_matches)
        hit |= known.fillna(False).to_numpy(dtype=bool)
    if "source" in out.columns:
        hit |= (out["source"] == "security_labels").to_numpy()
    if "keyword_match" in out.columns:
        hit |= out["keyword_match"].fillna(False).astype(bool).to_numpy()
    out["keyword_match"] = hit
    return out


def attach_thread_info(frame: pd.DataFrame, corpus: pd.DataFrame) -> pd.DataFrame:
    """Fill ``created_at`` and ``repo`` of rows whose thread the corpus holds (e.g. coded posts,
    whose spreadsheet has no dates) from the corpus."""
    out = frame.copy()
    if "id" not in corpus.columns:
        return out
    info = corpus.drop_duplicates("id").set_index("id")
    if "created_at" in info.columns:
        dates = out["thread_id"].map(info["created_at"]).map(_date)
        out["created_at"] = out["created_at"].where(out["created_at"].notna(), dates)
    if "repo" in info.columns:
        repos = out["thread_id"].map(info["repo"])
        out["repo"] = out["repo"].where(out["repo"].notna(), repos)
    return out


def rare_positive_set(
    corpus: pd.DataFrame,
    security_labels: str | os.PathLike[str],
    *,
    positive_share: float = 0.03,
    keyword_match: pd.Series | None = None,
    seed: int = 0,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> pd.DataFrame:
    """A realistic labelled set with rare positives, as an external researcher would bring one:
    the keyword-matched issues of ``security_labels`` (positives and hard negatives) plus corpus
    threads without a keyword match as negatives, drawn with ``seed`` until positives are
    ``positive_share`` of the rows.  Columns ``id, repo, created_at, text, label`` (a CSV that
    ``secmine train --data`` reads); only threads with a creation date are used."""
    import pandas as pd

    if not 0 < positive_share < 1:
        raise LabelledError(f"positive_share must lie in (0, 1), got {positive_share}")
    labelled = from_security_labels(security_labels, corpus, max_chars=max_chars)
    labelled = attach_thread_info(labelled, corpus)
    labelled = labelled[labelled["created_at"].notna()]
    positives = int(labelled["label"].sum())
    if positives == 0:
        raise LabelledError(f"{security_labels}: no positive label of a dated thread in the corpus")
    total = int(round(positives / positive_share))
    n_extra = max(0, total - len(labelled))
    if keyword_match is None:
        from secmine.detect.keywords import PAPER_KEYWORDS, match_threads

        # substring matching: a negative drawn here must not even contain a keyword inside a word
        keyword_match = match_threads(corpus, PAPER_KEYWORDS, word_boundary=False).set_index("id")["keyword_match"]
    dated = corpus[corpus["created_at"].notna()] if "created_at" in corpus.columns else corpus.iloc[0:0]
    extra = weak_negatives(dated.reset_index(drop=True), keyword_match, n_extra, seed=seed,
                           exclude=set(labelled["thread_id"].dropna()), max_chars=max_chars)
    extra = attach_thread_info(extra, corpus)
    both = pd.concat([labelled, extra], ignore_index=True)
    out = pd.DataFrame({"id": both["thread_id"], "repo": both["repo"], "created_at": both["created_at"],
                        "text": both["text"], "label": both["label"].astype("int64")})
    return out.sort_values(["created_at", "id"], kind="stable").reset_index(drop=True)
