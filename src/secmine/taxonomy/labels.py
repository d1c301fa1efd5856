"""The tagger's labels: every theme, sub-theme and code of both taxonomies, and their hierarchy.

The codebook decides the hierarchy (:class:`secmine.codebook.Codebook`: themes > sub-themes >
codes, for issues and for solutions), so a researcher's own YAML codebook works unchanged.  A post
carries a sub-theme when it carries one of its codes, and a theme when it carries one of its
sub-themes: :meth:`LabelSpace.indicators` builds the 0/1 matrix of a coded sample that way.
Predictions obey it top-down: :meth:`LabelSpace.consistent_proba` caps a label's probability at its
parent's (P(code) <= P(sub-theme) <= P(theme)), and :meth:`LabelSpace.decide` predicts a label only
when its parent is predicted and its own probability reaches its threshold, so a predicted code
always comes with its sub-theme and theme.  (Top-down rather than bottom-up: an OR of the noisy
decisions of many rare codes would flood the themes, whose own classifiers see the most data.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from secmine.codebook import CODE_TYPES, Code, Codebook, CodeType

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

Level = Literal["theme", "sub_theme", "code"]
LEVELS: tuple[Level, ...] = ("theme", "sub_theme", "code")


class LabelError(ValueError):
    """A label, a label matrix or a codebook does not fit the tagger's label space."""


@dataclass(frozen=True)
class Label:
    """One output of the tagger: a theme, a sub-theme or a code of one taxonomy."""

    type: CodeType
    level: Level
    name: str
    parent: str  # the key of the label one level up ("" for a theme)

    @property
    def key(self) -> str:
        return label_key(self.type, self.level, self.name)


def label_key(code_type: str, level: str, name: str) -> str:
    """``issue|code|Unsafe memory usage``: unique across types and levels."""
    return f"{code_type}|{level}|{name}"


