"""Where inference runs: the ``device`` parameter of the classify and topics stages.

``device`` is ``cpu`` (the default in ``params.yaml``: the committed tables are CPU results),
``cuda`` (an error when no GPU is visible) or ``auto`` (``cuda`` when
``torch.cuda.is_available()``, else ``cpu``; what ``params-gpu.yaml`` sets).  On a GPU the ONNX
engines run on ONNX Runtime's CUDA execution provider when it is installed (the
``onnxruntime-gpu`` wheel); otherwise the engine becomes PyTorch on the GPU, since running the CPU
provider next to an idle GPU would be the slowest choice.  See docs/gpu.md.
"""

from __future__ import annotations

from typing import Literal

from secmine.errors import SecmineError

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


class DeviceError(SecmineError, ValueError):
    """A device was asked for that this machine does not have."""


def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA GPU (``False`` without torch)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def onnx_providers() -> list[str]:
    """ONNX Runtime's available execution providers (empty without onnxruntime)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def resolve_device(requested: str) -> str:
    """``cpu`` or ``cuda`` for the ``device`` parameter (``auto``: ``cuda`` when PyTorch sees a GPU)."""
    if requested not in DEVICES:
        raise DeviceError(f"device {requested!r}: choose one of {', '.join(DEVICES)}")
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    if requested == "cuda" and not cuda_available():
        raise DeviceError("device 'cuda': PyTorch sees no CUDA GPU on this machine",
                          hint="set device: auto (falls back to the CPU) or cpu, or install a CUDA build of torch")
    return requested


def engine_for_device(engine: str, device: str) -> str:
    """The engine to run on ``device``: on ``cuda`` an ONNX engine runs as the fp32 graph on ONNX
    Runtime's CUDA provider, and without that provider PyTorch runs the model on the GPU; on ``cpu``
    the engine is unchanged."""
    if device != "cuda" or engine not in ("onnx", "onnx-int8"):
        return engine
    if CUDA_PROVIDER not in onnx_providers():
        return "torch"
    return "onnx"  # int8 matrix products have no CUDA kernels (they would run on the CPU, node by node)


def session_providers(device: str) -> list[str]:
    """ONNX Runtime providers for a session on ``device`` (CUDA first, the CPU as its fallback)."""
    if device == "cuda" and CUDA_PROVIDER in onnx_providers():
        return [CUDA_PROVIDER, CPU_PROVIDER]
    return [CPU_PROVIDER]
