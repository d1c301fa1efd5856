r"""The one text representation of a thread, whatever its source, and the one text hash.

Sources differ in form: the replication package flattens a post into one line of text (title and
body joined by a space, literal ``\n`` escapes, some doubly escaped as ``\\r\\n``, Windows paths as
``C:\\Users``, characters as ``\u2588``, cut at Excel's 32,767-character limit), while a snapshot
or a crawl keeps title, body and comments apart with real newlines and characters.  A classifier
trained on both would learn *where* a text comes from rather than *what* it says, and a topic model
would split its topics by source.  :func:`canonical_text` therefore maps every source to one form:

1. :func:`normalise_text` (newlines, HTML comments of issue templates, spaces);
2. escape sequences are decoded the same way in every source: runs of backslashes become one,
   ``\uXXXX``/``\UXXXXXXXX``/``\xXX`` become the characters they name, ``\n``, ``\r`` and ``\t``
   become whitespace, and a backslash left before whitespace is dropped;
3. all whitespace, line breaks included, is folded to one space (the flattened form);
4. the text is cut at the same ``max_chars`` for every source (so Excel's cut is invisible too).

:func:`thread_text` builds the flattened ``title body comment ...`` text of a structured thread in
that form: every model, the topic model, the CVE/CWE counts and the coding sheet read it.
:func:`text_hash` is the one fingerprint of a text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

EXCEL_CELL_LIMIT = 32_767
DEFAULT_MAX_CHARS = 4000

_ESCAPES = {"\\n": "\n", "\\r": "\r", "\\t": "\t"}
_ESCAPE_RE = re.compile(r"\\[nrt]")
_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
_SPACES_RE = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_BACKSLASH_RUN_RE = re.compile(r"\\{2,}")
_CHAR_ESCAPE_RE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|x([0-9a-fA-F]{2}))")
_SPACE_ESCAPE_RE = re.compile(r"\\[nrt]")
_ESCAPE_LEFTOVER_RE = re.compile(r"\\+(?=\s|$)")
_WHITESPACE_RE = re.compile(r"\s+")


def decode_escapes(text: str) -> str:
    """Decode literal ``\\n``, ``\\r`` and ``\\t`` sequences into the characters they name."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


def is_truncated(text: str | None) -> bool:
    """A text of exactly Excel's cell limit was cut when the spreadsheet was written."""
    return text is not None and len(text) == EXCEL_CELL_LIMIT


def normalise_text(text: str | None) -> str:
    """Step 1 of :func:`canonical_text`: newlines ``\\n``, no HTML comments (issue-template hints),
    runs of spaces folded, at most one blank line in a row, stripped ends."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HTML_COMMENT_RE.sub("", text)
    text = "\n".join(_SPACES_RE.sub(" ", line).strip() for line in text.split("\n"))
    text = _BLANK_LINES_RE.sub("\n\n", text)
    return text.strip()


def _char(match: re.Match[str]) -> str:
    code = int(next(g for g in match.groups() if g is not None), 16)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return match.group(0)
    return chr(code)


def decode_text_escapes(text: str) -> str:
    """Step 2 of :func:`canonical_text`: one escape convention for every source."""
    text = _BACKSLASH_RUN_RE.sub(lambda _: "\\", text)
    text = _CHAR_ESCAPE_RE.sub(_char, text)
    text = _SPACE_ESCAPE_RE.sub(" ", text)
    return _ESCAPE_LEFTOVER_RE.sub("", text)


def canonical_text(text: str | None, max_chars: int | None = DEFAULT_MAX_CHARS) -> str:
    """The canonical, flattened form of ``text``, cut at ``max_chars`` (``None``: not cut)."""
    if max_chars is not None and max_chars <= 0:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    if not text:
        return ""
    text = normalise_text(text)
    text = decode_text_escapes(text)
    text = _WHITESPACE_RE.sub(" ", text).strip()
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars].rstrip()
    return text


def thread_text(
    title: str | None,
    body: str | None,
    comments: Iterable[Any] = (),
    max_chars: int | None = DEFAULT_MAX_CHARS,
) -> str:
    """``title body comment1 comment2 ...`` in canonical form.

    ``comments`` may be strings or mappings with a ``body`` (as in the thread schema).
    """
    parts = [title or "", body or ""]
    for comment in comments if comments is not None else ():
        if isinstance(comment, str):
            parts.append(comment)
        elif isinstance(comment, dict):
            parts.append(comment.get("body") or "")
        else:  # a secmine.schema.Comment
            parts.append(getattr(comment, "body", "") or "")
    # Each part is normalised on its own (HTML comments never span two parts), then flattened.
    joined = " ".join(normalise_text(p) for p in parts if p)
    return canonical_text(joined, max_chars)


def frame_texts(frame: Any, max_chars: int | None = DEFAULT_MAX_CHARS) -> list[str]:
    """Canonical texts of the rows of a thread frame (columns ``title``, ``body``, ``comments``)."""
    titles = frame["title"].tolist()
    bodies = frame["body"].tolist()
    comments = frame["comments"].tolist() if "comments" in frame.columns else [()] * len(frame)
    return [
        thread_text(t, b, _as_list(c), max_chars) for t, b, c in zip(titles, bodies, comments, strict=True)
    ]


def _as_list(value: Any) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, float) and value != value:
        return ()
    try:
        return list(value)
    except TypeError:
        return ()


def text_hash(text: str, *, key: str = "") -> str:
    """The fingerprint of a text: SHA-256 (hex) of ``key`` and the text (``key`` names what the
    fingerprint is for, e.g. the model an embedding cache entry belongs to)."""
    return hashlib.sha256(f"{key}\x00{text}".encode()).hexdigest()
