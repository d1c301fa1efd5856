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


# -- output sets: a stage's outputs appear together or not at all ------------------------------------

STAGED_SUFFIX = ".staging"
OLD_SUFFIX = ".old"


def _sibling(target: Path, suffix: str) -> Path:
    return target.with_name(f".{target.name}{suffix}")


def _staged(target: Path) -> Path:
    """Where an output is written before it is moved into place: a hidden folder beside it holding
    a file or folder of the output's own name (so its suffix, e.g. ``.parquet``, is kept)."""
    return _sibling(target, STAGED_SUFFIX) / target.name


def _group_staging(folder: Path, name: str, key: str) -> Path:
    """The staging folder of a group of files a stage writes into a folder it shares with others."""
    return folder / f".{name}.{key}{STAGED_SUFFIX}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _journal_path(name: str, targets: Sequence[Path]) -> Path:
    import hashlib

    from secmine import config

    key = hashlib.sha256("\0".join(sorted(t.as_posix() for t in targets)).encode()).hexdigest()[:12]
    return config.PROJECT_ROOT / ".secmine" / "transactions" / f"{name}-{key}.json"


def _plan(
    outputs: dict[str, Path], files: dict[str, Sequence[str]], name: str
) -> tuple[dict[str, Path], list[tuple[Path, Path]], list[Path]]:
    """Staging paths by key, the (staged, target) moves that commit them, and the staging folders."""
    staged: dict[str, Path] = {}
    moves: list[tuple[Path, Path]] = []
    roots: list[Path] = []
    for key, path in outputs.items():
        target = Path(path).absolute()
        if key in files:  # a group of files in a shared folder
            root = _group_staging(target, name, key)
            staged[key] = root
            moves += [(root / file, target / file) for file in files[key]]
        else:
            root = _sibling(target, STAGED_SUFFIX)
            staged[key] = root / target.name
            moves.append((staged[key], target))
        roots.append(root)
    return staged, moves, roots


def _commit(journal: Path) -> None:
    """Move every staged output of ``journal`` into place, then drop the old ones and the journal.

    Safe to repeat after a kill at any point: an entry already moved has no staged file left."""
    plan = json.loads(journal.read_text(encoding="utf-8"))
    moves = [(Path(a), Path(b)) for a, b in plan["moves"]]
    for staged, target in moves:
        if not _exists(staged):
            continue
        old = _sibling(target, OLD_SUFFIX)
        target.parent.mkdir(parents=True, exist_ok=True)
        if _exists(target):
            if _exists(old):
                _remove(old)
            os.replace(target, old)
        os.replace(staged, target)
    for _, target in moves:
        _remove(_sibling(target, OLD_SUFFIX))
    for root in plan["roots"]:
        _remove(Path(root))
    journal.unlink()


def recover_output_set(
    outputs: Sequence[str | os.PathLike[str]] | dict[str, Path],
    *,
    name: str,
    files: dict[str, Sequence[str]] | None = None,
) -> bool:
    """Finish or undo an output set a killed run left behind; True when something was recovered.

    A complete set (its journal was written) is moved into place; an incomplete one is discarded,
    so the previous outputs stay as they were."""
    if not isinstance(outputs, dict):
        outputs = {str(i): Path(p) for i, p in enumerate(outputs)}
    _, moves, roots = _plan(outputs, files or {}, name)
    journal = _journal_path(name, [target for _, target in moves])
    recovered = False
    if journal.exists():
        _commit(journal)
        recovered = True
    for leftover in [*roots, *(_sibling(target, OLD_SUFFIX) for _, target in moves)]:
        if _exists(leftover):
            _remove(leftover)
            recovered = True
    return recovered


@contextlib.contextmanager
def output_set(
    outputs: dict[str, Path], *, name: str, files: dict[str, Sequence[str]] | None = None
) -> Iterator[dict[str, Path]]:
    """Stage a set of outputs so that they appear together or not at all.

    Yields, for every output, a staging path beside it (``.NAME.staging/NAME``) for the caller to
    write (a file or a folder).  An output listed in ``files`` is a folder the stage shares with
    others: the caller writes exactly those files into a staging folder inside it, and only they
    are moved.  On success every staged output must exist; a journal is written, then each output
    is renamed into place and the old ones removed — a run killed during those renames is finished
    by the next call (:func:`recover_output_set`).  On failure the staged files are removed and the
    previous outputs stay untouched."""
    from secmine.errors import SecmineError

    files = files or {}
    recover_output_set(outputs, name=name, files=files)
    staged, moves, roots = _plan(outputs, files, name)
    for key, path in staged.items():
        (path if key in files else path.parent).mkdir(parents=True, exist_ok=True)
    try:
        yield {key: _relative_like(outputs[key], path) for key, path in staged.items()}
        missing = [target for source, target in moves if not _exists(source)]
        if missing:
            raise SecmineError(f"stage {name!r} did not write its output {_shown(missing[0])}")
        for key in files:
            extra = sorted(set(p.name for p in staged[key].iterdir()) - set(files[key]))
            if extra:
                raise SecmineError(
                    f"stage {name!r} wrote {_shown(Path(outputs[key]) / extra[0])}, which it does not declare"
                )
        journal = _journal_path(name, [target for _, target in moves])
        journal.parent.mkdir(parents=True, exist_ok=True)
        plan = {"moves": [[a.as_posix(), b.as_posix()] for a, b in moves], "roots": [r.as_posix() for r in roots]}
        with atomic_path(journal) as tmp:
            tmp.write_text(json.dumps(plan), encoding="utf-8")
        _commit(journal)
    except BaseException:
        for root in roots:
            if _exists(root):
                _remove(root)
        raise


def _relative_like(original: Path, staged: Path) -> Path:
    """``staged`` relative to the working folder when ``original`` was relative."""
    if Path(original).is_absolute():
        return staged
    try:
        return staged.relative_to(Path.cwd())
    except ValueError:
        return staged


def _shown(path: Path) -> str:
    try:
        return path.absolute().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


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
