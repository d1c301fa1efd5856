"""Frozen sentence embeddings (all-MiniLM-L6-v2 by default, via sentence-transformers) + logistic
regression (the head saved with skops).  Embeddings are computed once per text and cached in memory across folds and trials."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from secmine.detect.models.base import (
    ModelError,
    ModelSettings,
    SecurityModel,
    check_training_data,
    check_weights,
    ensure_dir,
    sigmoid,
)

if TYPE_CHECKING:  # pragma: no cover
    import optuna

HEAD_FILE = "head.skops"
LEGACY_HEAD_FILE = "head.joblib"  # pickled by secmine before skops; refused on load

_ENCODERS: dict[str, Any] = {}
_CACHE: dict[tuple[str, str], np.ndarray] = {}


def get_encoder(name: str) -> Any:
    """A cached ``SentenceTransformer`` for ``name`` (resolved offline first), on CPU or CUDA."""
    from secmine.detect.backbones import resolve_backbone

    path = resolve_backbone(name)
    if path not in _ENCODERS:
        import torch
        from sentence_transformers import SentenceTransformer

        device = "cuda" if torch.cuda.is_available() else "cpu"
        _ENCODERS[path] = SentenceTransformer(path, device=device)
    return _ENCODERS[path]


def embed(texts: Sequence[str], name: str, *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
    """L2-normalised sentence embeddings of ``texts`` (cached per encoder and text)."""
    from secmine.detect.backbones import resolve_backbone

    key = resolve_backbone(name)
    encoder = get_encoder(name)
    missing = list(dict.fromkeys(t for t in texts if (key, t) not in _CACHE))
    if missing:
        import torch

        with torch.inference_mode():
            vectors = encoder.encode(
                missing,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        for text, vector in zip(missing, vectors, strict=True):
            _CACHE[(key, text)] = np.asarray(vector, dtype=np.float32)
    if not texts:
        return np.zeros((0, encoder.get_sentence_embedding_dimension()), dtype=np.float32)
    return np.stack([_CACHE[(key, t)] for t in texts])


def clear_cache() -> None:
    """Forget cached embeddings and encoders."""
    _CACHE.clear()
    _ENCODERS.clear()


class EmbedLogReg(SecurityModel):
    """Frozen sentence embeddings + logistic regression."""

    family = "embed_logreg"

    def __init__(self, params: dict[str, Any] | None = None, settings: ModelSettings | None = None) -> None:
        super().__init__(params, settings)
        self.head: Any = None

    @classmethod
    def default_params(cls, settings: ModelSettings) -> dict[str, Any]:
        return {"C": 1.0, "class_weight": "balanced", "encoder": settings.encoder}

    searchable = True

    @classmethod
    def initial_trial(cls, settings: ModelSettings) -> dict[str, Any]:
        return {"C": 1.0, "class_weight": "balanced"}

    @classmethod
    def suggest(cls, trial: optuna.Trial, settings: ModelSettings) -> dict[str, Any]:
        return {
            "C": trial.suggest_float("C", 1e-2, 1e2, log=True),
            "class_weight": trial.suggest_categorical("class_weight", ["balanced", "none"]),
            "encoder": settings.encoder,
        }

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed(list(texts), self.params["encoder"], batch_size=self.settings.embed_batch_size,
                     progress=self.settings.progress)

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], sample_weight: Sequence[float] | None = None
    ) -> EmbedLogReg:
        from sklearn.linear_model import LogisticRegression

        y = check_training_data(texts, labels)
        weights = check_weights(sample_weight, len(y))
        weight = None if self.params["class_weight"] in (None, "none") else self.params["class_weight"]
        self.head = LogisticRegression(C=float(self.params["C"]), class_weight=weight, max_iter=2000,
                                       random_state=self.settings.seed)
        self.head.fit(self._embed(texts), y, sample_weight=weights)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.head is None:
            raise ModelError("embed_logreg: predict before fit")
        return sigmoid(self.head.decision_function(self._embed(texts)))

    def save(self, directory: str | os.PathLike[str]) -> None:
        from secmine.detect.models.skops_io import save_estimator

        if self.head is None:
            raise ModelError("embed_logreg: save before fit")
        save_estimator(self.head, ensure_dir(directory) / HEAD_FILE)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], card: dict[str, Any]) -> EmbedLogReg:
        from secmine.detect.models.skops_io import load_saved

        model = cls(card.get("params"), ModelSettings.from_dict(card.get("settings", {})))
        model.head = load_saved(directory, HEAD_FILE, legacy=LEGACY_HEAD_FILE, what="classifier head")
        return model

    def describe(self) -> dict[str, Any]:
        return {"encoder": self.params["encoder"], "note": "the encoder is resolved at load time (offline first)"}
