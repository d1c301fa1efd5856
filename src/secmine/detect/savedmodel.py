"""The on-disk format of a saved model (``models/security/``): layout, model card, engines, loading.

One module owns what a model folder holds, so the code that writes it (:mod:`secmine.detect.train`,
:mod:`secmine.detect.engine`) and the code that reads it (:mod:`secmine.detect.predict`) import this
module rather than each other::

    models/security/
      model_card.json        the card (this module: written, read and validated here)
      <family files>         transformer: config.json, model.safetensors, tokenizer files
                             (save_pretrained); tfidf_*: pipeline.skops; embed_logreg: head.skops;
                             keyword and LLM families: nothing besides the card
      onnx/                  transformer only: the inference engines, written by the train stage
        model.onnx           or ``secmine export`` (see :mod:`secmine.detect.engine`)
        model.int8.onnx
        export.json          export record with its ``format`` (:data:`EXPORT_FORMAT`)

Nothing in a model folder is a pickle.  The card has a ``format`` (:data:`CARD_FORMAT`); a card
without one is read as format 1 (cards written before the field existed have the same fields).
Every problem with a card is one line naming the file, the field and the fix
(:class:`ModelCardError`); engines that are missing or in an older export format are one line
saying to run ``secmine export --model-dir DIR`` (:class:`EngineError`).  Engines are never
exported on the fly: they live in the model folder, a declared output of the train stage.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine.detect.models.base import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from secmine.detect.models.base import SecurityModel

MODEL_CARD = "model_card.json"
#: Format of ``model_card.json``; 1 = the fields below (cards without ``format`` are format 1).
CARD_FORMAT = 1
ENGINES: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
ENGINE_DIR = "onnx"
ENGINE_FILES: dict[str, str] = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
EXPORT_INFO = "export.json"
#: Export format of ``onnx/``: 3 = graphs without an attention mask, int8 weights quantised to 7 bits
#: per channel (integer products that no CPU saturates), no machine-dependent numbers in export.json;
#: 2 = the same graphs with 8-bit weights; 1 = masked graphs with ``model.unpadded*`` twins.
EXPORT_FORMAT = 3


class ModelCardError(ModelError):
    """A model card is missing, unreadable or has a field of the wrong kind."""


class EngineError(ModelError):
    """An inference engine cannot be built or used."""


# -- the model card -----------------------------------------------------------------------------


def card_path(model_dir: str | os.PathLike[str]) -> Path:
    return Path(model_dir) / MODEL_CARD


RETRAIN = "retrain the model (secmine train)"


def _fail(path: Path, field: str, problem: str, fix: str = RETRAIN) -> ModelCardError:
    return ModelCardError(f"{path}: field '{field}' {problem}; {fix}")


def validate_card(card: Any, path: str | os.PathLike[str] = MODEL_CARD) -> dict[str, Any]:
    """``card`` when it is a valid model card, else :class:`ModelCardError` naming ``path`` and the field."""
    from secmine.detect.models import FAMILIES

    path = Path(path)
    if not isinstance(card, dict):
        raise ModelCardError(f"{path}: not a JSON object but {type(card).__name__}; {RETRAIN}")
    fmt = card.get("format", 1)
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise _fail(path, "format", f"must be a positive integer (got {fmt!r})")
    if fmt > CARD_FORMAT:
        raise _fail(path, "format", f"is {fmt}, newer than this secmine reads ({CARD_FORMAT})",
                    "upgrade secmine or retrain the model with this version (secmine train)")
    if "family" not in card:
        raise _fail(path, "family", "missing")
    if card["family"] not in FAMILIES:
        raise _fail(path, "family", f"is {card['family']!r}, not one of {', '.join(FAMILIES)}")
    threshold = card.get("threshold", 0.5)
    number = isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
    if not number or not 0.0 <= float(threshold) <= 1.0:
        raise _fail(path, "threshold", f"must be a number from 0 to 1 (got {threshold!r})")
    for name in ("params", "settings"):
        if name in card and not isinstance(card[name], dict):
            raise _fail(path, name, f"must be an object (got {type(card[name]).__name__})")
    text = card.get("text")
    if text is not None:
        if not isinstance(text, dict):
            raise _fail(path, "text", f"must be an object (got {type(text).__name__})")
        chars = text.get("max_chars")
        if chars is not None and (isinstance(chars, bool) or not isinstance(chars, int) or chars < 1):
            raise _fail(path, "text.max_chars", f"must be a positive integer or null (got {chars!r})")
    if card["family"] == "transformer":
        length = (card.get("params") or {}).get("max_length")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise _fail(path, "params.max_length",
                        f"must be a positive integer for a transformer (got {length!r})")
    engines = card.get("engines")
    if engines is not None:
        if not isinstance(engines, dict):
            raise _fail(path, "engines", f"must be an object (got {type(engines).__name__})")
        if engines.get("recommended") not in ENGINES:
            raise _fail(path, "engines.recommended", f"must be one of {', '.join(ENGINES)} "
                        f"(got {engines.get('recommended')!r})", "validate the engines again (secmine export "
                        f"--model-dir {path.parent} --data FILE)")
    return card


def read_card(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated model card of a saved model."""
    path = card_path(model_dir)
    if not path.is_file():
        raise ModelCardError(f"{path}: no model card; train a model first (secmine train) or pass "
                             "another --model-dir")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelCardError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}); retrain the model "
                             "(secmine train)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelCardError(f"{path}: cannot be read ({exc}); retrain the model (secmine train)") from exc
    return validate_card(card, path)


