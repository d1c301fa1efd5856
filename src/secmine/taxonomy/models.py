"""The tagger's model families: multi-label, one output per label of the :class:`LabelSpace`.

=================  ==========================================================================
``tfidf_logreg``   TF-IDF (word uni/bigrams) + one logistic regression per label (one-vs-rest)
``embed_logreg``   frozen MiniLM sentence embeddings + one logistic regression per label
``finetune``       MiniLM fine-tuned end to end with a multi-label head (sigmoid per label,
                   ``problem_type="multi_label_classification"``)
``zero_shot``      no training: codes ranked by the cosine similarity of the text's embedding to
                   the embedding of each code's name and description (a softmax over the codes of
                   a taxonomy); a sub-theme's or theme's score is the sum of its codes'
=================  ==========================================================================

Every family returns raw per-label probabilities; :mod:`secmine.taxonomy.tagger` makes them
consistent with the hierarchy and applies per-label thresholds.  Nothing is pickled: linear heads
are safetensors arrays, the TF-IDF vectoriser is a skops file loaded only after checking that it
holds no type outside :data:`SKOPS_TRUSTED`, the fine-tuned network is ``save_pretrained``
(safetensors) with its tokenizer.  A label with no positive (or no negative) training post gets a
constant head at its training share.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from secmine.taxonomy.labels import LabelSpace

HEADS_FILE = "heads.safetensors"
VECTORISER_FILE = "tfidf.skops"
LABEL_VECTORS_FILE = "label_vectors.safetensors"
TRANSFORMER_DIR = "transformer"
# Types a saved TF-IDF vectoriser may hold beyond skops' defaults (none are needed today); anything
# else found in the file is refused before loading.
SKOPS_TRUSTED: frozenset[str] = frozenset()


class TaggerModelError(RuntimeError):
    """A tagger model cannot be built, trained, saved or loaded; the message says why."""


@dataclass
class TaggerSettings:
    """Settings of every family (CPU-sized defaults; see ``docs`` in the report for the GPU ones)."""

    seed: int = 42
    num_threads: int = 2
    progress: bool = False
    # linear heads (tfidf_logreg, embed_logreg)
    C: float = 1.0
    class_weight: str = "balanced"  # or "none"
    # TF-IDF
    ngram_max: int = 2
    min_df: int = 2
    max_features: int = 20000
    # sentence embeddings (embed_logreg, zero_shot)
    encoder: str = "minilm"
    embed_max_length: int = 128  # tokens of a text the encoder reads (MiniLM was trained on 128)
    embed_batch_size: int = 1  # 1: a text's vector depends on nothing else (byte-stable caches)
    embedding_cache: str = ""  # folder of a Parquet cache of embeddings ("" = memory only)
    # zero-shot
    zero_shot_temperature: float = 0.05
    descriptions: dict[str, str] = field(default_factory=dict)  # "type|code name" -> description
    # fine-tuned MiniLM
    backbone: str = "minilm"
    max_length: int = 128
    epochs: float = 1.0
    batch_size: int = 8
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    eval_batch_size: int = 16
    max_tokens_per_batch: int = 4096

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaggerSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class TaggerModel(ABC):
    """A multi-label text model over a label space."""

    family: ClassVar[str] = ""
    # thresholds inside a fold: cheap families refit after an inner cross-validation; the others
    # choose them on an inner held-out fold of the training part and are not refitted
    cheap: ClassVar[bool] = True
    trainable: ClassVar[bool] = True

    def __init__(self, space: LabelSpace, settings: TaggerSettings | None = None) -> None:
        self.space = space
        self.settings = settings or TaggerSettings()

    @abstractmethod
    def fit(self, texts: Sequence[str], Y: np.ndarray) -> TaggerModel:
        """Train on ``texts`` with the ``(texts, labels)`` 0/1 matrix ``Y``."""

    @abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``(texts, labels)`` probabilities (not yet hierarchy-consistent)."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the model's files into ``directory``."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, space: LabelSpace, settings: TaggerSettings) -> TaggerModel:
        """Rebuild a saved model."""

    def _check(self, texts: Sequence[str], Y: np.ndarray) -> np.ndarray:
        Y = np.asarray(Y)
        if Y.shape != (len(texts), len(self.space)):
            raise TaggerModelError(
                f"{self.family}: labels of shape {Y.shape} for {len(texts)} texts and "
                f"{len(self.space)} labels"
            )
        return Y.astype(np.int64)


# -- linear heads ------------------------------------------------------------------------------


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return float(np.log(p / (1 - p)))


class LinearHeads:
    """One logistic regression per label, kept as a weight matrix and a bias vector."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight = weight
        self.bias = bias

    @classmethod
    def fit(
        cls, X: Any, Y: np.ndarray, *, C: float, class_weight: str, seed: int, progress: bool = False
    ) -> LinearHeads:
        from sklearn.linear_model import LogisticRegression
        from tqdm.auto import tqdm

        n_features = X.shape[1]
        weight = np.zeros((Y.shape[1], n_features), dtype=np.float64)
        bias = np.zeros(Y.shape[1], dtype=np.float64)
        weights = None if class_weight in ("", "none", None) else class_weight
        for j in tqdm(range(Y.shape[1]), desc="label heads", unit="label", disable=not progress, leave=False):
            y = Y[:, j]
            positives = int(y.sum())
            if positives == 0 or positives == len(y):
                bias[j] = _logit(positives / max(len(y), 1))
                continue
            head = LogisticRegression(
                C=float(C), class_weight=weights, max_iter=2000, solver="liblinear", random_state=int(seed)
            )
            head.fit(X, y)
            weight[j] = head.coef_[0]
            bias[j] = float(head.intercept_[0])
        return cls(weight, bias)

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = np.asarray(X @ self.weight.T) + self.bias[None, :]
        return 1.0 / (1.0 + np.exp(-scores))

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        from secmine.io import atomic_path

        with atomic_path(path) as tmp:
            save_file({"weight": np.ascontiguousarray(self.weight), "bias": self.bias}, str(tmp))

    @classmethod
    def load(cls, path: Path) -> LinearHeads:
        from safetensors.numpy import load_file

        if not path.is_file():
            raise TaggerModelError(f"{path}: saved label heads not found")
        arrays = load_file(str(path))
        return cls(arrays["weight"], arrays["bias"])


