"""Streaming a Parquet corpus into the classifier: bounded memory, cheap restarts.

A corpus (a partitioned Parquet dataset, :mod:`secmine.collect.corpus`) is read in batches of rows
with pyarrow -- only the columns the texts and the output need -- and each file's batches (every
file is sorted by ``id``) are merged into one stream in ``id`` order (:func:`sorted_batches`), the
order :func:`secmine.collect.corpus.read_corpus` gives.  :func:`corpus_chunks` cuts the stream into
chunks of ``chunk_size`` threads and builds the canonical texts of one chunk at a time, so neither
the corpus nor its texts are ever held whole.

Restarts: a run is named by :func:`input_fingerprint` (the bytes of the corpus files) together with
the model, engine, text length and chunk size; chunk ``k`` of that run holds the rows
``k * chunk_size ...`` with their metadata and raw scores.  A restarted run finds the finished
prefix of chunks, and the reader starts after its last ``id`` -- skipping whole row groups by their
``id`` statistics -- instead of rebuilding the texts of the finished chunks.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import pyarrow.dataset as ds

#: What a chunk needs from the corpus besides the text columns (the classified output's metadata).
META_COLUMNS: tuple[str, ...] = ("id", "platform", "kind", "repo", "number", "created_at")
TEXT_COLUMNS: tuple[str, ...] = ("title", "body", "comments")
#: Rows read from one file at a time: the merge holds one such batch per file.
MIN_BATCH_ROWS = 64


class CorpusOrderError(ValueError):
    """A corpus file is not sorted by ``id`` (the writer sorts it; the stream needs it)."""


def is_corpus(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a Parquet corpus (a folder of partitions or one ``.parquet`` file)."""
    source = Path(path)
    return source.is_dir() or source.suffix.lower() == ".parquet"


def open_corpus(path: str | os.PathLike[str]) -> ds.Dataset:
    """The corpus at ``path`` as a pyarrow dataset with the thread schema (partitions: hive style)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from secmine.schema import thread_arrow_schema

    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"{source}: corpus not found (run the collect stage first)")
    schema = thread_arrow_schema()
    if source.is_dir():
        # platform=*/kind=*/bucket=*/ (the collect stage's layout) or platform=*/ alone: a key that is
        # only in the folder names is read from there
        keys = pa.schema([schema.field("platform"), schema.field("kind"), pa.field("bucket", pa.int32())])
        partitioning = ds.partitioning(keys, flavor="hive")
        return ds.dataset(source, format="parquet", schema=schema.append(keys.field("bucket")),
                          partitioning=partitioning, exclude_invalid_files=False,
                          ignore_prefixes=[".", "_"])
    return ds.dataset(source, format="parquet", schema=schema)


def _fragments(dataset: ds.Dataset) -> list[Any]:
    return sorted(dataset.get_fragments(), key=lambda f: f.path)


def count_rows(dataset: ds.Dataset) -> int:
    """Rows of the dataset, from the Parquet footers (nothing is read)."""
    return int(sum(f.metadata.num_rows for f in _fragments(dataset)))


def input_fingerprint(dataset: ds.Dataset, root: str | os.PathLike[str]) -> str:
    """SHA-256 of the corpus files (their paths relative to ``root`` and their bytes): a few seconds
    for millions of threads, against minutes to rebuild their texts."""
    digest = hashlib.sha256()
    base = Path(root)
    for fragment in _fragments(dataset):
        file = Path(fragment.path)
        name = file.relative_to(base).as_posix() if base.is_dir() else file.name
        digest.update(name.encode() + b"\0")
        with file.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _row_groups_after(fragment: Any, after: str | None) -> list[int] | None:
    """Row groups of ``fragment`` that may hold ids greater than ``after`` (by their statistics)."""
    if after is None:
        return None
    meta = fragment.metadata
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    if "id" not in names:
        return None
    column = names.index("id")
    keep = []
    for index in range(meta.num_row_groups):
        stats = meta.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max or stats.max > after:
            keep.append(index)
    return keep


def _file_batches(dataset: ds.Dataset, fragment: Any, columns: Sequence[str], batch_rows: int,
                  after: str | None) -> Iterator[pa.Table]:
    """Batches of one file in its order (ids greater than ``after`` only), checked to be sorted."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    groups = _row_groups_after(fragment, after)
    if groups is not None:
        if not groups:
            return
        fragment = fragment.subset(row_group_ids=groups)
    expression = ds.field("id") > after if after is not None else None
    previous: str | None = None
    for batch in fragment.to_batches(schema=dataset.schema, columns=list(columns), filter=expression,
                                     batch_size=batch_rows, batch_readahead=1, fragment_readahead=1):
        if batch.num_rows == 0:
            continue
        table = pa.Table.from_batches([batch])
        ids = table.column("id")
        if ids.null_count:
            raise CorpusOrderError(f"{fragment.path}: a thread without an id; rebuild the corpus with the collect stage")
        ordered = ids.num_chunks == 0 or len(ids) < 2 or pc.all(pc.less(ids[:-1], ids[1:])).as_py()
        first = ids[0].as_py()
        if not ordered or (previous is not None and first <= previous):
            raise CorpusOrderError(f"{fragment.path}: rows are not sorted by unique id; rewrite it with "
                                   "secmine.collect.corpus.write_corpus (it sorts every file by id)")
        previous = ids[-1].as_py()
        yield table


