"""The thread corpus on disk: a Parquet dataset partitioned by platform, and its readers.

Layout (hive style, one file per platform)::

    data/raw/corpus/
      platform=github/part-0.parquet
      platform=huggingface/part-0.parquet
      _hf_models.parquet      Hugging Face model metadata and GitHub links (live crawls; empty otherwise)
      _manifest.json          provenance: how the corpus was built, counts (no timestamps)

Each part holds the columns of :data:`secmine.schema.THREAD_COLUMNS` except ``platform`` (the
partition key), with the Arrow types of :func:`secmine.schema.thread_arrow_schema`.  Files whose
name starts with ``_`` or ``.`` are not part of the thread dataset (Arrow and DuckDB skip them).

Writes are deterministic: rows sorted by ``id``, fixed row groups, no pandas or timestamp metadata,
so the same threads give byte-identical files.  The whole folder is replaced atomically.

:func:`read_corpus` gives the threads back as a frame (sorted by ``id``) and :func:`connect` opens
a DuckDB connection with a ``threads`` view over the files for ad-hoc SQL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine.io import atomic_dir
from secmine.schema import PLATFORMS, THREAD_COLUMNS, SchemaError, Thread, thread_arrow_schema

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pandas as pd
    import pyarrow as pa

PARTITION = "platform"
PART_NAME = "part-0.parquet"
MODELS_FILE = "_hf_models.parquet"
MANIFEST_FILE = "_manifest.json"
ROW_GROUP_SIZE = 20_000
COMPRESSION = "zstd"

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


def part_schema() -> pa.Schema:
    """The schema of one partition file (the thread schema without ``platform``)."""
    schema = thread_arrow_schema()
    return schema.remove(schema.get_field_index(PARTITION))


def _threads_table(records: Sequence[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    schema = part_schema()
    columns = {name: [r.get(name) for r in records] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema)


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


def write_corpus(
    threads: Iterable[Thread] | pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    models: Sequence[dict[str, Any]] | pd.DataFrame | None = None,
    manifest: dict[str, Any] | None = None,
    row_group_size: int = ROW_GROUP_SIZE,
) -> dict[str, int]:
    """Write threads as the partitioned corpus at ``path`` (replacing it atomically).

    ``threads`` are :class:`Thread` objects or a frame with :data:`THREAD_COLUMNS`; ids must be
    unique.  ``models`` (Hugging Face model metadata, :data:`MODEL_COLUMNS`) and ``manifest`` (a
    JSON-serialisable provenance record) are written beside the partitions.  Returns the number
    of threads per platform.
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
        if record["platform"] not in PLATFORMS:
            raise SchemaError(f"corpus: row {position}, field 'platform': {record['platform']!r}")
    records.sort(key=lambda r: r["id"])

    counts: dict[str, int] = {}
    with atomic_dir(path) as staging:
        for platform in PLATFORMS:
            part = [r for r in records if r["platform"] == platform]
            if not part:
                continue
            folder = staging / f"{PARTITION}={platform}"
            folder.mkdir()
            _write_parquet_table(_threads_table(part), folder / PART_NAME, row_group_size=row_group_size)
            counts[platform] = len(part)
        _write_models(models, staging / MODELS_FILE)
        if manifest is not None:
            text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
            (staging / MANIFEST_FILE).write_text(text, encoding="utf-8")
    return counts


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


def read_corpus(path: str | os.PathLike[str], *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The threads of a corpus folder (or of one Parquet file) as a frame sorted by ``id``.

    Columns are :data:`THREAD_COLUMNS` (or ``columns``, in that order); ``labels`` and ``comments``
    are plain Python lists (comments as ``{author, body, created_at}`` dicts).
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    source = Path(path)
    wanted = list(columns) if columns is not None else list(THREAD_COLUMNS)
    unknown = [c for c in wanted if c not in THREAD_COLUMNS]
    if unknown:
        raise ValueError(f"read_corpus: unknown column(s) {unknown}; choose from {THREAD_COLUMNS}")
    if not source.exists():
        raise FileNotFoundError(f"{source}: corpus not found (run the collect stage first)")
    schema = thread_arrow_schema()
    if source.is_dir():
        partitioning = ds.partitioning(pa.schema([(PARTITION, pa.string())]), flavor="hive")
        dataset = ds.dataset(source, format="parquet", schema=schema, partitioning=partitioning)
    else:
        dataset = ds.dataset(source, format="parquet", schema=schema)
    read = wanted if "id" in wanted else [*wanted, "id"]
    table = dataset.to_table(columns=read)
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


def dataset_files(path: str | os.PathLike[str]) -> list[Path]:
    """The Parquet files of the thread dataset at ``path``, sorted: ``path`` itself when it is a file,
    else every ``*.parquet`` below the folder at any depth (``platform=*/`` or deeper hive partitions)
    whose name, and the names of the folders between, start with neither ``_`` nor ``.``."""
    source = Path(path)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: corpus not found (run the collect stage first)")
    found = []
    for file in source.rglob("*.parquet"):
        parts = file.relative_to(source).parts
        if file.is_file() and not any(part.startswith(("_", ".")) for part in parts):
            found.append(file)
    return sorted(found)


def parquet_glob(path: str | os.PathLike[str]) -> str:
    """The glob DuckDB reads the corpus with (partitions only, not the ``_`` files)."""
    return (Path(path) / f"{PARTITION}=*" / "*.parquet").as_posix()


def connect(
    path: str | os.PathLike[str],
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    view: str = "threads",
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view ``threads`` over the corpus (and ``hf_models`` when present).

    Example::

        con = connect("data/raw/corpus")
        con.sql("SELECT platform, kind, count(*) FROM threads GROUP BY ALL").df()
    """
    import duckdb

    if not view.isidentifier():
        raise ValueError(f"view name {view!r} is not an identifier")
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: corpus folder not found")
    con = con or duckdb.connect()
    glob = parquet_glob(folder).replace("'", "''")
    con.execute(
        f"CREATE OR REPLACE VIEW {view} AS "
        f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
    )
    models = folder / MODELS_FILE
    if models.is_file():
        file = models.as_posix().replace("'", "''")
        con.execute(f"CREATE OR REPLACE VIEW hf_models AS SELECT * FROM read_parquet('{file}')")
    return con
