"""The thread corpus on disk: a partitioned Parquet dataset, its streaming writer and readers.

Layout (hive style: platform, kind and a hash bucket of the thread id)::

    data/raw/corpus/
      platform=github/kind=issue/bucket=0/part-0.parquet
      platform=github/kind=issue/bucket=1/part-0.parquet
      ...
      platform=huggingface/kind=discussion/bucket=7/part-0.parquet
      _hf_models.parquet      Hugging Face model metadata and GitHub links (live crawls; empty otherwise)
      _manifest.json          provenance: how the corpus was built, counts (no timestamps)

Each part holds the columns of :data:`secmine.schema.THREAD_COLUMNS` except ``platform`` and
``kind`` (partition keys), with the Arrow types of :func:`secmine.schema.thread_arrow_schema`, in row
groups of :data:`ROW_GROUP_SIZE` threads (a reader holds one row group, tens of MB, at a time).
The bucket is a stable hash of the id (:func:`bucket_of`, BLAKE2b, not Python's salted ``hash``)
modulo :data:`BUCKETS`, so a partition stays a bounded share of its platform and kind.  Files whose
name starts with ``_`` or ``.`` are not part of the thread dataset (Arrow and DuckDB skip them).

Writes are deterministic: rows sorted by ``id`` within a partition, fixed row groups, no pandas or
timestamp metadata, so the same threads give byte-identical files.  The whole folder is replaced
atomically.  :class:`PartitionWriter` streams records (in partition order) into the layout;
:class:`Spool` takes records in any order, with duplicates, and gives them back de-duplicated in
partition order by an external merge sort (:class:`SortedRuns`: sorted Parquet runs merged with
:func:`heapq.merge`), so a corpus of millions of threads is written in bounded memory.

Readers: :func:`iter_batches` streams Arrow record batches (only the columns asked for, optionally
only some ids), :func:`read_corpus` gives a small corpus (or a few columns) as a frame sorted by
``id``, and :func:`connect` opens a DuckDB connection with a ``threads`` view for SQL aggregates.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine.io import atomic_dir
from secmine.schema import PLATFORMS, THREAD_COLUMNS, SchemaError, Thread, thread_arrow_schema

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pandas as pd
    import pyarrow as pa

PARTITION = "platform"
PARTITIONS: tuple[str, ...] = ("platform", "kind", "bucket")
BUCKETS = 8
PART_NAME = "part-0.parquet"
MODELS_FILE = "_hf_models.parquet"
MANIFEST_FILE = "_manifest.json"
ROW_GROUP_SIZE = 5_000
BATCH_ROWS = 2_000
COMPRESSION = "zstd"
FAN_IN = 12  # runs merged at once (more are merged in groups first)
RUN_BYTES = 32 << 20  # text per sorted run of the external sort (Python holds about 3x that)
# text per row group of a sorted run.  A merge holds the footer of each run it reads, which grows
# with the run's row groups: with groups of 32 threads, collect at 2.2 M threads peaked at 2.19 GiB
# (12 open files of 5,700 row groups hold about 1.3 GB of footers); with 4 MiB groups, 0.44 GiB
RUN_GROUP_BYTES = 4 << 20
DUCKDB_MEMORY = "512MB"  # DuckDB's memory limit for the out-of-core sorts (it spills to disk beyond it)

# Hugging Face model metadata and the GitHub repository each model links to.
MODEL_COLUMNS: tuple[str, ...] = (
    "repo_type",
    "repo_id",
    "downloads",
    "downloads_all_time",
    "likes",
    "trending_score",
    "pipeline_tag",
    "tags",
    "card_data",
    "base_models",
    "security_scan_done",
    "files_with_issues",
    "children_adapter",
    "children_merge",
    "children_quantized",
    "children_finetune",
    "github_links",
    "github_repo",
    "link_score",
    "created_at",
    "last_modified",
)


def model_arrow_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("repo_type", pa.string()),
            ("repo_id", pa.string()),
            ("downloads", pa.int64()),
            ("downloads_all_time", pa.int64()),
            ("likes", pa.int64()),
            ("trending_score", pa.float64()),
            ("pipeline_tag", pa.string()),
            ("tags", pa.list_(pa.string())),
            ("card_data", pa.string()),  # JSON text
            ("base_models", pa.string()),  # JSON text
            ("security_scan_done", pa.bool_()),
            ("files_with_issues", pa.list_(pa.string())),
            ("children_adapter", pa.int64()),
            ("children_merge", pa.int64()),
            ("children_quantized", pa.int64()),
            ("children_finetune", pa.int64()),
            ("github_links", pa.list_(pa.string())),
            ("github_repo", pa.string()),
            ("link_score", pa.float64()),
            ("created_at", pa.string()),
            ("last_modified", pa.string()),
        ]
    )


def bucket_of(thread_id: str, buckets: int = BUCKETS) -> int:
    """The hash bucket of a thread id: BLAKE2b of its UTF-8 bytes modulo ``buckets`` (stable across
    runs, machines and Python versions)."""
    digest = hashlib.blake2b(thread_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def partition_key(record: dict[str, Any]) -> tuple[str, str, int]:
    """``(platform, kind, bucket)`` of a thread record."""
    return (record["platform"], record["kind"], bucket_of(record["id"]))


def partition_dir(platform: str, kind: str, bucket: int) -> str:
    """The folder of one partition, relative to the corpus root."""
    return f"platform={platform}/kind={kind}/bucket={bucket}"


def part_schema() -> pa.Schema:
    """The schema of one partition file (the thread schema without ``platform`` and ``kind``)."""
    schema = thread_arrow_schema()
    for name in ("platform", "kind"):
        schema = schema.remove(schema.get_field_index(name))
    return schema


def _check_record(record: dict[str, Any], position: int, where: str = "corpus") -> None:
    if record.get("platform") not in PLATFORMS:
        raise SchemaError(f"{where}: row {position}, field 'platform': {record.get('platform')!r}")
    kind = record.get("kind")
    if not kind or "/" in str(kind) or "=" in str(kind):
        raise SchemaError(f"{where}: row {position}, field 'kind': {kind!r} cannot name a partition")


def _write_parquet_table(table: pa.Table, path: Path, *, row_group_size: int = ROW_GROUP_SIZE) -> None:
    import pyarrow.parquet as pq

    table = table.replace_schema_metadata(None)
    pq.write_table(
        table,
        path,
        row_group_size=row_group_size,
        compression=COMPRESSION,
        use_dictionary=True,
        write_statistics=True,
        store_schema=False,
    )


class PartitionWriter:
    """Write thread records into the partitioned layout under ``root``, streaming.

    Records must arrive in partition order: sorted by ``(platform, kind, bucket_of(id), id)``
    (:meth:`Spool.winners` gives them so).  One Parquet file is open at a time and at most
    ``row_group_size`` records are buffered, so memory does not depend on the corpus size.
    ``counts`` holds the threads written per platform.
    """

    def __init__(self, root: str | os.PathLike[str], *, row_group_size: int | None = None) -> None:
        self.root = Path(root)
        self.row_group_size = row_group_size or ROW_GROUP_SIZE
        self.schema = part_schema()
        self.counts: dict[str, int] = {}
        self._key: tuple[str, str, int] | None = None
        self._last: tuple[str, str, int, str] | None = None
        self._writer: Any = None
        self._buffer: list[dict[str, Any]] = []
        self._position = 0

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            _check_record(record, self._position)
            key = partition_key(record)
            order = (*key, record["id"])
            if self._last is not None and order <= self._last:
                raise SchemaError(
                    f"corpus: row {self._position}, field 'id': {record['id']!r} out of partition order or "
                    "duplicated (write through Spool or sort by platform, kind, bucket, id)"
                )
            self._last = order
            self._position += 1
            if key != self._key:
                self._close_part()
                self._open_part(key)
            self._buffer.append(record)
            self.counts[key[0]] = self.counts.get(key[0], 0) + 1
            if len(self._buffer) >= self.row_group_size:
                self._flush()

    def _open_part(self, key: tuple[str, str, int]) -> None:
        import pyarrow.parquet as pq

        folder = self.root / partition_dir(*key)
        folder.mkdir(parents=True, exist_ok=True)
        self._key = key
        self._writer = pq.ParquetWriter(
            folder / PART_NAME,
            self.schema,
            compression=COMPRESSION,
            use_dictionary=True,
            write_statistics=True,
            store_schema=False,
        )

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._buffer:
            return
        names = self.schema.names
        table = pa.Table.from_pydict(
            {name: [r.get(name) for r in self._buffer] for name in names}, schema=self.schema
        )
        self._writer.write_table(table, row_group_size=self.row_group_size)
        self._buffer = []

    def _close_part(self) -> None:
        if self._writer is not None:
            self._flush()
            self._writer.close()
            self._writer = None

    def close(self) -> dict[str, int]:
        self._close_part()
        return dict(self.counts)


def duckdb_connection(temp_dir: str | os.PathLike[str] | None = None, memory_limit: str = DUCKDB_MEMORY) -> Any:
    """A DuckDB connection with a memory limit (it spills to ``temp_dir`` beyond it) and 2 threads."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET threads = 2")
    con.execute("SET preserve_insertion_order = false")
    if temp_dir is not None:
        Path(temp_dir).mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{Path(temp_dir).as_posix()}'")
    return con