def sorted_batches(dataset: ds.Dataset, columns: Sequence[str], *, batch_rows: int = 1024,
                   after: str | None = None) -> Iterator[pa.Table]:
    """The rows of every file of ``dataset`` merged in ``id`` order, as a stream of tables (ids
    greater than ``after`` only).  Each file is sorted by id, so holding one batch per file is enough:
    every step emits the rows up to the smallest last id among the files' current batches."""
    import pyarrow as pa
    import pyarrow.compute as pc

    read = list(columns) if "id" in columns else ["id", *columns]
    fragments = _fragments(dataset)
    per_file = max(MIN_BATCH_ROWS, batch_rows // max(1, len(fragments)))
    streams = [_file_batches(dataset, f, read, per_file, after) for f in fragments]
    buffers: list[pa.Table | None] = [None] * len(streams)
    while True:
        for index, stream in enumerate(streams):
            if buffers[index] is None and stream is not None:
                buffers[index] = next(stream, None)
                if buffers[index] is None:
                    streams[index] = None  # type: ignore[call-overload]
        live = [b for b in buffers if b is not None]
        if not live:
            return
        bound = min(b.column("id")[-1].as_py() for b in live)
        parts = []
        for index, table in enumerate(buffers):
            if table is None:
                continue
            ids = table.column("id")
            take = int(pc.sum(pc.less_equal(ids, bound)).as_py() or 0)  # a sorted prefix
            if take:
                parts.append(table.slice(0, take))
            buffers[index] = table.slice(take) if take < table.num_rows else None
        merged = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        yield merged.sort_by("id").select(read) if len(parts) > 1 else merged.select(read)


@dataclass(frozen=True)
class Chunk:
    """One chunk of the corpus: its position, metadata (Arrow) and canonical texts."""

    index: int
    start: int
    meta: pa.Table
    texts: list[str]
    threads: pa.Table  # the text columns too (keyword matching without the keywords stage)


def chunk_texts(table: pa.Table, max_chars: int) -> list[str]:
    """Canonical texts of the rows of ``table`` (columns title, body, comments), as
    :func:`secmine.text.frame_texts` builds them from a whole corpus."""
    from secmine.text import thread_text

    titles = table.column("title").to_pylist()
    bodies = table.column("body").to_pylist()
    comments = table.column("comments").to_pylist() if "comments" in table.column_names else [None] * len(titles)
    return [thread_text(t, b, c or (), max_chars) for t, b, c in zip(titles, bodies, comments, strict=True)]


def corpus_chunks(dataset: ds.Dataset, *, chunk_size: int, max_chars: int, first_index: int = 0,
                  after: str | None = None) -> Iterator[Chunk]:
    """Chunks of ``chunk_size`` threads in id order, starting at chunk ``first_index`` whose rows
    follow the id ``after`` (the last id of the finished chunks; ``None``: from the start).  Texts are
    built one chunk at a time."""
    import pyarrow as pa

    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    columns = [*META_COLUMNS, *TEXT_COLUMNS]
    pending: list[pa.Table] = []
    held = 0
    index = first_index

    def emit(table: pa.Table) -> Chunk:
        nonlocal index
        chunk = Chunk(index=index, start=index * chunk_size, meta=table.select(list(META_COLUMNS)),
                      texts=chunk_texts(table, max_chars), threads=table)
        index += 1
        return chunk

    for batch in sorted_batches(dataset, columns, batch_rows=chunk_size, after=after):
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_size:
            table = pa.concat_tables(pending).combine_chunks()
            yield emit(table.slice(0, chunk_size))
            rest = table.slice(chunk_size)
            pending, held = ([rest] if rest.num_rows else []), rest.num_rows
    if held:
        yield emit(pa.concat_tables(pending).combine_chunks())