def write_card(model_dir: str | os.PathLike[str], card: dict[str, Any]) -> Path:
    """Validate ``card``, stamp it with :data:`CARD_FORMAT` and write it (sorted keys, atomically)."""
    from secmine.io import write_json

    path = card_path(model_dir)
    stamped = {**card, "format": CARD_FORMAT}
    validate_card(json.loads(json.dumps(stamped, default=_json_default)), path)
    write_json(path, stamped)
    return path


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return value.as_posix()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def card_max_chars(card: dict[str, Any], default: int | None = None) -> int:
    """The text length cap the model was trained with."""
    from secmine.text import DEFAULT_MAX_CHARS

    value = (card.get("text") or {}).get("max_chars")
    return int(value) if value else int(default if default is not None else DEFAULT_MAX_CHARS)


# -- the model itself ---------------------------------------------------------------------------


def load_model(model_dir: str | os.PathLike[str], *, num_threads: int | None = None,
               progress: bool | None = None) -> tuple[SecurityModel, dict[str, Any]]:
    """``(model, card)`` of a saved model, whatever its family (PyTorch weights for a transformer)."""
    from secmine.detect.models import get_family

    card = read_card(model_dir)
    cls = get_family(card["family"])
    settings = dict(card.get("settings", {}))
    if num_threads is not None:
        settings["num_threads"] = num_threads
    if progress is not None:
        settings["progress"] = progress
    card = {**card, "settings": settings}
    if num_threads:
        import torch

        torch.set_num_threads(num_threads)
    return cls.load(model_dir, card), card


def model_fingerprint(model_dir: str | os.PathLike[str]) -> str:
    """SHA-256 over the saved model's files (relative names and bytes)."""
    digest = hashlib.sha256()
    root = Path(model_dir)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# -- the engines --------------------------------------------------------------------------------


def engine_path(directory: str | os.PathLike[str], engine: str) -> Path:
    """Where ``engine``'s graph lives under a model folder."""
    if engine not in ENGINE_FILES:
        raise EngineError(f"engine {engine!r} has no ONNX graph (choose one of {', '.join(ENGINE_FILES)})")
    return Path(directory) / ENGINE_DIR / ENGINE_FILES[engine]


def engines_problem(directory: str | os.PathLike[str]) -> str | None:
    """Why ``directory/onnx`` cannot be used (missing files, an older export format), or None."""
    folder = Path(directory) / ENGINE_DIR
    if not folder.is_dir():
        return f"no ONNX engines ({folder} is missing)"
    missing = [name for name in (*ENGINE_FILES.values(), EXPORT_INFO) if not (folder / name).is_file()]
    if missing:
        return f"ONNX engines incomplete ({', '.join(missing)} missing in {folder})"
    try:
        fmt = json.loads((folder / EXPORT_INFO).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        return f"{folder / EXPORT_INFO} is unreadable"
    if fmt != EXPORT_FORMAT:
        return f"ONNX engines in export format {fmt!r}, this secmine runs format {EXPORT_FORMAT}"
    return None


def has_engines(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory/onnx`` holds both graphs in the current export format."""
    return engines_problem(directory) is None


def require_engines(directory: str | os.PathLike[str],
                    model_dir: str | os.PathLike[str] | None = None) -> Path:
    """``directory`` when its engines are usable, else :class:`EngineError` in one line saying to run
    ``secmine export --model-dir`` (for ``model_dir``, the saved model, when the engines live elsewhere)."""
    problem = engines_problem(directory)
    if problem is not None:
        target = model_dir if model_dir is not None else directory
        elsewhere = model_dir is not None and Path(model_dir) != Path(directory)
        extra = f" --output-dir {directory}" if elsewhere else ""
        raise EngineError(f"{target}: {problem}; run `secmine export --model-dir {target}{extra}` to write "
                          "them")
    return Path(directory)
