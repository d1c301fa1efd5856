"""Text normalisation shared by every source, so a model learns what a text says, not where
it came from.

The replication package stores texts with literal ``\\n`` escape sequences and cuts them at
Excel's cell limit; the snapshot has real newlines and ``\\r\\n``.  :func:`normalise_text` maps
both to the same form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

EXCEL_CELL_LIMIT = 32_767

_ESCAPES = {"\\n": "\n", "\\r": "\r", "\\t": "\t"}
_ESCAPE_RE = re.compile(r"\\[nrt]")
_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
_SPACES_RE = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


def decode_escapes(text: str) -> str:
    """Decode literal ``\\n``, ``\\r`` and ``\\t`` sequences into the characters they name."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


def is_truncated(text: str | None) -> bool:
    """A text of exactly Excel's cell limit was cut when the spreadsheet was written."""
    return text is not None and len(text) == EXCEL_CELL_LIMIT


def normalise_text(text: str | None) -> str:
    """One canonical form: newlines ``\\n``, no HTML comments (issue-template hints), runs of
    spaces folded, at most one blank line in a row, stripped ends."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HTML_COMMENT_RE.sub("", text)
    text = "\n".join(_SPACES_RE.sub(" ", line).strip() for line in text.split("\n"))
    text = _BLANK_LINES_RE.sub("\n\n", text)
    return text.strip()


def join_thread_text(title: str | None, body: str | None, comments: Iterable[str] = ()) -> str:
    """Title, body and comment bodies, normalised and separated by blank lines."""
    parts = [normalise_text(title), normalise_text(body)]
    parts.extend(normalise_text(c) for c in comments)
    return "\n\n".join(p for p in parts if p)
