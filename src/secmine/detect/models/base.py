"""The interface every model family implements, and the settings they share."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from secmine.detect.keywords import PAPER_KEYWORDS
from secmine.errors import SecmineError

if TYPE_CHECKING:  # pragma: no cover
    import optuna


@dataclass
class ModelSettings:
    """Settings shared by the model families (what is searched is in each family's ``suggest``).

    CPU-sized defaults; ``params-gpu.yaml`` documents the paper's configuration.
    """

    seed: int = 42
    threshold: float = 0.5
    num_threads: int = 2
    progress: bool = False
    # keyword baseline
    keywords: tuple[str, ...] = PAPER_KEYWORDS
    word_boundary: bool = True
    # frozen sentence embeddings
    encoder: str = "minilm"
    embed_batch_size: int = 32
    # fine-tuned transformers
    backbone: str = "minilm"
    max_length: int = 256
    batch_size: int = 8
    epochs: float = 1.0
    max_epochs: int = 2
    learning_rate: float = 2e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    class_weight: str = "balanced"  # the transformer's loss: balanced (each class half the weight) or none
    # inference batches (CPU: small batches are fastest; on a GPU both are multiplied by 8)
    eval_batch_size: int = 16
    max_tokens_per_batch: int = 4096
    # ONNX engines of a saved transformer: int8 is recommended when its held-out MCC is this close
    engine_tolerance: float = 0.01
    # LLM zero-/few-shot through an OpenAI-compatible endpoint
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key_env: str = "OPENAI_API_KEY"
    llm_shots: int = 4
    llm_shot_chars: int = 600
    llm_max_chars: int = 2000
    llm_timeout: float = 60.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["keywords"] = list(self.keywords)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "keywords" in known:
            known["keywords"] = tuple(known["keywords"])
        return cls(**known)


class ModelError(SecmineError, RuntimeError):
    """A model cannot be built, trained, saved or loaded; the message says why and what to do."""


class SecurityModel(ABC):
    """A binary classifier of texts: security discussion (1) or not (0).

    Subclasses set :attr:`family`, implement :meth:`fit`, :meth:`predict_proba`, :meth:`save` and
    :meth:`load`, and describe their hyperparameter space in :meth:`suggest`.
    """

    family: ClassVar[str] = ""
    trainable: ClassVar[bool] = True  # False: no fitting (keyword baseline, zero-shot LLM)
    searchable: ClassVar[bool] = False  # True: has hyperparameters for Optuna to search

    def __init__(self, params: dict[str, Any] | None = None, settings: ModelSettings | None = None) -> None:
        self.settings = settings or ModelSettings()
        self.params = {**self.default_params(self.settings), **(params or {})}

    # -- hyperparameters --------------------------------------------------------------------
    @classmethod
    def default_params(cls, settings: ModelSettings) -> dict[str, Any]:
        """The parameters used when nothing is searched (also the first trial of a search)."""
        return {}

    @classmethod
    def suggest(cls, trial: optuna.Trial, settings: ModelSettings) -> dict[str, Any]:
        """Draw one set of parameters for an Optuna trial (default: nothing to search)."""
        return dict(cls.default_params(settings))

    @classmethod
    def initial_trial(cls, settings: ModelSettings) -> dict[str, Any]:
        """The searched parameters' default values, enqueued as the first Optuna trial (so a budget
        of one trial evaluates the defaults)."""
        return {}

    # -- learning -----------------------------------------------------------------------------
    @abstractmethod
    def fit(
        self, texts: Sequence[str], labels: Sequence[int], sample_weight: Sequence[float] | None = None
    ) -> SecurityModel:
        """Train on ``texts`` with 0/1 ``labels`` (``sample_weight``: a weight per text, e.g. more for
        hard cases; families that learn nothing ignore it); returns ``self``."""

    @abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of the security class for each text (float64 array)."""

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """0/1 labels at the settings' threshold."""
        return (self.predict_proba(texts) >= self.settings.threshold).astype(np.int64)

    # -- persistence --------------------------------------------------------------------------
    @abstractmethod
    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the model's files into ``directory`` (the model card is written by the caller)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: str | os.PathLike[str], card: dict[str, Any]) -> SecurityModel:
        """Rebuild a saved model from ``directory`` and its model card."""

    def describe(self) -> dict[str, Any]:
        """What the model card records about this model besides family and params."""
        return {}


def check_training_data(texts: Sequence[str], labels: Sequence[int]) -> np.ndarray:
    """Labels as an int array; both classes present and as many labels as texts."""
    y = np.asarray(labels, dtype=np.int64)
    if len(texts) != len(y):
        raise ModelError(f"{len(texts)} texts but {len(y)} labels")
    if set(np.unique(y).tolist()) != {0, 1}:
        raise ModelError("training data needs both labels 0 and 1")
    return y


def check_weights(sample_weight: Sequence[float] | None, n: int) -> np.ndarray | None:
    """Sample weights as a float array of ``n`` positive values (None stays None)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise ModelError(f"{n} texts but {w.shape[0] if w.ndim else 0} sample weights")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ModelError("sample weights must be positive and finite")
    return w


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def ensure_dir(directory: str | os.PathLike[str]) -> Path:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    return path