# -- sentence embeddings -----------------------------------------------------------------------

_ENCODERS: dict[tuple[str, int], Any] = {}


def sentence_encoder(
    name: str, max_length: int, batch_size: int, *, progress: bool = False
) -> Callable[[list[str]], np.ndarray]:
    """A function embedding texts (L2-normalised float32) with the sentence encoder ``name``
    (``minilm``: the offline all-MiniLM-L6-v2), reading at most ``max_length`` tokens."""
    from secmine.detect.backbones import resolve_backbone

    path = resolve_backbone(name)
    key = (path, int(max_length))
    if key not in _ENCODERS:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.manual_seed(0)
        model = SentenceTransformer(path, device="cuda" if torch.cuda.is_available() else "cpu")
        model.max_seq_length = int(max_length)
        model.eval()
        _ENCODERS[key] = model
    model = _ENCODERS[key]

    def encode(texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vectors = model.encode(
                texts,
                batch_size=int(batch_size),
                show_progress_bar=progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.asarray(vectors, dtype=np.float32)

    return encode


class Embedder:
    """Embeddings of texts, cached in memory and (with ``settings.embedding_cache``) on disk, keyed
    by encoder, token budget, batch size and text."""

    _memory: ClassVar[dict[tuple[str, str], np.ndarray]] = {}

    def __init__(self, settings: TaggerSettings) -> None:
        self.settings = settings
        self.model_key = f"{settings.encoder}@{settings.embed_max_length}/batch{settings.embed_batch_size}"

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        from secmine.text import text_hash

        texts = list(texts)
        keys = [text_hash(t, key=self.model_key) for t in texts]
        todo = {k: t for k, t in zip(keys, texts) if (self.model_key, k) not in self._memory}
        if todo and self.settings.embedding_cache:
            from secmine.analysis.topics import EmbeddingCache

            cache = EmbeddingCache(self.settings.embedding_cache, model=self.model_key)
            vectors = cache.embed(list(todo.values()), lambda: self._encoder())
            if cache.computed:
                cache.save()
            for key, vector in zip(todo, vectors):
                self._memory[(self.model_key, key)] = vector
        elif todo:
            vectors = self._encoder()(list(todo.values()))
            for key, vector in zip(todo, vectors):
                self._memory[(self.model_key, key)] = vector
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._memory[(self.model_key, k)] for k in keys]).astype(np.float64)

    def _encoder(self) -> Callable[[list[str]], np.ndarray]:
        s = self.settings
        return sentence_encoder(s.encoder, s.embed_max_length, s.embed_batch_size, progress=s.progress)

    @classmethod
    def clear(cls) -> None:
        cls._memory.clear()


