"""The classified file read batch by batch: checked rows, one batch in memory at a time.

:func:`iter_classified` is what a stage that must see every row of ``classified.parquet`` (``rq1``
counts them) reads, so that its memory follows one batch and not the corpus.  The checks are
:func:`secmine.analysis.data.check_classified`'s, with the row numbers of the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from secmine.analysis.data import AnalysisInputError, check_classified

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def iter_classified(
    path: str | os.PathLike[str], *, batch_rows: int = 200_000, columns: Iterable[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The classified file, checked (:func:`~secmine.analysis.data.check_classified`) batch by
    batch, each batch sorted by id.  Duplicate ids across batches are found first, by DuckDB.
    Errors name the file, the row (0-based position in the file) and the field.  A file without
    rows gives one empty checked frame.  ``columns``: keep only these of each checked batch
    (``created`` and ``source`` are the derived columns)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise AnalysisInputError(f"{path}: not found (run the `classify` stage first)")
    try:
        handle = pq.ParquetFile(path)
        names = handle.schema_arrow.names
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise AnalysisInputError(f"{path}: unreadable Parquet ({type(exc).__name__}: {exc})") from exc
    if "id" in names:
        check_unique_ids(path)
    keep = None if columns is None else list(columns)
    offset, empty = 0, True
    for batch in handle.iter_batches(batch_size=batch_rows):
        frame = batch.to_pandas()
        checked = check_classified(frame, where=str(path), row_offset=offset)
        offset += len(frame)
        empty = False
        yield checked if keep is None else checked[keep]
    if empty:
        checked = check_classified(handle.schema_arrow.empty_table().to_pandas(), where=str(path))
        yield checked if keep is None else checked[keep]


def check_unique_ids(path: str | os.PathLike[str]) -> None:
    """Fail on the first row whose id an earlier row of the file has (file, row, field, value and
    how many rows are bad), without reading the file into memory (DuckDB)."""
    from secmine.collect.corpus import duckdb_connection

    path = Path(path)
    con = duckdb_connection()
    try:
        file = path.as_posix().replace("'", "''")
        rows = con.sql(
            "SELECT file_row_number, id, count(*) OVER () FROM (SELECT id, file_row_number, row_number() OVER "
            f"(PARTITION BY id ORDER BY file_row_number) AS k FROM read_parquet('{file}', file_row_number = true) "
            "WHERE id IS NOT NULL AND id <> '') WHERE k > 1 ORDER BY file_row_number LIMIT 1"
        ).fetchall()
    finally:
        con.close()
    if rows:
        row, value, count = rows[0]
        raise AnalysisInputError(f"{path}, row {row}, field 'id': duplicate id (value {value!r}; {count} bad row(s))")


__all__ = ["check_unique_ids", "iter_classified"]
