"""Reading the files users and the replication package provide, with one-line errors.

Every CSV the project reads goes through :func:`read_csv`: an empty file, a file that is not
UTF-8 (a Windows-1252 export from Excel, say) or one pandas cannot parse raises
:class:`InputError` with one line naming the file, the line and what to do, instead of a
``EmptyDataError``/``UnicodeDecodeError`` traceback.  :func:`open_text` does the same for
(gzip-compressed) JSON lines: a truncated or damaged ``.gz`` becomes an ``InputError`` naming the
file and the last line read.  :func:`one_line_errors` turns the expected errors of a command into
``error: <message>`` on stderr and exit status 1.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

UTF8_FIX = "save it as UTF-8 (in Excel: Save As > 'CSV UTF-8 (Comma delimited)')"


class InputError(ValueError):
    """An input file cannot be used; the message names the file, the line or row, and the fix."""


def _first_line(text: str) -> str:
    return " ".join(str(text).split())


def check_utf8(path: Path, data: bytes, *, what: str = "file") -> None:
    """Raise :class:`InputError` naming the line and byte when ``data`` is not UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start]
        hint = ""
        try:
            data.decode("cp1252")
            hint = " (it looks like Windows-1252)"
        except UnicodeDecodeError:
            pass
        raise InputError(
            f"{path}, line {line}: the {what} is not UTF-8: byte 0x{byte:02x} at column {column}{hint}; "
            f"{UTF8_FIX}"
        ) from None


def read_csv(
    path: str | os.PathLike[str],
    *,
    required: tuple[str, ...] = (),
    what: str = "CSV file",
    **kwargs: Any,
) -> pd.DataFrame:
    """``pandas.read_csv`` of a UTF-8 file (a byte-order mark is allowed), with one-line errors.

    An empty file (no header row), a file that is not UTF-8, a file pandas cannot parse and
    missing ``required`` columns raise :class:`InputError`; a missing file ``FileNotFoundError``.
    A header alone is a valid table with no rows.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: damaged or truncated gzip file ({_first_line(str(exc))})") from None
    check_utf8(path, data.removeprefix(b"\xef\xbb\xbf"), what=what)
    expected = f" ({', '.join(required)})" if required else ""
    empty = f"{path}: the {what} is empty (no header row); write the header line{expected} first"
    if not data.removeprefix(b"\xef\xbb\xbf").strip():
        raise InputError(empty)
    kwargs.setdefault("encoding", "utf-8-sig")
    kwargs.pop("compression", None)
    try:
        frame = pd.read_csv(io.BytesIO(data), **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(empty) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"{path}: not a readable {what} ({_first_line(str(exc))})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise InputError(f"{path}, line 1: missing column(s) {names} (found {list(frame.columns)})")
    return frame


class _Lines:
    """Text lines of a (gzip) file that remember how far they got, for error messages."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self.handle = handle
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        while True:
            try:
                line = self.handle.readline()
            except EOFError:
                raise InputError(
                    f"{self.path}, line {self.line + 1}: the file is truncated (the compressed data ends "
                    "inside it); download or copy it again"
                ) from None
            except gzip.BadGzipFile as exc:
                raise InputError(f"{self.path}: not a gzip file ({_first_line(str(exc))}); "
                                 "use a .jsonl file or gzip it") from None
            except (OSError, zlib.error) as exc:
                raise InputError(
                    f"{self.path}, line {self.line + 1}: damaged compressed data ({_first_line(str(exc))}); "
                    "download or copy it again"
                ) from None
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{self.path}, line {self.line + 1}: not UTF-8 (byte 0x{exc.object[exc.start]:02x}); "
                    "write the file as UTF-8"
                ) from None
            if not line:
                return
            self.line += 1
            yield line


@contextlib.contextmanager
def open_lines(path: str | os.PathLike[str]) -> Iterator[_Lines]:
    """The lines of a UTF-8 text file, gzip-compressed when its name ends in ``.gz``; decoding
    errors (a truncated or damaged ``.gz``, bytes that are not UTF-8) raise :class:`InputError`
    naming the file and the line."""
    path = Path(path)
    if path.suffix == ".gz":
        handle: IO[str] = io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    else:
        handle = open(path, encoding="utf-8")
    with handle:
        yield _Lines(path, handle)


@contextlib.contextmanager
def one_line_errors(*extra: type[BaseException], code: int = 1) -> Iterator[None]:
    """Inside a command: expected errors (bad input, a missing file, a collector or model error)
    become ``error: <message>`` on stderr and exit status ``code`` instead of a traceback."""
    import typer

    from secmine.collect.http import CollectError

    expected: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, CollectError, *extra)
    try:
        yield
    except expected as exc:
        typer.secho(f"error: {_first_line(str(exc))}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code) from None
