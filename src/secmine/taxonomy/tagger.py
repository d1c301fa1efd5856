"""A saved tagger: a model family, its label space, per-label thresholds and its card.

``models/taxonomy/`` holds

* ``tagger_card.json`` -- format, family, settings, the codebook (so the folder is self-contained),
  its version, the threshold of every label, the cross-validated metrics, the codes too rare to
  learn, where the training data came from;
* the family's files (:mod:`secmine.taxonomy.models`; no pickle);
* ``oof_predictions.parquet`` -- for every training post, the hand-coded labels and the
  out-of-fold probabilities and predictions of the chosen family (what a model not trained on the
  post says about it; used for the post's own predictions when it is tagged, and by the coverage
  study of :mod:`secmine.taxonomy.ppi`).

Predictions obey the hierarchy (:meth:`secmine.taxonomy.labels.LabelSpace.decide`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from secmine.text import DEFAULT_MAX_CHARS
from secmine.taxonomy.labels import LabelSpace
from secmine.taxonomy.models import FAMILIES, TaggerModel, TaggerModelError, TaggerSettings

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

CARD_FILE = "tagger_card.json"
OOF_FILE = "oof_predictions.parquet"
CARD_FORMAT = "secmine-taxonomy-tagger/1"
TAG_COLUMNS = ["id", "type", "level", "label", "probability", "predicted"]
DIGITS = 6


@dataclass
class Tagger:
    model: TaggerModel
    space: LabelSpace
    thresholds: np.ndarray
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def max_chars(self) -> int:
        return int((self.card.get("text") or {}).get("max_chars", DEFAULT_MAX_CHARS))

    def proba(self, texts: list[str]) -> np.ndarray:
        """Hierarchy-consistent probabilities ``(texts, labels)``."""
        if not texts:
            return np.zeros((0, len(self.space)), dtype=np.float64)
        return self.space.consistent_proba(self.model.predict_proba(texts))

    def predict(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, 0/1 predictions)``, both consistent with the hierarchy."""
        proba = self.proba(texts)
        return proba, self.space.decide(proba, self.thresholds)

    def save(self, directory: str | os.PathLike[str], *, oof: pd.DataFrame | None = None) -> Path:
        """Replace ``directory`` with the tagger's files (atomically)."""
        from secmine.io import atomic_dir, write_json, write_parquet

        card = dict(self.card)
        card.update(
            {
                "format": CARD_FORMAT,
                "family": self.family,
                "settings": self.model.settings.to_dict(),
                "codebook": self.space.to_json(),
                "codebook_version": self.space.version,
                "labels": self.space.frame()[["key", "type", "level", "label", "parent"]].to_dict(
                    orient="records"
                ),
                "thresholds": {k: round(float(t), DIGITS) for k, t in zip(self.space.keys, self.thresholds)},
            }
        )
        with atomic_dir(directory) as staging:
            self.model.save(staging)
            if oof is not None:
                write_parquet(oof, staging / OOF_FILE)
            write_json(staging / CARD_FILE, card)
        self.card = card
        return Path(directory)

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        num_threads: int | None = None,
        progress: bool | None = None,
        embedding_cache: str | None = None,
    ) -> Tagger:
        """A saved tagger; ``embedding_cache`` overrides the card's embedding cache folder ("" = in
        memory only)."""
        card = read_card(directory)
        space = LabelSpace.from_json(card["codebook"], origin=str(Path(directory) / CARD_FILE))
        if space.version != card.get("codebook_version"):
            raise TaggerModelError(
                f"{Path(directory) / CARD_FILE}: field 'codebook_version' "
                f"{card.get('codebook_version')!r} does not match its codebook ({space.version})"
            )
        settings = TaggerSettings.from_dict(dict(card.get("settings") or {}))
        if num_threads is not None:
            settings.num_threads = int(num_threads)
        if progress is not None:
            settings.progress = bool(progress)
        if embedding_cache is not None:
            settings.embedding_cache = str(embedding_cache)
        thresholds_by_key = card.get("thresholds") or {}
        missing = [k for k in space.keys if k not in thresholds_by_key]
        if missing:
            raise TaggerModelError(
                f"{Path(directory) / CARD_FILE}: field 'thresholds' lacks label {missing[0]!r}"
            )
        thresholds = np.array([float(thresholds_by_key[k]) for k in space.keys], dtype=np.float64)
        model = FAMILIES[card["family"]].load(Path(directory), space, settings)
        return cls(model=model, space=space, thresholds=thresholds, card=card)