# -- families ----------------------------------------------------------------------------------


class TfidfLogReg(TaggerModel):
    family = "tfidf_logreg"

    def __init__(self, space: LabelSpace, settings: TaggerSettings | None = None) -> None:
        super().__init__(space, settings)
        self.vectoriser: Any = None
        self.heads: LinearHeads | None = None

    def fit(self, texts: Sequence[str], Y: np.ndarray) -> TfidfLogReg:
        from sklearn.feature_extraction.text import TfidfVectorizer

        Y = self._check(texts, Y)
        s = self.settings
        min_df = int(s.min_df) if len(texts) >= 10 * int(s.min_df) else 1  # tiny data keeps a vocabulary
        self.vectoriser = TfidfVectorizer(
            lowercase=True,
            ngram_range=(1, int(s.ngram_max)),
            min_df=min_df,
            sublinear_tf=True,
            max_features=int(s.max_features),
            dtype=np.float64,
        )
        X = self.vectoriser.fit_transform(list(texts))
        self.heads = LinearHeads.fit(
            X, Y, C=s.C, class_weight=s.class_weight, seed=s.seed, progress=s.progress
        )
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.heads is None:
            raise TaggerModelError("tfidf_logreg: predict before fit")
        return self.heads.predict_proba(self.vectoriser.transform(list(texts)))

    def save(self, directory: Path) -> None:
        import skops.io as sio

        from secmine.io import atomic_path

        if self.heads is None:
            raise TaggerModelError("tfidf_logreg: save before fit")
        with atomic_path(directory / VECTORISER_FILE) as tmp:
            sio.dump(self.vectoriser, tmp)
        self.heads.save(directory / HEADS_FILE)

    @classmethod
    def load(cls, directory: Path, space: LabelSpace, settings: TaggerSettings) -> TfidfLogReg:
        model = cls(space, settings)
        model.vectoriser = load_skops(directory / VECTORISER_FILE)
        model.heads = LinearHeads.load(directory / HEADS_FILE)
        return model


def load_skops(path: Path) -> Any:
    """A skops file, loaded only when every type it holds is skops-trusted or in :data:`SKOPS_TRUSTED`."""
    import skops.io as sio

    if not path.is_file():
        raise TaggerModelError(f"{path}: saved file not found")
    untrusted = sorted(sio.get_untrusted_types(file=path))
    refused = [t for t in untrusted if t not in SKOPS_TRUSTED]
    if refused:
        raise TaggerModelError(
            f"{path}: refusing to load untrusted type(s) {', '.join(refused)}; "
            "retrain the tagger (secmine train-tagger)"
        )
    return sio.load(path, trusted=untrusted)


class EmbedLogReg(TaggerModel):
    family = "embed_logreg"

    def __init__(self, space: LabelSpace, settings: TaggerSettings | None = None) -> None:
        super().__init__(space, settings)
        self.embedder = Embedder(self.settings)
        self.heads: LinearHeads | None = None

    def fit(self, texts: Sequence[str], Y: np.ndarray) -> EmbedLogReg:
        Y = self._check(texts, Y)
        s = self.settings
        self.heads = LinearHeads.fit(
            self.embedder(texts), Y, C=s.C, class_weight=s.class_weight, seed=s.seed, progress=s.progress
        )
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.heads is None:
            raise TaggerModelError("embed_logreg: predict before fit")
        return self.heads.predict_proba(self.embedder(texts))

    def save(self, directory: Path) -> None:
        if self.heads is None:
            raise TaggerModelError("embed_logreg: save before fit")
        self.heads.save(directory / HEADS_FILE)

    @classmethod
    def load(cls, directory: Path, space: LabelSpace, settings: TaggerSettings) -> EmbedLogReg:
        model = cls(space, settings)
        model.heads = LinearHeads.load(directory / HEADS_FILE)
        return model