class SortedRuns:
    """An external merge sort of records (dicts) with a fixed Arrow ``schema``.

    :meth:`add` buffers records; when the buffer holds about ``run_bytes`` of text it is sorted by
    ``key`` and written as a Parquet run file in ``folder``, in row groups of at most
    ``group_bytes`` of text (``record_size`` estimates a record's; without it, 256 bytes) and
    :data:`BATCH_ROWS` records.  :meth:`merged` merges the runs with :func:`heapq.merge` (stable:
    among equal keys, records keep the order they were added in), at most :data:`FAN_IN` at once,
    reading each run ``read_rows`` records at a time.  Memory: one buffer, plus per run being
    merged its footer (a few KB per row group) and the pages of ``read_rows`` records.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        schema: pa.Schema,
        key: Callable[[dict[str, Any]], Any],
        *,
        run_bytes: int | None = None,
        read_rows: int = 32,
        record_size: Callable[[dict[str, Any]], int] | None = None,
        group_bytes: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.key = key
        self.run_bytes = run_bytes or RUN_BYTES
        self.read_rows = read_rows
        self.record_size = record_size or (lambda record: 256)
        self.group_bytes = group_bytes or RUN_GROUP_BYTES
        self.rows = 0
        self.runs: list[Path] = []
        self._buffer: list[dict[str, Any]] = []
        self._bytes = 0

    def add(self, record: dict[str, Any], size: int = 256) -> None:
        self._buffer.append(record)
        self._bytes += size
        self.rows += 1
        if self._bytes >= self.run_bytes:
            self._write_run()

    def _write_run(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort(key=self.key)
        file = self.folder / f"run-{len(self.runs):05d}.parquet"
        self._write_records(file, self._buffer)
        self.runs.append(file)
        self._buffer = []
        self._bytes = 0

    def _read(self, file: Path) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        # no read-ahead: a merge holds the pages of a few records of each run
        handle = pq.ParquetFile(file, pre_buffer=False, buffer_size=1 << 16)
        for batch in handle.iter_batches(batch_size=self.read_rows, use_threads=False):
            yield from batch.to_pylist()

    def _write_records(self, file: Path, records: Iterable[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = self.schema.names
        with pq.ParquetWriter(file, self.schema, compression="lz4", write_statistics=False) as writer:
            chunk: list[dict[str, Any]] = []
            chunk_bytes = 0

            def flush() -> None:  # one row group
                writer.write_table(pa.Table.from_pydict({n: [r.get(n) for r in chunk] for n in names},
                                                        schema=self.schema), row_group_size=len(chunk))

            for record in records:
                chunk.append(record)
                chunk_bytes += self.record_size(record)
                if len(chunk) >= BATCH_ROWS or chunk_bytes >= self.group_bytes:
                    flush()
                    chunk, chunk_bytes = [], 0
            if chunk:
                flush()

    def merged(self) -> Iterator[dict[str, Any]]:
        """Every record added, in ``key`` order (runs are deleted once read).

        At most :data:`FAN_IN` runs are merged at once: with more, consecutive groups of runs are
        first merged into longer runs (which keeps the order of equal keys), so the merge's memory
        does not grow with the number of runs."""
        import heapq

        if not self.runs:  # everything fits one buffer: no file at all
            self._buffer.sort(key=self.key)
            buffer, self._buffer = self._buffer, []
            yield from buffer
            return
        self._write_run()
        level = 0
        while len(self.runs) > FAN_IN:
            level += 1
            merged_runs = []
            for start in range(0, len(self.runs), FAN_IN):
                group = self.runs[start : start + FAN_IN]
                if len(group) == 1:
                    merged_runs.append(group[0])
                    continue
                file = self.folder / f"merge-{level}-{start // FAN_IN:05d}.parquet"
                self._write_records(file, heapq.merge(*(self._read(f) for f in group), key=self.key))
                for old in group:
                    old.unlink(missing_ok=True)
                merged_runs.append(file)
            self.runs = merged_runs
        yield from heapq.merge(*(self._read(f) for f in self.runs), key=self.key)
        for file in self.runs:
            file.unlink(missing_ok=True)


def _record_size(record: dict[str, Any]) -> int:
    comments = record.get("comments") or ()
    return (
        200
        + len(record.get("title") or "")
        + len(record.get("body") or "")
        + sum(80 + len(c.get("body") or "") for c in comments)
    )


class Spool:
    """Thread records in any order, duplicates allowed, given back de-duplicated in partition order.

    :meth:`add` takes a record with its rank (higher wins among copies of one id: the caller's
    source priority, then ``updated_at``, then the later copy); :meth:`winners` yields batches of
    records, one per id, sorted by ``(platform, kind, bucket, id)`` — what :class:`PartitionWriter`
    takes.  The records go through a :class:`SortedRuns` external merge sort in ``folder``, so
    memory stays bounded whatever their number.  ``duplicates`` counts the copies dropped.
    """

    def __init__(self, folder: str | os.PathLike[str], *, batch_rows: int | None = None,
                 run_bytes: int | None = None) -> None:
        self.folder = Path(folder)
        self.batch_rows = batch_rows or BATCH_ROWS
        self.duplicates = 0
        self._runs = SortedRuns(self.folder, self._spool_schema(), self._key, run_bytes=run_bytes,
                                record_size=_record_size)

    @property
    def rows(self) -> int:
        return self._runs.rows

    @staticmethod
    def _key(record: dict[str, Any]) -> tuple[str, str, int, str]:
        return (record["platform"], record["kind"], record["_bucket"], record["id"])

    @staticmethod
    def _spool_schema() -> pa.Schema:
        import pyarrow as pa

        schema = thread_arrow_schema()
        for name, kind in (("_bucket", pa.int32()), ("_rank", pa.int32()), ("_updated", pa.string()),
                           ("_position", pa.int64())):
            schema = schema.append(pa.field(name, kind))
        return schema

    def add(self, record: dict[str, Any], rank: int = 0) -> None:
        _check_record(record, self.rows)
        row = dict(record)
        row["_bucket"] = bucket_of(record["id"])
        row["_rank"] = rank
        row["_updated"] = record.get("updated_at") or ""
        row["_position"] = self.rows
        self._runs.add(row, _record_size(record))

    def winners(self, *, batch_rows: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Batches of records (without the spool's own columns), one per id, in partition order."""
        size = batch_rows or self.batch_rows
        batch: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        for row in self._runs.merged():
            if best is not None and row["id"] == best["id"]:
                self.duplicates += 1
                if (row["_rank"], row["_updated"], row["_position"]) > (best["_rank"], best["_updated"], best["_position"]):
                    best = row
                continue
            if best is not None:
                batch.append(_strip(best))
                if len(batch) >= size:
                    yield batch
                    batch = []
            best = row
        if best is not None:
            batch.append(_strip(best))
        if batch:
            yield batch


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in THREAD_COLUMNS}