class LabelSpace:
    """The ordered labels of a codebook (per type: themes, then sub-themes, then codes, each in the
    codebook's order) and the ancestor relation between them."""

    def __init__(self, codebook: Codebook) -> None:
        self.codebook = codebook
        labels: list[Label] = []
        for code_type in CODE_TYPES:
            codes = codebook.of_type(code_type)
            if not codes:
                continue
            for theme in codebook.themes(code_type):
                labels.append(Label(code_type, "theme", theme, ""))
            for theme in codebook.themes(code_type):
                for sub in codebook.sub_themes(code_type, theme):
                    labels.append(Label(code_type, "sub_theme", sub, label_key(code_type, "theme", theme)))
            for name in codebook.code_names(code_type):
                code = codebook.match(code_type, name)
                labels.append(
                    Label(code_type, "code", name, label_key(code_type, "sub_theme", code.sub_theme))
                )
        if not labels:
            raise LabelError(f"{codebook.origin}: the codebook has no codes")
        self.labels: tuple[Label, ...] = tuple(labels)
        self.keys: tuple[str, ...] = tuple(label.key for label in labels)
        self.index: dict[str, int] = {key: i for i, key in enumerate(self.keys)}
        if len(self.index) != len(self.keys):  # pragma: no cover - the codebook forbids duplicates
            raise LabelError(f"{codebook.origin}: two labels share a name at one level")
        # ancestors[i, j] is True when label j is a strict ancestor of label i
        size = len(labels)
        self.parent_index = np.array(
            [self.index[lab.parent] if lab.parent else -1 for lab in labels], dtype=np.int64
        )
        self.ancestors = np.zeros((size, size), dtype=bool)
        for i, label in enumerate(labels):
            parent = label.parent
            while parent:
                j = self.index[parent]
                self.ancestors[i, j] = True
                parent = self.labels[j].parent

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def version(self) -> str:
        return self.codebook.version

    def positions(self, *, code_type: str | None = None, level: str | None = None) -> np.ndarray:
        """Indices of the labels of a type and/or level, in label order."""
        return np.array(
            [
                i
                for i, label in enumerate(self.labels)
                if (code_type is None or label.type == code_type) and (level is None or label.level == level)
            ],
            dtype=np.int64,
        )

    # -- building label matrices -------------------------------------------------------------
    def indicators(self, codes: Iterable[tuple[str, str]]) -> np.ndarray:
        """The 0/1 vector of a post coded with ``(type, code name)`` pairs, with every ancestor set."""
        row = np.zeros(len(self), dtype=np.uint8)
        for code_type, name in codes:
            code = self.codebook.get(code_type, name)  # type: ignore[arg-type]
            if code is None:
                raise LabelError(f"unknown {code_type} code {name!r} for codebook {self.codebook.origin}")
            i = self.index[label_key(code_type, "code", code.name)]
            row[i] = 1
            row[self.ancestors[i]] = 1
        return row

    def matrix(self, post_ids: Sequence[str], mentions: pd.DataFrame) -> np.ndarray:
        """``(len(post_ids), len(self))`` 0/1 matrix from code mentions (columns ``post_id, type,
        code``, as :func:`secmine.replication.load_coded_sample` returns); posts without mentions
        get an all-zero row."""
        codes: dict[str, list[tuple[str, str]]] = {}
        for post_id, code_type, code in mentions[["post_id", "type", "code"]].itertuples(index=False):
            codes.setdefault(str(post_id), []).append((str(code_type), str(code)))
        out = np.zeros((len(post_ids), len(self)), dtype=np.uint8)
        for r, post_id in enumerate(post_ids):
            out[r] = self.indicators(codes.get(str(post_id), ()))
        return out

    # -- hierarchy consistency ---------------------------------------------------------------
    def consistent_proba(self, proba: np.ndarray) -> np.ndarray:
        """Probabilities capped top-down: no label more probable than its parent (a post carries a
        theme whenever it carries one of its codes, so P(code) <= P(sub-theme) <= P(theme))."""
        proba = self._check(proba).astype(np.float64, copy=True)
        for level in LEVELS[1:]:
            columns = self.positions(level=level)
            proba[:, columns] = np.minimum(proba[:, columns], proba[:, self.parent_index[columns]])
        return proba

    def propagate(self, predicted: np.ndarray) -> np.ndarray:
        """0/1 predictions with every ancestor of a predicted label set (bottom-up)."""
        predicted = self._check(predicted).astype(bool)
        implied = (predicted.astype(np.int64) @ self.ancestors.astype(np.int64)) > 0
        return (predicted | implied).astype(np.uint8)

    def decide(self, proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """Hierarchy-consistent 0/1 predictions, top-down: a theme at its threshold, a sub-theme at
        its threshold when its theme is predicted, a code at its threshold when its sub-theme is."""
        thresholds = np.asarray(thresholds, dtype=np.float64)
        if thresholds.shape != (len(self),):
            raise LabelError(
                f"{thresholds.shape[0] if thresholds.ndim else 1} thresholds for {len(self)} labels"
            )
        above = self._check(proba) >= thresholds[None, :]
        out = np.zeros(above.shape, dtype=bool)
        for level in LEVELS:
            columns = self.positions(level=level)
            gate = out[:, self.parent_index[columns]] if level != "theme" else True
            out[:, columns] = above[:, columns] & gate
        return out.astype(np.uint8)

    def violations(self, predicted: np.ndarray) -> int:
        """How many (row, label) pairs predict a label without one of its ancestors."""
        predicted = self._check(predicted).astype(bool)
        missing = predicted[:, :, None] & self.ancestors[None, :, :] & ~predicted[:, None, :]
        return int(missing.any(axis=2).sum())

    def _check(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != len(self):
            raise LabelError(f"expected a (rows, {len(self)}) matrix, got shape {matrix.shape}")
        return matrix

    # -- description -------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """``key, type, level, label, parent`` per label."""
        import pandas as pd

        return pd.DataFrame(
            {
                "key": list(self.keys),
                "type": [label.type for label in self.labels],
                "level": [label.level for label in self.labels],
                "label": [label.name for label in self.labels],
                "parent": [label.parent for label in self.labels],
            }
        )

    def to_json(self) -> list[dict[str, str]]:
        """The codebook's codes (enough to rebuild the label space)."""
        return [
            {"type": c.type, "theme": c.theme, "sub_theme": c.sub_theme, "name": c.name}
            for c in self.codebook.codes
        ]

    @classmethod
    def from_json(cls, codes: Sequence[Mapping[str, str]], *, origin: str = "<model card>") -> LabelSpace:
        try:
            codebook = Codebook(
                [Code(str(c["name"]), str(c["sub_theme"]), str(c["theme"]), _type(c["type"])) for c in codes],
                origin=origin,
            )
        except (KeyError, TypeError) as exc:
            raise LabelError(
                f"{origin}: field 'codebook': every code needs type, theme, sub_theme, name"
            ) from exc
        return cls(codebook)


def _type(value: object) -> CodeType:
    text = str(value)
    if text not in CODE_TYPES:
        raise LabelError(f"code type {text!r} is not issue or solution")
    return text  # type: ignore[return-value]