def code_description(space: LabelSpace, code_type: str, name: str, descriptions: dict[str, str]) -> str:
    """What the zero-shot baseline embeds for a code: its name, its description when the settings
    give one, its sub-theme and theme."""
    code = space.codebook.match(code_type, name)  # type: ignore[arg-type]
    extra = descriptions.get(f"{code_type}|{code.name}", "").strip()
    parts = [code.name, extra, f"{code.sub_theme} ({code.theme} security {code_type})"]
    return ". ".join(p for p in parts if p)


class ZeroShot(TaggerModel):
    """Codes ranked by embedding similarity to their names and descriptions (no training)."""

    family = "zero_shot"
    trainable = False

    def __init__(self, space: LabelSpace, settings: TaggerSettings | None = None) -> None:
        super().__init__(space, settings)
        self.embedder = Embedder(self.settings)
        self.label_vectors: np.ndarray | None = None  # (codes, dim), codes in label order

    def _codes(self) -> np.ndarray:
        return self.space.positions(level="code")

    def fit(self, texts: Sequence[str], Y: np.ndarray) -> ZeroShot:
        self._check(texts, Y)
        if self.label_vectors is None:
            labels = [self.space.labels[i] for i in self._codes()]
            self.label_vectors = self.embedder(
                [
                    code_description(self.space, lab.type, lab.name, self.settings.descriptions)
                    for lab in labels
                ]
            )
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.label_vectors is None:
            self.fit(list(texts), np.zeros((len(texts), len(self.space)), dtype=np.int64))
        assert self.label_vectors is not None
        similarity = (
            self.embedder(texts) @ self.label_vectors.T if len(texts) else np.zeros((0, len(self._codes())))
        )
        out = np.zeros((len(texts), len(self.space)), dtype=np.float64)
        codes = self._codes()
        temperature = max(float(self.settings.zero_shot_temperature), 1e-6)
        for code_type in ("issue", "solution"):
            mask = np.array([self.space.labels[i].type == code_type for i in codes])
            if not mask.any():
                continue
            scores = similarity[:, mask] / temperature
            scores -= scores.max(axis=1, keepdims=True) if len(texts) else 0.0
            soft = np.exp(scores)
            soft /= soft.sum(axis=1, keepdims=True)
            out[:, codes[mask]] = soft
        # a sub-theme's and a theme's score: the sum of their codes'
        for j in range(len(self.space)):
            if self.space.labels[j].level != "code":
                below = codes[self.space.ancestors[codes, j]]
                out[:, j] = np.clip(out[:, below].sum(axis=1), 0.0, 1.0)
        return out

    def save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        from secmine.io import atomic_path

        if self.label_vectors is None:
            raise TaggerModelError("zero_shot: save before fit")
        with atomic_path(directory / LABEL_VECTORS_FILE) as tmp:
            save_file({"label_vectors": np.ascontiguousarray(self.label_vectors)}, str(tmp))

    @classmethod
    def load(cls, directory: Path, space: LabelSpace, settings: TaggerSettings) -> ZeroShot:
        from safetensors.numpy import load_file

        path = directory / LABEL_VECTORS_FILE
        if not path.is_file():
            raise TaggerModelError(f"{path}: saved label vectors not found")
        model = cls(space, settings)
        model.label_vectors = load_file(str(path))["label_vectors"]
        return model


