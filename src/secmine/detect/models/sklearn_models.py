"""TF-IDF with logistic regression and with a linear SVM (scikit-learn pipelines, saved with skops:
no pickle, trusted types checked on load, see :mod:`secmine.detect.models.skops_io`)."""

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

PIPELINE_FILE = "pipeline.skops"
LEGACY_PIPELINE_FILE = "pipeline.joblib"  # pickled by secmine before skops; refused on load


class _TfidfModel(SecurityModel):
    """Shared TF-IDF part; subclasses choose the linear classifier."""

    def __init__(self, params: dict[str, Any] | None = None, settings: ModelSettings | None = None) -> None:
        super().__init__(params, settings)
        self.pipeline: Any = None

    @classmethod
    def default_params(cls, settings: ModelSettings) -> dict[str, Any]:
        return {"C": 1.0, "ngram_max": 2, "min_df": 2, "sublinear_tf": True, "class_weight": "balanced"}

    searchable = True

    @classmethod
    def initial_trial(cls, settings: ModelSettings) -> dict[str, Any]:
        return cls.default_params(settings)

    @classmethod
    def suggest(cls, trial: optuna.Trial, settings: ModelSettings) -> dict[str, Any]:
        return {
            "C": trial.suggest_float("C", 1e-2, 1e2, log=True),
            "ngram_max": trial.suggest_int("ngram_max", 1, 2),
            "min_df": trial.suggest_int("min_df", 1, 3),
            "sublinear_tf": trial.suggest_categorical("sublinear_tf", [True, False]),
            "class_weight": trial.suggest_categorical("class_weight", ["balanced", "none"]),
        }

    def _vectoriser(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            lowercase=True,
            ngram_range=(1, int(self.params["ngram_max"])),
            min_df=int(self.params["min_df"]),
            sublinear_tf=bool(self.params["sublinear_tf"]),
            max_features=200_000,
            dtype=np.float64,
        )

    def _classifier(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _class_weight(self) -> str | None:
        return None if self.params["class_weight"] in (None, "none") else str(self.params["class_weight"])

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], sample_weight: Sequence[float] | None = None
    ) -> _TfidfModel:
        from sklearn.pipeline import Pipeline

        y = check_training_data(texts, labels)
        weights = check_weights(sample_weight, len(y))
        min_df = int(self.params["min_df"])
        if min_df > 1 and len(texts) < 10 * min_df:
            self.params["min_df"] = 1  # tiny data: keep a vocabulary
        self.pipeline = Pipeline([("tfidf", self._vectoriser()), ("clf", self._classifier())])
        self.pipeline.fit(list(texts), y, **({} if weights is None else {"clf__sample_weight": weights}))
        return self

    def _scores(self, texts: Sequence[str]) -> np.ndarray:
        if self.pipeline is None:
            raise ModelError(f"{self.family}: predict before fit")
        return self.pipeline.decision_function(list(texts))

    def save(self, directory: str | os.PathLike[str]) -> None:
        from secmine.detect.models.skops_io import save_estimator

        if self.pipeline is None:
            raise ModelError(f"{self.family}: save before fit")
        save_estimator(self.pipeline, ensure_dir(directory) / PIPELINE_FILE)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], card: dict[str, Any]) -> _TfidfModel:
        from secmine.detect.models.skops_io import load_saved

        model = cls(card.get("params"), ModelSettings.from_dict(card.get("settings", {})))
        model.pipeline = load_saved(directory, PIPELINE_FILE, legacy=LEGACY_PIPELINE_FILE, what="pipeline")
        return model


class TfidfLogReg(_TfidfModel):
    """TF-IDF (word uni/bigrams) + logistic regression."""

    family = "tfidf_logreg"

    def _classifier(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=float(self.params["C"]), class_weight=self._class_weight(), max_iter=2000, random_state=self.settings.seed
        )

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return sigmoid(self._scores(texts))


class TfidfSVM(_TfidfModel):
    """TF-IDF + linear SVM; the probability is the logistic of the margin (0.5 at the margin)."""

    family = "tfidf_svm"

    def _classifier(self) -> Any:
        from sklearn.svm import LinearSVC

        return LinearSVC(C=float(self.params["C"]), class_weight=self._class_weight(), random_state=self.settings.seed)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return sigmoid(self._scores(texts))
