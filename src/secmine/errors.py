"""The one base of every expected error.

An expected error is bad input, a missing upstream output or a setting that cannot work: the
command line prints its message as one line (``error: ...``) followed by its ``hint`` (the fix),
without a traceback unless ``--debug`` is given.  Every error class of the package derives from
:class:`SecmineError` (most also from a built-in type, e.g. ``ValueError``, so callers that catch
those keep working).
"""

from __future__ import annotations


class SecmineError(Exception):
    """An expected error whose message names the file, row and field, and whose hint says the fix."""

    hint: str = ""

    def __init__(self, message: str = "", *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

    def one_line(self) -> str:
        """The message (and the hint) folded onto one line."""
        text = " ".join(str(self).split())
        hint = " ".join(self.hint.split())
        if hint and hint not in text:
            text = f"{text} ({hint})" if text else hint
        return text


class MissingInputError(SecmineError, FileNotFoundError):
    """An input of a stage is not there yet; the hint names the stage or command that makes it."""

    def __init__(self, path: object, *, made_by: str = "", hint: str = "") -> None:
        if not hint and made_by:
            hint = f"run `{made_by}` first" if made_by.startswith(("secmine", "dvc", "make")) else (
                f"run the `{made_by}` stage first: `dvc repro {made_by}` or `secmine {made_by}`"
            )
        super().__init__(f"{path}: not found", hint=hint)
        self.path = path
