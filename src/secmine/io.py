"""Atomic, deterministic writers for tables, figures, JSON and Parquet.

Nothing is half-written: every writer writes to a temporary file in the destination folder and
renames it into place, creating the folder first (papermill and DVC create none).  Outputs are
deterministic for the same inputs: no timestamps in SVG/PNG metadata, sorted JSON keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

TABLE_FORMATS = ("csv", "md", "tex")
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FIGURE_FORMATS = ("png", "svg")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file for the owner only; give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; on success it replaces ``path`` (a folder, a
    link or nothing) by renames, so readers see the old folder or the new one, never a mix; on
    failure it is removed and ``path`` is left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_UMASK)  # mkdtemp makes a 0700 folder
        if target.exists() or target.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            old.rmdir()
            os.replace(target, old)
            os.replace(staging, target)
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write JSON with sorted keys and a trailing newline (stable bytes for DVC metrics)."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default)
    return write_text(path, text + "\n")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return value.as_posix()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str], *, index: bool = False) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=index, lineterminator="\n")
    return Path(path)


def write_parquet(df: pd.DataFrame, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, **kwargs)
    return Path(path)


def write_table(
    df: pd.DataFrame,
    stem: str | os.PathLike[str],
    *,
    formats: Sequence[str] = TABLE_FORMATS,
    index: bool = False,
    float_format: str = "{:.2f}",
    caption: str | None = None,
    headers: Mapping[str, str] | None = None,
    align: Sequence[str] | None = None,
    environment: str | None = None,
    label: str | None = None,
) -> dict[str, Path]:
    """Write ``df`` as ``stem.csv`` (full precision), ``stem.md`` and ``stem.tex``.

    The options below change only the Markdown and LaTeX forms (the CSV keeps the column names);
    left out, the output is as before:

    * ``headers``: human column headers (``{"total_pct": "Total (%)"}``); unnamed columns keep theirs;
    * ``align``: one of ``l``, ``c``, ``r`` per shown column (numbers right-aligned, say);
    * ``environment``: ``table*`` for a table spanning both columns of a two-column paper;
    * ``label``: the LaTeX ``\\label``.

    Returns the written paths by format.
    """
    stem = Path(stem)
    written: dict[str, Path] = {}
    shown_columns = (list(df.index.names) if index else []) + [str(c) for c in df.columns]
    if align is not None:
        bad = [a for a in align if a not in ("l", "c", "r")]
        if len(align) != len(shown_columns) or bad:
            raise ValueError(
                f"write_table {stem.name}: align needs one of l/c/r per shown column "
                f"({len(shown_columns)}: {shown_columns}), got {list(align)}"
            )
    if environment not in (None, "table", "table*"):
        raise ValueError(f"write_table {stem.name}: environment is 'table' or 'table*', got {environment!r}")
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        if fmt == "csv":
            write_csv(df, path, index=index)
        elif fmt == "md":
            shown = _format_floats(df, float_format)
            if headers:
                shown = shown.rename(columns=dict(headers))
            extra: dict[str, Any] = {}
            if align is not None:
                extra["colalign"] = [{"l": "left", "c": "center", "r": "right"}[a] for a in align]
            write_text(path, shown.to_markdown(index=index, **extra) + "\n")
        elif fmt == "tex":
            shown = _format_floats(df, float_format)
            if headers:
                shown = shown.rename(columns=dict(headers))
            latex = shown.to_latex(
                index=index,
                caption=caption,
                escape=True,
                longtable=len(df) > 40,
                column_format="".join(align) if align is not None else None,
                label=label,
            )
            if environment == "table*" and len(df) <= 40:
                latex = latex.replace("\\begin{table}", "\\begin{table*}").replace("\\end{table}", "\\end{table*}")
            write_text(path, latex)
        else:
            raise ValueError(f"unknown table format {fmt!r}; use one of {TABLE_FORMATS}")
        written[fmt] = path
    return written


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (``&``, ``%``, ``_``, ...)."""
    replacements = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(replacements.get(ch, ch) for ch in str(text))


def booktabs_table(
    header_rows: Sequence[str],
    body: Sequence[str | None],
    *,
    column_format: str,
    caption: str | None = None,
    label: str | None = None,
    environment: str = "table",
    size: str | None = None,
    placement: str = "t",
) -> str:
    """A LaTeX table with booktabs rules from pre-rendered rows (each ``a & b & c``, escaped by the
    caller; ``None`` in ``body`` is a ``\\midrule``).  ``header_rows`` are complete lines (with their
    ``\\\\`` and any ``\\cmidrule``).  Needs ``\\usepackage{booktabs}``."""
    if environment not in ("table", "table*"):
        raise ValueError(f"booktabs_table: environment is 'table' or 'table*', got {environment!r}")
    lines = [f"\\begin{{{environment}}}[{placement}]", "\\centering"]
    if caption:
        lines.append(f"\\caption{{{caption}}}")
    if label:
        lines.append(f"\\label{{{label}}}")
    if size:
        lines.append(f"\\{size}")
    lines += [f"\\begin{{tabular}}{{{column_format}}}", "\\toprule", *header_rows, "\\midrule"]
    for row in body:
        lines.append("\\midrule" if row is None else f"{row} \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", f"\\end{{{environment}}}"]
    return "\n".join(lines) + "\n"


def _format_floats(df: pd.DataFrame, float_format: str) -> pd.DataFrame:
    import pandas as pd

    shown = df.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else float_format.format(v))
    return shown


def save_figure(
    fig: Figure,
    stem: str | os.PathLike[str],
    *,
    formats: Sequence[str] = FIGURE_FORMATS,
    dpi: int = 150,
) -> dict[str, Path]:
    """Save ``fig`` as PNG and SVG with no timestamps, so reruns give the same bytes."""
    import matplotlib as mpl

    stem = Path(stem)
    written: dict[str, Path] = {}
    with mpl.rc_context({"svg.hashsalt": "secmine", "svg.fonttype": "path"}):
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            metadata: dict[str, Any]
            if fmt == "svg":
                metadata = {"Date": None, "Creator": None}
            elif fmt == "png":
                metadata = {"Software": None}
            elif fmt == "pdf":
                metadata = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}
            else:
                metadata = {}
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
            written[fmt] = path
    return written
