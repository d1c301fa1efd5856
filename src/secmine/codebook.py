"""The codebook: themes > sub-themes > codes, for security issues and for their solutions.

Built from the replication package's ``theme/issue_theme_summary.csv`` and
``theme/solution_theme_summary.csv`` (columns ``Code, Sub-theme, Theme, Type``), or from a YAML
file of the same content (a researcher's own codebook).  Code labels written by coders are
matched to the codebook regardless of case, spacing and stray separators; an unknown label is an
error that names the file, the row and the field, with the closest codes as suggestions.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from secmine.errors import SecmineError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

CodeType = Literal["issue", "solution"]
CODE_TYPES: tuple[CodeType, ...] = ("issue", "solution")

# The four themes of the paper, in its order, under their short names.
THEME_ORDER: tuple[str, ...] = ("System & Software", "External Tools & Ecosystem", "Model", "Data")

_THEME_SUFFIX_RE = re.compile(r"\s+security\s+(concerns|solutions)\s*$", re.IGNORECASE)
_SEPARATORS_RE = re.compile(r"\s*([/&])\s*")
_NON_WORD_EDGES_RE = re.compile(r"^[\s,;.:|\-_*\"']+|[\s,;.:|\-_*\"']+$")
_SPACES_RE = re.compile(r"\s+")
_SPLIT_RE = re.compile(r"[,;\n]")


class CodebookError(SecmineError, ValueError):
    """The codebook or a coded label is invalid; the message names file, row and field."""


def normalise_label(label: str) -> str:
    """Canonical key of a code label: lower case, single spaces, no spaces around ``/`` and
    ``&``, no stray separators or quotes at either end."""
    text = _SPACES_RE.sub(" ", str(label)).strip()
    text = _NON_WORD_EDGES_RE.sub("", text)
    text = _SEPARATORS_RE.sub(r"\1", text)
    return text.casefold()


def short_theme(theme: str) -> str:
    """``System & Software Security Concerns`` -> ``System & Software``."""
    return _THEME_SUFFIX_RE.sub("", theme.strip())


@dataclass(frozen=True)
class Code:
    name: str
    sub_theme: str
    theme: str  # short name, e.g. "Model"
    type: CodeType


class Codebook:
    """An ordered, validated set of codes with label matching."""

    def __init__(self, codes: Iterable[Code], *, origin: str = "<memory>") -> None:
        self.codes: tuple[Code, ...] = tuple(codes)
        self.origin = origin
        self._by_key: dict[tuple[CodeType, str], Code] = {}
        for code in self.codes:
            if code.type not in CODE_TYPES:
                raise CodebookError(f"{origin}: code {code.name!r}: type {code.type!r} is not issue or solution")
            key = (code.type, normalise_label(code.name))
            if key in self._by_key:
                raise CodebookError(f"{origin}: code {code.name!r} appears twice in the {code.type} codes")
            self._by_key[key] = code
        for code_type in CODE_TYPES:
            subs: dict[str, str] = {}
            for code in self.of_type(code_type):
                other = subs.setdefault(code.sub_theme, code.theme)
                if other != code.theme:
                    raise CodebookError(
                        f"{origin}: sub-theme {code.sub_theme!r} is under two themes ({other!r}, {code.theme!r})"
                    )

    # -- queries -----------------------------------------------------------------------------
    def of_type(self, code_type: CodeType) -> tuple[Code, ...]:
        return tuple(c for c in self.codes if c.type == code_type)

    def themes(self, code_type: CodeType) -> list[str]:
        """Themes of a type, the paper's four first in its order, then any others."""
        seen = list(dict.fromkeys(c.theme for c in self.of_type(code_type)))
        ordered = [t for t in THEME_ORDER if t in seen]
        return ordered + [t for t in seen if t not in ordered]

    def sub_themes(self, code_type: CodeType, theme: str | None = None) -> list[str]:
        codes = self.of_type(code_type)
        if theme is not None:
            codes = tuple(c for c in codes if c.theme == theme)
        # group by theme order so tables read theme by theme
        order = {t: i for i, t in enumerate(self.themes(code_type))}
        pairs = dict.fromkeys((c.theme, c.sub_theme) for c in codes)
        return [s for _, s in sorted(pairs, key=lambda p: order[p[0]])]

    def code_names(self, code_type: CodeType) -> list[str]:
        order = {t: i for i, t in enumerate(self.themes(code_type))}
        codes = sorted(
            self.of_type(code_type), key=lambda c: (order[c.theme], self.sub_themes(code_type).index(c.sub_theme))
        )
        return [c.name for c in codes]

    def get(self, code_type: CodeType, label: str) -> Code | None:
        return self._by_key.get((code_type, normalise_label(label)))

    def match(self, code_type: CodeType, label: str, *, where: str = "") -> Code:
        """The code a coder's label means; :class:`CodebookError` naming ``where`` if none."""
        code = self.get(code_type, label)
        if code is None:
            from rapidfuzz import fuzz, process, utils

            choices = [c.name for c in self.of_type(code_type)]
            matches = process.extract(
                label, choices, scorer=fuzz.token_sort_ratio, processor=utils.default_process, limit=3, score_cutoff=50
            )
            close = [name for name, _, _ in matches]
            hint = f"; closest: {', '.join(repr(c) for c in close)}" if close else ""
            prefix = f"{where}: " if where else ""
            raise CodebookError(f"{prefix}unknown {code_type} code {label!r}{hint}")
        return code

    def split_labels(self, cell: object) -> list[str]:
        """The labels in one coded cell (comma, semicolon or newline separated), empties dropped."""
        if cell is None or (isinstance(cell, float) and cell != cell):
            return []
        return [part.strip() for part in _SPLIT_RE.split(str(cell)) if normalise_label(part)]

    @property
    def version(self) -> str:
        """A short content hash: two codebooks with the same codes have the same version."""
        payload = json.dumps([asdict(c) for c in self.codes], sort_keys=True).encode("utf-8")
        return hashlib.sha256(payload).hexdigest()[:12]

    def __len__(self) -> int:
        return len(self.codes)

    def __iter__(self) -> Iterator[Code]:
        return iter(self.codes)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([asdict(c) for c in self.codes], columns=["type", "theme", "sub_theme", "name"])

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def from_summary_csvs(cls, *paths: str | os.PathLike[str]) -> Codebook:
        """Read the replication package's ``*_theme_summary.csv`` files."""
        codes: list[Code] = []
        for path in paths:
            codes.extend(_read_summary_csv(Path(path)))
        return cls(codes, origin=", ".join(str(p) for p in paths))

    @classmethod
    def from_replication(cls, root: str | os.PathLike[str]) -> Codebook:
        theme = Path(root) / "theme"
        return cls.from_summary_csvs(theme / "issue_theme_summary.csv", theme / "solution_theme_summary.csv")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Codebook:
        """A codebook as YAML: ``{issue: {Theme: {Sub-theme: [code, ...]}}, solution: {...}}``."""
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CodebookError(f"{path}: cannot read the codebook ({exc})") from exc
        if not isinstance(data, dict):
            raise CodebookError(f"{path}: expected a mapping with keys 'issue' and 'solution'")
        codes: list[Code] = []
        for code_type, themes in data.items():
            if code_type not in CODE_TYPES or not isinstance(themes, dict):
                raise CodebookError(f"{path}, key {code_type!r}: expected 'issue' or 'solution' with themes")
            for theme, subs in themes.items():
                if not isinstance(subs, dict):
                    raise CodebookError(f"{path}, {code_type} > {theme}: expected sub-themes")
                for sub, names in subs.items():
                    if not isinstance(names, list) or not names:
                        raise CodebookError(f"{path}, {code_type} > {theme} > {sub}: expected a list of codes")
                    codes.extend(Code(str(n), str(sub), str(theme), code_type) for n in names)
        return cls(codes, origin=str(path))

    def to_yaml(self, path: str | os.PathLike[str]) -> Path:
        import yaml

        from secmine.io import write_text

        data: dict[str, dict[str, dict[str, list[str]]]] = {}
        for code in self.codes:
            data.setdefault(code.type, {}).setdefault(code.theme, {}).setdefault(code.sub_theme, []).append(code.name)
        header = f"# secmine codebook, version {self.version}\n"
        return write_text(path, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))


