"""Reading threads and texts for the detect stages, whatever the input format.

* a corpus folder or Parquet file of the ``collect`` stage (:func:`secmine.collect.corpus.read_corpus`);
* JSON lines in the snapshot schema (``.jsonl``, ``.jsonl.gz``, ``.json``), as ``ai_issues/issues.jsonl.gz``;
* a CSV with a text column (and optionally an id column) — for :func:`load_inputs` only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from secmine.text import DEFAULT_MAX_CHARS, canonical_text, frame_texts

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")
META_COLUMNS: tuple[str, ...] = ("id", "platform", "kind", "repo", "number", "created_at")


def _is_jsonl(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in JSONL_SUFFIXES)


def load_threads(path: str | os.PathLike[str], *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Threads as a frame with :data:`secmine.schema.THREAD_COLUMNS` (or ``columns``), sorted by id.

    ``path`` is a corpus folder / Parquet file, or a JSON-lines snapshot.
    """
    from secmine.schema import THREAD_COLUMNS

    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"{source}: threads not found")
    wanted = list(columns) if columns is not None else list(THREAD_COLUMNS)
    if source.is_dir() or source.suffix.lower() == ".parquet":
        from secmine.collect.corpus import read_corpus

        return read_corpus(source, columns=wanted)
    if _is_jsonl(source):
        from secmine.schema import threads_to_frame
        from secmine.snapshot import read_snapshot

        frame = threads_to_frame(read_snapshot(source))
        duplicated = frame["id"].duplicated()
        if duplicated.any():
            first = frame.index[duplicated][0]
            raise ValueError(f"{source}, line {int(first) + 1}, field 'id': duplicate thread {frame['id'][first]!r}")
        frame = frame.sort_values("id", kind="stable").reset_index(drop=True)
        return frame[wanted]
    raise ValueError(f"{source}: unknown thread format (use a corpus folder, .parquet or JSON lines)")


def load_inputs(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    id_column: str = "id",
    max_chars: int = DEFAULT_MAX_CHARS,
) -> pd.DataFrame:
    """Texts to classify: a frame with ``id``, ``text`` (canonical) and, for threads, the metadata
    columns of :data:`META_COLUMNS`.  Row order is the input order (threads: sorted by id).

    A CSV needs ``text_column``; its ``id_column`` is used when present, the row number otherwise.
    """
    import pandas as pd

    source = Path(path)
    if source.suffix.lower() in {".csv", ".tsv"} or source.name.lower().endswith((".csv.gz", ".tsv.gz")):
        if not source.is_file():
            raise FileNotFoundError(f"{source}: input file not found")
        from secmine.inputs import read_csv

        sep = "\t" if ".tsv" in source.name.lower() else ","
        frame = read_csv(source, what="input CSV", sep=sep, dtype=str, keep_default_na=False)
        if text_column not in frame.columns:
            raise ValueError(f"{source}: no column {text_column!r} (found {list(frame.columns)}); set --text-column")
        ids = frame[id_column].tolist() if id_column in frame.columns else [str(i) for i in range(len(frame))]
        seen: dict[str, int] = {}
        for row, value in enumerate(ids, start=2):
            if not str(value).strip():
                raise ValueError(f"{source}, row {row}, field {id_column!r}: empty; give every row an id "
                                 "(or drop the column to number the rows)")
            if value in seen:
                raise ValueError(f"{source}, row {row}, field {id_column!r}: id {value!r} repeats row {seen[value]}")
            seen[value] = row
        return pd.DataFrame(
            {"id": ids, "text": [canonical_text(t, max_chars) for t in frame[text_column].tolist()]}
        )
    threads = load_threads(source, columns=[*META_COLUMNS, "title", "body", "comments"])
    return thread_inputs(threads, max_chars)


def thread_inputs(threads: pd.DataFrame, max_chars: int = DEFAULT_MAX_CHARS) -> pd.DataFrame:
    """Texts to classify of a frame of threads (:data:`META_COLUMNS`, ``title``, ``body``,
    ``comments``): the metadata columns and ``text`` (canonical, cut at ``max_chars``), in the frame's
    order.  What a local run prepares for the whole input and a Ray actor for each batch."""
    out = threads[list(META_COLUMNS)].copy()
    out["text"] = frame_texts(threads, max_chars)
    return out.reset_index(drop=True)
