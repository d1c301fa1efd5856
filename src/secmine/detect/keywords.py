"""Keyword matching over title, body and comments with an Aho-Corasick automaton (pyahocorasick).

The paper selected candidate security discussions by the keywords *vulnerability,
vulnerabilities, cwe, cve, security*.  :class:`KeywordMatcher` finds every keyword of a set in one
pass over a text, case-insensitively, optionally only at word boundaries (so ``security`` does not
match inside ``cybersecurity`` and ``cve`` not inside ``cvelib``), and reports per thread which
keywords matched in which fields.

Keyword sets are named in :data:`KEYWORD_SETS` (``paper`` is the default) and can be extended
with extra terms (``params.yaml``: ``keywords.set`` and ``keywords.extra``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

    from secmine.stages.shared import Compute

PAPER_KEYWORDS: tuple[str, ...] = ("vulnerability", "vulnerabilities", "cwe", "cve", "security")

KEYWORD_SETS: dict[str, tuple[str, ...]] = {
    "paper": PAPER_KEYWORDS,
    # A broader set for sensitivity analyses; not the paper's.
    "extended": PAPER_KEYWORDS
    + (
        "exploit",
        "malicious",
        "injection",
        "prompt injection",
        "xss",
        "csrf",
        "ssrf",
        "rce",
        "remote code execution",
        "arbitrary code",
        "backdoor",
        "jailbreak",
        "unsafe deserialization",
        "privacy",
        "attack",
    ),
    "none": (),
}

FIELDS: tuple[str, ...] = ("title", "body", "comments")

# Columns of the per-thread output (data/interim/keywords.parquet).
KEYWORD_COLUMNS: tuple[str, ...] = (
    "id",
    "platform",
    "kind",
    "repo",
    "number",
    "keyword_match",
    "matched_keywords",
    "matched_fields",
    "keywords_title",
    "keywords_body",
    "keywords_comments",
)


def parse_keywords(keyword_set: str = "paper", extra: str | Iterable[str] = "") -> tuple[str, ...]:
    """The keywords of the named set(s) plus ``extra`` terms, lower-cased, unique, sorted.

    ``keyword_set`` may name several sets separated by commas; ``extra`` is a comma-separated string
    or a list of terms.
    """
    terms: set[str] = set()
    for name in (s.strip() for s in str(keyword_set or "").split(",")):
        if not name:
            continue
        if name not in KEYWORD_SETS:
            raise ValueError(f"keyword set {name!r} is unknown; choose from {', '.join(KEYWORD_SETS)}")
        terms.update(KEYWORD_SETS[name])
    extra_terms = extra.split(",") if isinstance(extra, str) else list(extra)
    terms.update(t.strip().lower() for t in extra_terms if t and t.strip())
    if not terms:
        raise ValueError("no keywords: the keyword set is empty and no extra keyword was given")
    return tuple(sorted(t.lower() for t in terms))


def parse_fields(fields: str | Sequence[str] = FIELDS) -> tuple[str, ...]:
    """Fields to search, from a comma-separated string or a list; each one of :data:`FIELDS`."""
    names = [f.strip() for f in (fields.split(",") if isinstance(fields, str) else fields) if f.strip()]
    unknown = [f for f in names if f not in FIELDS]
    if unknown or not names:
        raise ValueError(f"fields {names!r}: choose one or more of {', '.join(FIELDS)}")
    return tuple(f for f in FIELDS if f in names)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


@dataclass
class KeywordMatcher:
    """An Aho-Corasick automaton over ``keywords`` (matched case-insensitively).

    With ``word_boundary`` a match counts only when the characters either side of it are not
    letters, digits or underscores.
    """

    keywords: Sequence[str] = PAPER_KEYWORDS
    word_boundary: bool = True
    _automaton: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import ahocorasick

        self.keywords = tuple(sorted({k.strip().lower() for k in self.keywords if k and k.strip()}))
        if not self.keywords:
            raise ValueError("KeywordMatcher needs at least one keyword")
        automaton = ahocorasick.Automaton()
        for keyword in self.keywords:
            automaton.add_word(keyword, keyword)
        automaton.make_automaton()
        self._automaton = automaton

    def find(self, text: str | None) -> list[str]:
        """The keywords found in ``text`` (sorted, each once)."""
        if not text:
            return []
        haystack = text.lower()
        found: set[str] = set()
        for end, keyword in self._automaton.iter(haystack):
            if keyword in found:
                continue
            if self.word_boundary:
                start = end - len(keyword) + 1
                if start > 0 and _is_word_char(haystack[start - 1]) and _is_word_char(keyword[0]):
                    continue
                if end + 1 < len(haystack) and _is_word_char(haystack[end + 1]) and _is_word_char(keyword[-1]):
                    continue
            found.add(keyword)
        return sorted(found)

    def matches(self, text: str | None) -> bool:
        """Whether any keyword occurs in ``text``."""
        return bool(self.find(text))

    def match_thread(
        self, title: str | None, body: str | None, comments: Iterable[Any] = (), fields: Sequence[str] = FIELDS
    ) -> dict[str, list[str]]:
        """Keywords per field (``title``, ``body``, ``comments``) of one thread."""
        out: dict[str, list[str]] = {}
        if "title" in fields:
            out["title"] = self.find(title)
        if "body" in fields:
            out["body"] = self.find(body)
        if "comments" in fields:
            found: set[str] = set()
            for comment in comments if comments is not None else ():
                text = comment if isinstance(comment, str) else (
                    comment.get("body") if isinstance(comment, dict) else getattr(comment, "body", "")
                )
                found.update(self.find(text))
            out["comments"] = sorted(found)
        return out


THREAD_INPUT_COLUMNS: tuple[str, ...] = ("id", "platform", "kind", "repo", "number", "title", "body", "comments")


def keyword_arrow_schema() -> pa.Schema:
    """The Arrow types of :data:`KEYWORD_COLUMNS` (what :func:`match_batch` returns)."""
    import pyarrow as pa

    words = pa.list_(pa.string())
    return pa.schema(
        [("id", pa.string()), ("platform", pa.string()), ("kind", pa.string()), ("repo", pa.string()),
         ("number", pa.int64()), ("keyword_match", pa.bool_()), ("matched_keywords", words),
         ("matched_fields", words), ("keywords_title", words), ("keywords_body", words), ("keywords_comments", words)]
    )


def match_batch(
    threads: pd.DataFrame,
    keywords: Sequence[str] = PAPER_KEYWORDS,
    *,
    word_boundary: bool = True,
    fields: Sequence[str] | str = FIELDS,
    progress: bool = False,
) -> pa.Table:
    """One batch of threads matched: a table of :data:`KEYWORD_COLUMNS` (:func:`keyword_arrow_schema`),
    one row per thread in the batch's order.

    The one function that matches threads: the local run calls it on the corpus, the Ray run
    (:mod:`secmine.compute`) on each batch of a Ray Data pipeline.  ``comments`` may be lists or
    arrays (of dicts with a ``body``)."""
    import pyarrow as pa
    from tqdm import tqdm

    missing = [c for c in THREAD_INPUT_COLUMNS if c not in threads]
    if missing:
        raise ValueError(f"thread frame: missing column(s) {missing}")
    matcher = KeywordMatcher(keywords, word_boundary=word_boundary)
    fields = parse_fields(fields)
    columns: dict[str, list[Any]] = {name: [] for name in KEYWORD_COLUMNS[5:]}
    iterator = zip(threads["title"].tolist(), threads["body"].tolist(), threads["comments"].tolist(), strict=True)
    for title, body, comments in tqdm(iterator, total=len(threads), desc="keywords", disable=not progress):
        per_field = matcher.match_thread(title, body, _listify(comments), fields)
        matched = sorted(set().union(*per_field.values())) if per_field else []
        columns["keyword_match"].append(bool(matched))
        columns["matched_keywords"].append(matched)
        columns["matched_fields"].append([f for f in FIELDS if per_field.get(f)])
        for name in FIELDS:
            columns[f"keywords_{name}"].append(per_field.get(name, []))
    meta = {name: threads[name].tolist() for name in KEYWORD_COLUMNS[:5]}
    meta["number"] = [int(n) for n in meta["number"]]
    return pa.Table.from_pydict({**meta, **columns}, schema=keyword_arrow_schema())


def matches_frame(table: pa.Table) -> pd.DataFrame:
    """Keyword matches (tables of :func:`match_batch`, concatenated) as the frame the stages use:
    sorted by id, the keyword columns as Python lists."""
    table = table.cast(keyword_arrow_schema()).sort_by("id")
    frame = table.to_pandas()
    for name in KEYWORD_COLUMNS[6:]:
        frame[name] = [list(v) for v in frame[name]]
    frame["keyword_match"] = frame["keyword_match"].astype(bool)
    return frame.reset_index(drop=True)


def match_threads(
    threads: pd.DataFrame,
    keywords: Sequence[str] = PAPER_KEYWORDS,
    *,
    word_boundary: bool = True,
    fields: Sequence[str] = FIELDS,
    progress: bool = False,
) -> pd.DataFrame:
    """Match every thread of a thread frame; one row per thread with :data:`KEYWORD_COLUMNS`, sorted by id.

    ``matched_keywords`` and ``matched_fields`` are sorted lists; ``keywords_<field>`` the keywords
    found in that field (empty for fields not searched).
    """
    return matches_frame(match_batch(threads, keywords, word_boundary=word_boundary, fields=fields, progress=progress))


def _listify(value: Any) -> list[Any]:
    if value is None or (isinstance(value, float) and value != value):
        return []
    return list(value)


@dataclass
class MatchCounts:
    """Running counts of keyword matches per platform and kind (what the summary table shows), so a
    corpus matched batch by batch is summarised without keeping its rows."""

    groups: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    keywords_seen: set[str] = field(default_factory=set)

    def add(self, matches: pd.DataFrame) -> None:
        """Count one batch of match rows (:data:`KEYWORD_COLUMNS`)."""
        columns = zip(
            matches["platform"].tolist(),
            matches["kind"].tolist(),
            matches["keyword_match"].tolist(),
            matches["matched_keywords"].tolist(),
            *(matches[f"keywords_{f}"].tolist() for f in FIELDS),
            strict=True,
        )
        for platform, kind, matched, keywords, *per_field in columns:
            group = self.groups.setdefault(
                (platform, kind), {"threads": 0, "matched": 0, "fields": dict.fromkeys(FIELDS, 0), "keywords": {}}
            )
            group["threads"] += 1
            group["matched"] += int(bool(matched))
            for name, found in zip(FIELDS, per_field, strict=True):
                group["fields"][name] += int(len(found) > 0)
            for keyword in keywords:
                group["keywords"][keyword] = group["keywords"].get(keyword, 0) + 1
                self.keywords_seen.add(keyword)

    def summary(self, keywords: Sequence[str] | None = None) -> pd.DataFrame:
        """The table of :func:`summarise_matches`."""
        import pandas as pd

        if keywords is None:
            keywords = sorted(self.keywords_seen)
        total = {"threads": 0, "matched": 0, "fields": dict.fromkeys(FIELDS, 0), "keywords": {}}
        for group in self.groups.values():
            total["threads"] += group["threads"]
            total["matched"] += group["matched"]
            for name in FIELDS:
                total["fields"][name] += group["fields"][name]
            for keyword, n in group["keywords"].items():
                total["keywords"][keyword] = total["keywords"].get(keyword, 0) + n
        rows = []
        for (platform, kind), group in [*sorted(self.groups.items()), (("all", "all"), total)]:
            row: dict[str, Any] = {
                "platform": platform,
                "kind": kind,
                "threads": int(group["threads"]),
                "matched": int(group["matched"]),
            }
            row["matched_pct"] = 100.0 * row["matched"] / row["threads"] if row["threads"] else 0.0
            for field_name in FIELDS:
                row[f"in_{field_name}"] = int(group["fields"][field_name])
            for keyword in keywords:
                row[keyword] = int(group["keywords"].get(keyword, 0))
            rows.append(row)
        return pd.DataFrame(rows)


def summarise_matches(matches: pd.DataFrame, keywords: Sequence[str] | None = None) -> pd.DataFrame:
    """Matches per platform and kind: threads, matched threads, share, and threads per keyword."""
    counts = MatchCounts()
    counts.add(matches)
    return counts.summary(keywords)


def keyword_figure(summary: pd.DataFrame, keywords: Sequence[str]) -> Any:
    """Bar chart: threads matching each keyword, per platform and kind (counts, each labelled; a
    share would be a rate over a population that, in a snapshot corpus, holds posts selected as
    security posts)."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    from secmine.analysis.data import source_name

    parts = summary[summary["platform"] != "all"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    labels = [f"{source_name(p, k)}\n({int(n):,} threads)"
              for p, k, n in zip(parts["platform"], parts["kind"], parts["threads"], strict=True)]
    width = 0.8 / max(1, len(keywords))
    x = np.arange(len(labels))
    top = 1
    for i, keyword in enumerate(keywords):
        counts = parts[keyword].to_numpy(int)
        top = max(top, int(counts.max()) if len(counts) else 1)
        bars = ax.bar(x + i * width - 0.4 + width / 2, counts, width, label=keyword)
        ax.bar_label(bars, labels=[f"{c:,}" for c in counts], padding=1, fontsize=6)
    ax.set_xticks(x, labels)
    ax.set_ylabel("threads matching")
    ax.set_ylim(0, top * 1.3)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Keyword matches per platform and kind")
    ax.legend(fontsize=8, ncols=min(5, max(1, len(keywords))), loc="upper left", frameon=False)
    fig.tight_layout()
    return fig


SETTINGS_KEY = b"secmine.keywords"


def matches_schema() -> Any:
    """The Arrow schema of the per-thread matches file."""
    import pyarrow as pa

    words = pa.list_(pa.string())
    return pa.schema(
        [("id", pa.string()), ("platform", pa.string()), ("kind", pa.string()), ("repo", pa.string()),
         ("number", pa.int64()), ("keyword_match", pa.bool_())]
        + [(name, words) for name in KEYWORD_COLUMNS[6:]]
    )


def _settings_metadata(keywords: Sequence[str], word_boundary: bool, fields: Sequence[str]) -> dict[bytes, bytes]:
    import json

    settings = {"keywords": list(keywords), "word_boundary": bool(word_boundary), "fields": list(fields)}
    return {SETTINGS_KEY: json.dumps(settings, sort_keys=True).encode()}


def write_matches(
    matches: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    keywords: Sequence[str],
    word_boundary: bool,
    fields: Sequence[str],
) -> Path:
    """The per-thread matches as Parquet, with the settings that made them in its metadata
    (:func:`read_settings`), so later stages use the same keywords without reading params."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from secmine.io import atomic_path

    schema = matches_schema().with_metadata(_settings_metadata(keywords, word_boundary, fields))
    table = pa.Table.from_pandas(matches[list(KEYWORD_COLUMNS)], schema=schema, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(schema.metadata), tmp)
    return Path(path)


def read_settings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``keywords``, ``word_boundary`` and ``fields`` the keyword matches at ``path`` were made with."""
    import json

    import pyarrow.parquet as pq

    from secmine.errors import MissingInputError, SecmineError

    source = Path(path)
    if not source.exists():
        raise MissingInputError(source, made_by="keywords")
    metadata = pq.read_schema(source).metadata or {}
    if SETTINGS_KEY not in metadata:
        raise SecmineError(f"{source}: keyword matches without their settings", hint="rerun the `keywords` stage")
    return json.loads(metadata[SETTINGS_KEY])


ROWS_PER_GROUP = 50_000  # row groups of the matches file (small rows: ids, a few keywords)
THREAD_FIELDS: tuple[str, ...] = ("id", "platform", "kind", "repo", "number", "title", "body", "comments")


def thread_batches(path: str | os.PathLike[str], *, batch_size: int = 2_000) -> Iterable[pd.DataFrame]:
    """The threads keyword matching needs (:data:`THREAD_FIELDS`), as frames of at most
    ``batch_size`` threads: streamed from a corpus folder or Parquet file; a JSON-lines file (small
    inputs) is read whole (duplicate ids are an error) and cut into batches."""
    source = Path(path)
    if source.is_dir() or source.suffix.lower() == ".parquet":
        from secmine.collect.corpus import iter_batches

        for batch in iter_batches(source, columns=THREAD_FIELDS, batch_size=batch_size):
            yield batch.to_pandas()
        return
    from secmine.detect.corpus import load_threads

    frame = load_threads(source, columns=list(THREAD_FIELDS))
    for start in range(0, len(frame), batch_size):
        yield frame.iloc[start : start + batch_size]


def _matched_batches(
    corpus: str | os.PathLike[str],
    keywords: Sequence[str],
    word_boundary: bool,
    fields: Sequence[str],
    batch_size: int,
    compute: Compute | None,
) -> Iterable[pd.DataFrame]:
    """The corpus's match rows, a batch at a time: matched here, or by Ray (then sliced)."""
    if compute is not None and compute.engine == "ray":
        from secmine.compute.keywords import match_corpus

        matches = match_corpus(corpus, keywords, word_boundary=word_boundary, fields=fields, compute=compute)
        for start in range(0, len(matches), batch_size):
            yield matches.iloc[start:start + batch_size]
        return
    for threads in thread_batches(corpus, batch_size=batch_size):
        yield match_threads(threads, keywords, word_boundary=word_boundary, fields=fields)


def run_keywords(
    corpus: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    keyword_set: str = "paper",
    extra: str = "",
    word_boundary: bool = True,
    fields: str | Sequence[str] = FIELDS,
    tables_dir: str | os.PathLike[str] | None = None,
    figures_dir: str | os.PathLike[str] | None = None,
    metrics: str | os.PathLike[str] | None = None,
    progress: bool = True,
    batch_size: int = 2_000,
    compute: Compute | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``keywords`` stage: match the corpus, write the per-thread Parquet, table, figure, metrics.

    Streams: the corpus is matched batch by batch; each batch of match rows is counted for the
    summary and goes to an external merge sort by id (:class:`secmine.collect.corpus.SortedRuns`),
    whose merged stream is written with a ParquetWriter.  ``compute`` (the shared ``compute`` block):
    with ``engine: ray`` the batches are matched by a Ray Data pipeline
    (:func:`secmine.compute.keywords.match_corpus`, the same :func:`match_batch` on each batch) and
    written the same way, so the outputs are the same bytes.  Returns ``(matched, summary)``: the rows
    of the threads that match a keyword (a small share of the corpus) and the summary table.
    """
    import shutil
    import tempfile

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from secmine import io
    from secmine.collect.corpus import SortedRuns

    keywords = parse_keywords(keyword_set, extra)
    field_names = parse_fields(fields)
    schema = matches_schema()
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".work", dir=target.parent))
    counts = MatchCounts()
    matched_parts: list[pd.DataFrame] = []
    columns = list(KEYWORD_COLUMNS)
    try:
        runs = SortedRuns(work, schema, key=lambda r: r["id"], run_bytes=8 << 20, read_rows=256)
        bar = tqdm(desc="keywords", unit="thread", disable=not progress, mininterval=5)
        for matches in _matched_batches(corpus, keywords, word_boundary, field_names, batch_size, compute):
            counts.add(matches)
            matched_parts.append(matches[matches["keyword_match"]])
            for record in pa.Table.from_pandas(matches[columns], schema=schema, preserve_index=False).to_pylist():
                runs.add(record, 160 + len(record["repo"] or "") + 2 * len(record["id"]))
            bar.update(len(matches))
        bar.close()
        metadata = _settings_metadata(keywords, word_boundary, field_names)
        with io.atomic_path(target) as tmp:
            writer = pq.ParquetWriter(tmp, schema.with_metadata(metadata))
            chunk: list[dict[str, Any]] = []
            previous = None

            def flush() -> None:
                table = pa.Table.from_pydict({c: [r[c] for r in chunk] for c in columns}, schema=schema)
                writer.write_table(table.replace_schema_metadata(metadata))
                chunk.clear()

            for record in runs.merged():
                if record["id"] == previous:
                    raise ValueError(f"{corpus}: field 'id': duplicate thread {previous!r} (rebuild the corpus)")
                previous = record["id"]
                chunk.append(record)
                if len(chunk) >= ROWS_PER_GROUP:
                    flush()
            if chunk:
                flush()
            writer.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = counts.summary(keywords)
    if tables_dir is not None:
        io.write_table(summary, Path(tables_dir) / "keyword_matches", float_format="{:.1f}")
    if figures_dir is not None:
        import matplotlib.pyplot as plt

        fig = keyword_figure(summary, keywords)
        io.save_figure(fig, Path(figures_dir) / "keyword_matches")
        plt.close(fig)
    if metrics is not None:
        total = summary[summary["platform"] == "all"].iloc[0]
        io.write_json(
            metrics,
            {
                "keywords": list(keywords),
                "word_boundary": bool(word_boundary),
                "fields": list(field_names),
                "threads": int(total["threads"]),
                "matched": int(total["matched"]),
                "matched_pct": round(float(total["matched_pct"]), 4),
            },
        )
    matched = (
        pd.concat(matched_parts, ignore_index=True).sort_values("id", kind="stable").reset_index(drop=True)
        if matched_parts
        else pd.DataFrame(columns=list(KEYWORD_COLUMNS))
    )
    return matched, summary