class FineTuned(TaggerModel):
    """MiniLM (or any sequence-classification backbone) fine-tuned with a multi-label head."""

    family = "finetune"
    cheap = False

    def __init__(self, space: LabelSpace, settings: TaggerSettings | None = None) -> None:
        super().__init__(space, settings)
        self.model: Any = None
        self.tokenizer: Any = None

    def fit(self, texts: Sequence[str], Y: np.ndarray) -> FineTuned:
        import tempfile

        import torch
        from transformers import (
            AutoModelForSequenceClassification,
            AutoTokenizer,
            DataCollatorWithPadding,
            Trainer,
            TrainingArguments,
        )

        from secmine.detect.backbones import resolve_backbone
        from secmine.detect.models.transformer import _ListDataset, configure_torch, quiet_transformers

        Y = self._check(texts, Y)
        s = self.settings
        configure_torch(s.seed, s.num_threads)
        path = resolve_backbone(s.backbone)
        id2label = dict(enumerate(self.space.keys))
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                path,
                num_labels=len(self.space),
                problem_type="multi_label_classification",
                id2label=id2label,
                label2id={v: k for k, v in id2label.items()},
                ignore_mismatched_sizes=True,
            )
        if self.tokenizer.pad_token is None:
            raise TaggerModelError(f"backbone {s.backbone!r}: its tokenizer has no padding token")
        encoded = self.tokenizer(list(texts), truncation=True, max_length=int(s.max_length), padding=False)
        items = [
            {"input_ids": ids, "attention_mask": mask, "labels": [float(v) for v in row]}
            for ids, mask, row in zip(encoded["input_ids"], encoded["attention_mask"], Y, strict=True)
        ]
        cuda = torch.cuda.is_available()
        with tempfile.TemporaryDirectory(prefix="secmine-tagger-") as tmp, quiet_transformers():
            args = TrainingArguments(
                output_dir=tmp,
                per_device_train_batch_size=int(s.batch_size),
                num_train_epochs=float(s.epochs),
                learning_rate=float(s.learning_rate),
                weight_decay=float(s.weight_decay),
                warmup_steps=float(s.warmup_ratio),
                lr_scheduler_type="linear",
                optim="adamw_torch",
                seed=s.seed,
                data_seed=s.seed,
                save_strategy="no",
                eval_strategy="no",
                logging_strategy="no",
                report_to="none",
                disable_tqdm=not s.progress,
                use_cpu=not cuda,
                fp16=bool(cuda),
                train_sampling_strategy="group_by_length",
                dataloader_num_workers=0,
            )
            trainer = Trainer(
                model=self.model,
                args=args,
                train_dataset=_ListDataset(items),
                data_collator=DataCollatorWithPadding(self.tokenizer),
                processing_class=self.tokenizer,
            )
            trainer.train()
        self.model = trainer.model.eval()
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from secmine.detect.batching import predict_logits

        if self.model is None:
            raise TaggerModelError("finetune: predict before fit")
        s = self.settings
        scale = 8 if next(self.model.parameters()).device.type == "cuda" else 1
        logits = predict_logits(
            self.model,
            self.tokenizer,
            list(texts),
            max_length=int(s.max_length),
            max_batch_size=int(s.eval_batch_size) * scale,
            max_tokens=int(s.max_tokens_per_batch) * scale,
            progress=s.progress,
        )
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))

    def save(self, directory: Path) -> None:
        if self.model is None:
            raise TaggerModelError("finetune: save before fit")
        target = directory / TRANSFORMER_DIR
        target.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(target, safe_serialization=True)
        self.tokenizer.save_pretrained(target)

    @classmethod
    def load(cls, directory: Path, space: LabelSpace, settings: TaggerSettings) -> FineTuned:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from secmine.detect.models.transformer import quiet_transformers

        path = directory / TRANSFORMER_DIR
        if not (path / "config.json").is_file():
            raise TaggerModelError(f"{path}: no config.json; not a saved fine-tuned tagger")
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if len(config.get("id2label", {})) != len(space):
            raise TaggerModelError(
                f"{path}/config.json: {len(config.get('id2label', {}))} labels, the card has {len(space)}"
            )
        if settings.num_threads > 0:
            torch.set_num_threads(int(settings.num_threads))
        model = cls(space, settings)
        with quiet_transformers():
            model.tokenizer = AutoTokenizer.from_pretrained(path)
            model.model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model.model = model.model.to(device).eval()
        return model


FAMILIES: dict[str, type[TaggerModel]] = {
    cls.family: cls for cls in (TfidfLogReg, EmbedLogReg, FineTuned, ZeroShot)
}
DEFAULT_FAMILIES = "tfidf_logreg,embed_logreg,finetune,zero_shot"


def parse_families(families: str | Sequence[str]) -> list[str]:
    names = (
        [f.strip() for f in families.split(",")]
        if isinstance(families, str)
        else [str(f).strip() for f in families]
    )
    names = [n for n in dict.fromkeys(names) if n]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise TaggerModelError(f"unknown tagger family {unknown[0]!r}; choose from {', '.join(FAMILIES)}")
    if not names:
        raise TaggerModelError("no tagger family given")
    return names


def build(family: str, space: LabelSpace, settings: TaggerSettings) -> TaggerModel:
    return FAMILIES[parse_families([family])[0]](space, settings)