def write_sidecars(
    root: Path, *, models: Sequence[dict[str, Any]] | pd.DataFrame | None, manifest: dict[str, Any] | None
) -> None:
    """The model table and the manifest beside the partitions."""
    _write_models(models, root / MODELS_FILE)
    if manifest is not None:
        text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        (root / MANIFEST_FILE).write_text(text, encoding="utf-8")


def write_corpus(
    threads: Iterable[Thread] | pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    models: Sequence[dict[str, Any]] | pd.DataFrame | None = None,
    manifest: dict[str, Any] | None = None,
    row_group_size: int | None = None,
) -> dict[str, int]:
    """Write threads held in memory as the partitioned corpus at ``path`` (replacing it atomically).

    ``threads`` are :class:`Thread` objects or a frame with :data:`THREAD_COLUMNS`; ids must be
    unique.  ``models`` (Hugging Face model metadata, :data:`MODEL_COLUMNS`) and ``manifest`` (a
    JSON-serialisable provenance record) are written beside the partitions.  Returns the number
    of threads per platform.  (Streams of any size go through :class:`Spool` and
    :class:`PartitionWriter`, as the ``collect`` stage does.)
    """
    import pandas as pd

    from secmine.schema import _plain

    if isinstance(threads, pd.DataFrame):
        missing = [c for c in THREAD_COLUMNS if c not in threads.columns]
        if missing:
            raise SchemaError(f"thread frame: missing column(s) {missing}")
        records = [_plain(r) for r in threads[list(THREAD_COLUMNS)].to_dict(orient="records")]
    else:
        records = [t.to_record() for t in threads]
    seen: set[str] = set()
    for position, record in enumerate(records):
        if record["id"] in seen:
            raise SchemaError(f"corpus: row {position}, field 'id': duplicate id {record['id']!r}")
        seen.add(record["id"])
        _check_record(record, position)
    records.sort(key=lambda r: (*partition_key(r), r["id"]))

    with atomic_dir(path) as staging:
        writer = PartitionWriter(staging, row_group_size=row_group_size)
        writer.write(records)
        counts = writer.close()
        write_sidecars(staging, models=models, manifest=manifest)
    return {p: counts[p] for p in PLATFORMS if p in counts}


