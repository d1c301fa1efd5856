"""The keyword baseline: a thread is a security discussion when it contains a keyword."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from secmine.detect.keywords import KeywordMatcher
from secmine.detect.models.base import ModelSettings, SecurityModel


class KeywordModel(SecurityModel):
    """Probability 1 when any keyword of the settings occurs in the text, else 0 (nothing learnt)."""

    family = "keyword"
    trainable = False

    def __init__(self, params: dict[str, Any] | None = None, settings: ModelSettings | None = None) -> None:
        super().__init__(params, settings)
        self._matcher = KeywordMatcher(self.params["keywords"], word_boundary=self.params["word_boundary"])

    @classmethod
    def default_params(cls, settings: ModelSettings) -> dict[str, Any]:
        return {"keywords": list(settings.keywords), "word_boundary": bool(settings.word_boundary)}

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], sample_weight: Sequence[float] | None = None
    ) -> KeywordModel:
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([1.0 if self._matcher.matches(t) else 0.0 for t in texts], dtype=np.float64)

    def save(self, directory: str | os.PathLike[str]) -> None:
        return None  # the keywords are the model's params, recorded in the model card

    @classmethod
    def load(cls, directory: str | os.PathLike[str], card: dict[str, Any]) -> KeywordModel:
        return cls(card.get("params"), ModelSettings.from_dict(card.get("settings", {})))