def read_card(directory: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(directory) / CARD_FILE
    if not path.is_file():
        raise TaggerModelError(
            f"{path}: no tagger card; train a tagger first (secmine train-tagger) or pass another --model-dir"
        )
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaggerModelError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if card.get("format") != CARD_FORMAT:
        raise TaggerModelError(f"{path}: field 'format' is {card.get('format')!r}, expected {CARD_FORMAT!r}")
    for key in ("family", "codebook", "thresholds"):
        if key not in card:
            raise TaggerModelError(f"{path}: field {key!r} missing")
    if card["family"] not in FAMILIES:
        raise TaggerModelError(f"{path}: field 'family': unknown family {card['family']!r}")
    return card


def read_oof(directory: str | os.PathLike[str]) -> pd.DataFrame:
    """The out-of-fold predictions saved with a tagger."""
    import pandas as pd

    path = Path(directory) / OOF_FILE
    if not path.is_file():
        raise TaggerModelError(f"{path}: the tagger was saved without out-of-fold predictions; retrain it")
    return pd.read_parquet(path)


def oof_frame(
    data_frame: pd.DataFrame,
    space: LabelSpace,
    Y: np.ndarray,
    proba: np.ndarray,
    predicted: np.ndarray,
    folds: np.ndarray,
) -> pd.DataFrame:
    """Wide out-of-fold table: ``post_id, source, thread_id, fold`` then per label ``y|key``,
    ``p|key``, ``hat|key``."""
    import pandas as pd

    columns: dict[str, Any] = {
        "post_id": data_frame["post_id"].astype(str).to_numpy(),
        "source": data_frame["source"].astype(str).to_numpy(),
        "thread_id": data_frame["thread_id"].astype(str).to_numpy(),
        "fold": np.asarray(folds, dtype=np.int64),
    }
    for j, key in enumerate(space.keys):
        columns[f"y|{key}"] = Y[:, j].astype(np.int8)
        columns[f"p|{key}"] = np.round(proba[:, j], DIGITS)
        columns[f"hat|{key}"] = predicted[:, j].astype(np.int8)
    return pd.DataFrame(columns)


def oof_matrices(oof: pd.DataFrame, space: LabelSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Y, probabilities, predictions)`` of an out-of-fold table, columns in label order."""
    missing = [k for k in space.keys if f"p|{k}" not in oof.columns]
    if missing:
        raise TaggerModelError(f"out-of-fold predictions lack label {missing[0]!r}; retrain the tagger")
    Y = oof[[f"y|{k}" for k in space.keys]].to_numpy(dtype=np.int64)
    P = oof[[f"p|{k}" for k in space.keys]].to_numpy(dtype=np.float64)
    H = oof[[f"hat|{k}" for k in space.keys]].to_numpy(dtype=np.int64)
    return Y, P, H


def long_rows(ids: list[str], space: LabelSpace, proba: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """One row per thread and label: ``id, type, level, label, probability, predicted``."""
    import pandas as pd

    n, size = len(ids), len(space)
    frame = space.frame()
    return pd.DataFrame(
        {
            "id": np.repeat(np.asarray(ids, dtype=object), size),
            "type": np.tile(frame["type"].to_numpy(dtype=object), n),
            "level": np.tile(frame["level"].to_numpy(dtype=object), n),
            "label": np.tile(frame["label"].to_numpy(dtype=object), n),
            "probability": np.round(np.asarray(proba, dtype=np.float64).reshape(-1), DIGITS),
            "predicted": np.asarray(predicted, dtype=np.int8).reshape(-1),
        },
        columns=TAG_COLUMNS,
    )


def tag_texts(
    tagger: Tagger, texts: list[str], *, chunk_size: int = 256, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and predictions of ``texts``, chunk by chunk with a progress bar."""
    from tqdm.auto import tqdm

    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    probas, preds = [], []
    with tqdm(total=len(texts), desc="tag", unit="thread", disable=not progress) as bar:
        for start in range(0, len(texts), chunk_size):
            part = texts[start : start + chunk_size]
            proba, predicted = tagger.predict(part)
            probas.append(proba)
            preds.append(predicted)
            bar.update(len(part))
    if not probas:
        return np.zeros((0, len(tagger.space))), np.zeros((0, len(tagger.space)), dtype=np.uint8)
    return np.vstack(probas), np.vstack(preds)


def tag_file(
    model_dir: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    text_column: str = "text",
    id_column: str = "id",
    chunk_size: int = 256,
    num_threads: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """``secmine tag``: tag every row of ``input_path`` (JSON lines in the snapshot schema, a corpus
    folder/Parquet, or a CSV with ``id,text``; as ``secmine classify``) and write ``output`` (CSV,
    or Parquet by its suffix) with :data:`TAG_COLUMNS`, one row per input row and label."""
    from secmine import io
    from secmine.detect.corpus import load_inputs

    tagger = Tagger.load(model_dir, num_threads=num_threads, embedding_cache="")
    inputs = load_inputs(input_path, text_column=text_column, id_column=id_column, max_chars=tagger.max_chars)
    proba, predicted = tag_texts(tagger, inputs["text"].tolist(), chunk_size=chunk_size, progress=progress)
    rows = long_rows(inputs["id"].astype(str).tolist(), tagger.space, proba, predicted)
    target = Path(output)
    if target.suffix.lower() == ".parquet":
        io.write_parquet(rows, target)
    else:
        io.write_csv(rows, target)
    return rows