def _read_summary_csv(path: Path) -> list[Code]:
    from secmine.inputs import InputError, check_utf8

    required = ("Code", "Sub-theme", "Theme", "Type")
    try:
        data = path.read_bytes()
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CodebookError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        check_utf8(path, data.removeprefix(b"\xef\xbb\xbf"), what="codebook CSV")
    except InputError as exc:
        handle.close()
        raise CodebookError(str(exc)) from None
    if not data.removeprefix(b"\xef\xbb\xbf").strip():
        handle.close()
        raise CodebookError(
            f"{path}: the codebook CSV is empty (no header row); write the header line ({', '.join(required)}) first"
        )
    codes: list[Code] = []
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise CodebookError(f"{path}: missing column(s) {', '.join(missing)}")
        for row_no, row in enumerate(reader, start=2):
            values = {k: (row.get(k) or "").strip() for k in required}
            for name, value in values.items():
                if not value:
                    raise CodebookError(f"{path}, row {row_no}, field {name!r}: empty")
            code_type = values["Type"].casefold()
            if code_type not in CODE_TYPES:
                raise CodebookError(f"{path}, row {row_no}, field 'Type': {values['Type']!r} is not Issue or Solution")
            codes.append(Code(values["Code"], values["Sub-theme"], short_theme(values["Theme"]), code_type))  # type: ignore[arg-type]
    if not codes:
        raise CodebookError(f"{path}: no codes")
    return codes
