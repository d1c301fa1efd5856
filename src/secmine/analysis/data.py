"""Inputs of the analysis stages: the classified corpus, thread texts and source names.

``data/processed/classified.parquet`` (the ``classify`` stage) has one row per corpus thread:
``id, platform, kind, repo, number, created_at, keyword_match, probability, label``.  The corpus
(``data/raw/corpus``, the ``collect`` stage) holds the texts; only the threads an analysis needs
are read from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine.errors import SecmineError
from secmine.schema import CLASSIFIED_COLUMNS, KINDS, PLATFORMS, SOURCE_NAMES, source_name
from secmine.text import EXCEL_CELL_LIMIT, thread_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class AnalysisInputError(SecmineError, ValueError):
    """An analysis input is missing or malformed; the message names file, row and field."""


def source_order(names: Iterable[str]) -> list[str]:
    """Source names in the paper's order, then the others alphabetically."""
    names = list(dict.fromkeys(names))
    known = [n for n in SOURCE_NAMES.values() if n in names]
    return known + sorted(n for n in names if n not in known)


def repo_url(platform: str, repo: str) -> str:
    return f"https://huggingface.co/{repo}" if platform == "huggingface" else f"https://github.com/{repo}"


def load_classified(
    path: str | os.PathLike[str], *, labels: Iterable[int] | None = None, batch_rows: int = 200_000
) -> pd.DataFrame:
    """Read and check the classified corpus; add ``source`` and a UTC ``created`` timestamp.

    Errors name the file, the row (0-based position in the file) and the field.  With ``labels``
    (e.g. ``(1,)``: the security threads) the file is checked batch by batch and only the rows
    with those labels are kept (duplicate ids across batches are found by DuckDB), so memory
    follows the rows kept, not the corpus.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise AnalysisInputError(f"{path}: not found (run the `classify` stage first)")
    if labels is not None:
        return _load_classified_rows(path, set(labels), batch_rows)
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise AnalysisInputError(f"{path}: unreadable Parquet ({type(exc).__name__}: {exc})") from exc
    return check_classified(frame, where=str(path))


def _load_classified_rows(path: Path, labels: set[int], batch_rows: int) -> pd.DataFrame:
    import pandas as pd

    from secmine.analysis.classified import iter_classified

    parts = [checked[checked["label"].isin(labels)] for checked in iter_classified(path, batch_rows=batch_rows)]
    return pd.concat(parts, ignore_index=True).sort_values("id", kind="stable").reset_index(drop=True)


def check_classified(frame: pd.DataFrame, *, where: str = "classified", row_offset: int = 0) -> pd.DataFrame:
    """Validate a classified frame (see :func:`load_classified`) and normalise its types
    (``row_offset``: the position of the frame's first row in its file, for the messages)."""
    import numpy as np
    import pandas as pd

    missing = [c for c in CLASSIFIED_COLUMNS if c not in frame.columns]
    if missing:
        raise AnalysisInputError(
            f"{where}: missing column(s) {', '.join(missing)} (found {list(frame.columns)})"
        )
    frame = frame.reset_index(drop=True).copy()

    def fail(mask: Any, field: str, what: str) -> None:
        bad = np.flatnonzero(np.asarray(mask))
        if bad.size:
            row = int(bad[0])
            raise AnalysisInputError(
                f"{where}, row {row + row_offset}, field {field!r}: {what} (value {frame[field].iloc[row]!r}; "
                f"{bad.size} bad row(s))"
            )

    fail(frame["id"].isna() | (frame["id"].astype(str).str.len() == 0), "id", "empty id")
    fail(frame["id"].duplicated(), "id", "duplicate id")
    fail(~frame["platform"].isin(PLATFORMS), "platform", f"not one of {PLATFORMS}")
    fail(~frame["kind"].isin(KINDS), "kind", f"not one of {KINDS}")
    fail(frame["repo"].isna() | (frame["repo"].astype(str).str.len() == 0), "repo", "empty repo")
    number = pd.to_numeric(frame["number"], errors="coerce")
    fail(number.isna() | (number < 0), "number", "not a thread number")
    label = pd.to_numeric(frame["label"], errors="coerce")
    fail(~label.isin([0, 1]), "label", "not 0 or 1")
    probability = pd.to_numeric(frame["probability"], errors="coerce")
    fail(probability.notna() & ((probability < 0) | (probability > 1)), "probability", "not in [0, 1]")
    keyword = frame["keyword_match"]
    if keyword.dtype != bool:
        fail(~keyword.isin([True, False, 0, 1]), "keyword_match", "not a boolean")
    created = pd.to_datetime(frame["created_at"], utc=True, errors="coerce", format="ISO8601")
    fail(
        created.isna() & frame["created_at"].notna() & (frame["created_at"].astype(str) != ""),
        "created_at",
        "not an ISO 8601 timestamp",
    )

    frame["number"] = number.astype("int64")
    frame["label"] = label.astype("int64")
    frame["probability"] = probability.astype(float)
    frame["keyword_match"] = keyword.astype(bool)
    frame["created"] = created
    frame["source"] = [source_name(p, k) for p, k in zip(frame["platform"], frame["kind"])]
    return frame.sort_values("id", kind="stable").reset_index(drop=True)


def clean_cell_text(text: str | None, limit: int = EXCEL_CELL_LIMIT) -> tuple[str, bool]:
    """Text fit for a spreadsheet cell: XML-illegal control characters removed, cut at Excel's
    32,767-character limit.  Returns ``(text, was_cut)``."""
    text = _CONTROL_RE.sub("", text or "")
    if len(text) > limit:
        return text[:limit], True
    return text, False


def thread_texts(
    corpus: str | os.PathLike[str] | pd.DataFrame, ids: Iterable[str] | None = None
) -> pd.DataFrame:
    """``id, text`` for the given thread ids (all when ``None``): the thread's one text
    (:func:`secmine.text.thread_text`: title, body and comments, flattened, not cut).

    ``corpus`` is a frame in the thread schema or the corpus folder, read with
    :func:`secmine.collect.corpus.read_corpus` (only the needed columns/rows are kept).
    """
    import pandas as pd

    wanted = None if ids is None else set(ids)
    if isinstance(corpus, pd.DataFrame):
        frame = corpus
    else:
        frame = _read_corpus(Path(corpus), wanted)
    if wanted is not None:
        frame = frame[frame["id"].isin(wanted)]
    from tqdm.auto import tqdm

    rows = zip(frame["title"], frame["body"], frame["comments"])
    texts = [
        thread_text(title, body, _comment_bodies(comments), None)
        for title, body, comments in tqdm(
            rows,
            total=len(frame),
            desc="thread texts",
            unit="thread",
            disable=len(frame) < 5000,
            mininterval=5,
        )
    ]
    out = pd.DataFrame({"id": frame["id"].astype(str).to_numpy(), "text": texts})
    return out.sort_values("id", kind="stable").drop_duplicates("id").reset_index(drop=True)


def _comment_bodies(comments: Any) -> list[str]:
    if comments is None:
        return []
    try:
        items = list(comments)
    except TypeError:
        return []
    return [str(c.get("body") or "") for c in items if isinstance(c, dict)]


def _read_corpus(path: Path, wanted: set[str] | None) -> pd.DataFrame:
    if not path.exists():
        raise AnalysisInputError(f"{path}: corpus not found (run the `collect` stage first)")
    try:
        from secmine.collect.corpus import read_corpus
    except ImportError:  # pragma: no cover - the collect package is part of the project
        read_corpus = None
    columns = ["id", "platform", "kind", "repo", "number", "title", "body", "comments", "created_at", "url"]
    if read_corpus is not None:
        # streamed: only the rows of ``wanted`` are kept, batch by batch (never the whole corpus)
        frame = read_corpus(path, columns=columns, ids=sorted(wanted) if wanted is not None else None)
    else:  # pragma: no cover
        import pyarrow.dataset as ds

        frame = ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pandas()
    if wanted is not None:
        frame = frame[frame["id"].isin(wanted)]
    return frame[columns]