def _write_models(models: Sequence[dict[str, Any]] | pd.DataFrame | None, path: Path) -> None:
    import pandas as pd
    import pyarrow as pa

    from secmine.schema import _plain

    if models is None:
        rows: list[dict[str, Any]] = []
    elif isinstance(models, pd.DataFrame):
        rows = [_plain(r) for r in models.to_dict(orient="records")]
    else:
        rows = list(models)
    rows = sorted(rows, key=lambda r: (r.get("repo_type") or "", r.get("repo_id") or ""))
    schema = model_arrow_schema()
    table = pa.Table.from_pydict({name: [r.get(name) for r in rows] for name in schema.names}, schema=schema)
    _write_parquet_table(table, path)


def part_files(path: str | os.PathLike[str]) -> list[Path]:
    """The Parquet files of the thread dataset at ``path`` in their fixed order: ``path`` itself when
    it is a file, else every ``*.parquet`` below the folder at any depth (``platform=*/kind=*/bucket=*/``
    or any other hive partitioning) whose name, and the names of the folders between, start with
    neither ``_`` nor ``.`` (sorted by relative path)."""
    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"{source}: corpus not found (run the collect stage first)")
    if source.is_file():
        return [source]
    files = [
        p for p in source.rglob("*.parquet")
        if p.is_file() and not any(part.startswith(("_", ".")) for part in p.relative_to(source).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(source).as_posix())


def _partition_values(root: Path, file: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if file == root:
        return values
    for part in file.relative_to(root).parent.parts:
        if "=" in part:
            key, value = part.split("=", 1)
            values[key] = int(value) if key == "bucket" else value
    return values


def _check_columns(columns: Sequence[str] | None) -> list[str]:
    wanted = list(columns) if columns is not None else list(THREAD_COLUMNS)
    unknown = [c for c in wanted if c not in THREAD_COLUMNS and c != "bucket"]
    if unknown:
        raise ValueError(f"corpus: unknown column(s) {unknown}; choose from {THREAD_COLUMNS}")
    return wanted


def iter_batches(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    batch_size: int | None = None,
    ids: Iterable[str] | pa.Array | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the corpus as Arrow record batches of at most ``batch_size`` threads.

    Only ``columns`` are read (default :data:`THREAD_COLUMNS`; ``platform``, ``kind`` and
    ``bucket`` come from the partition path); with ``ids`` only those threads are kept.  Files are
    read one row group at a time in :func:`part_files` order (sorted by id within each file), so the
    order is fixed and memory stays at one row group whatever the corpus size.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = Path(path)
    wanted = _check_columns(columns)
    keep = None
    if ids is not None:
        keep = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(list(ids), pa.string())
    types = {f.name: f.type for f in thread_arrow_schema()}
    types["bucket"] = pa.int32()
    for file in part_files(root):
        values = _partition_values(root, file)
        handle = pq.ParquetFile(file)
        present = set(handle.schema_arrow.names)
        stored = [c for c in wanted if c in present]
        read = stored if (keep is None or "id" in stored) else [*stored, "id"]
        if not read:
            read = ["id"]
        for batch in handle.iter_batches(batch_size=batch_size or BATCH_ROWS, columns=read):
            if keep is not None:
                batch = batch.filter(pc.is_in(batch.column("id"), value_set=keep))
                if batch.num_rows == 0:
                    continue
            arrays = []
            for name in wanted:
                if name in present:
                    arrays.append(batch.column(name))
                elif name in values:
                    arrays.append(pa.array([values[name]] * batch.num_rows, types[name]))
                elif name == "bucket":
                    arrays.append(pc.cast(pa.array([bucket_of(i) for i in batch.column("id").to_pylist()]), pa.int32()))
                else:
                    arrays.append(pa.nulls(batch.num_rows, types[name]))
            yield pa.RecordBatch.from_arrays(arrays, names=wanted)


def count_threads(path: str | os.PathLike[str]) -> int:
    """The number of threads of a corpus, from the Parquet footers (nothing else is read)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in part_files(path))


def read_corpus(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The threads of a corpus folder (or of one Parquet file) as a frame sorted by ``id``.

    For small corpora and narrow reads (a few columns, or the rows of ``ids``): the frame is in
    memory.  Stages that touch every thread stream with :func:`iter_batches` instead.  Columns are
    :data:`THREAD_COLUMNS` (or ``columns``, in that order); ``labels`` and ``comments`` are plain
    Python lists (comments as ``{author, body, created_at}`` dicts).
    """
    import pyarrow as pa

    wanted = _check_columns(columns)
    read = wanted if "id" in wanted else [*wanted, "id"]
    batches = list(iter_batches(path, columns=read, ids=ids, batch_size=max(ROW_GROUP_SIZE, BATCH_ROWS)))
    if batches:
        table = pa.Table.from_batches(batches)
    else:
        schema = thread_arrow_schema()
        table = pa.schema([schema.field(c) if c in schema.names else pa.field(c, pa.int32()) for c in read]).empty_table()
    table = table.sort_by("id")
    frame = table.to_pandas()
    for name in ("labels", "comments"):
        if name in frame.columns:
            frame[name] = [_as_list(v) for v in frame[name]]
    frame = frame[wanted].reset_index(drop=True)
    return frame


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, float) and value != value:
        return []
    return [dict(v) if isinstance(v, dict) else v for v in list(value)]


def read_models(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The Hugging Face model metadata stored beside a corpus (empty for snapshot corpora)."""
    import pyarrow.parquet as pq

    file = Path(path) / MODELS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file}: model table not found")
    return pq.read_table(file).to_pandas()


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The provenance record of a corpus."""
    file = Path(path) / MANIFEST_FILE
    return json.loads(file.read_text(encoding="utf-8"))


def parquet_glob(path: str | os.PathLike[str]) -> str:
    """The glob DuckDB reads the corpus with (partitions only, not the ``_`` files)."""
    return (Path(path) / "platform=*" / "kind=*" / "bucket=*" / "*.parquet").as_posix()


def connect(
    path: str | os.PathLike[str],
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    view: str = "threads",
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view ``threads`` over the corpus (and ``hf_models`` when present).

    The view has the thread columns plus ``bucket``; DuckDB reads only the columns a query names.
    A new connection is memory-limited (:func:`duckdb_connection`).  Example::

        con = connect("data/raw/corpus")
        con.sql("SELECT platform, kind, count(*) FROM threads GROUP BY ALL").df()
    """
    if not view.isidentifier():
        raise ValueError(f"view name {view!r} is not an identifier")
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: corpus folder not found")
    con = con or duckdb_connection()
    glob = parquet_glob(folder).replace("'", "''")
    con.execute(
        f"CREATE OR REPLACE VIEW {view} AS "
        f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true, "
        "hive_types = {'platform': VARCHAR, 'kind': VARCHAR, 'bucket': INTEGER})"
    )
    models = folder / MODELS_FILE
    if models.is_file():
        file = models.as_posix().replace("'", "''")
        con.execute(f"CREATE OR REPLACE VIEW hf_models AS SELECT * FROM read_parquet('{file}')")
    return con
