"""The `device` parameter of classify and topics: auto/cpu/cuda chosen without needing a GPU here."""

from __future__ import annotations

import pytest

from secmine import device


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch):
    """Pretend PyTorch sees a GPU (and say which ONNX Runtime providers exist)."""

    def set_state(cuda: bool, providers: list[str]) -> None:
        monkeypatch.setattr(device, "cuda_available", lambda: cuda)
        monkeypatch.setattr(device, "onnx_providers", lambda: list(providers))

    return set_state


def test_auto_is_cuda_only_when_torch_sees_a_gpu(gpu) -> None:
    gpu(True, ["CPUExecutionProvider"])
    assert device.resolve_device("auto") == "cuda" and device.resolve_device("cuda") == "cuda"
    assert device.resolve_device("cpu") == "cpu"
    gpu(False, ["CPUExecutionProvider"])
    assert device.resolve_device("auto") == "cpu"
    with pytest.raises(device.DeviceError, match="device 'cuda': PyTorch sees no CUDA GPU"):
        device.resolve_device("cuda")
    with pytest.raises(device.DeviceError, match="choose one of auto, cpu, cuda"):
        device.resolve_device("gpu")


def test_engine_and_providers_follow_the_device(gpu) -> None:
    gpu(True, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert device.engine_for_device("onnx", "cuda") == "onnx"
    assert device.engine_for_device("onnx-int8", "cuda") == "onnx"  # no int8 kernels on CUDA
    assert device.engine_for_device("torch", "cuda") == "torch"
    assert device.session_providers("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert device.session_providers("cpu") == ["CPUExecutionProvider"]
    for engine in ("onnx", "onnx-int8", "torch"):
        assert device.engine_for_device(engine, "cpu") == engine  # the CPU default is unchanged
    gpu(True, ["CPUExecutionProvider"])  # the CPU-only onnxruntime wheel: PyTorch on the GPU instead
    assert device.engine_for_device("onnx", "cuda") == "torch"
    assert device.session_providers("cuda") == ["CPUExecutionProvider"]


def test_classifier_loads_on_the_chosen_device(gpu, fixtures_dir, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a (pretended) GPU without the CUDA provider, an ONNX engine request becomes PyTorch moved
    to cuda; the ONNX session asks for the CUDA provider when it exists."""
    import pandas as pd

    from secmine.detect import engine as engine_module
    from secmine.detect.models import ModelSettings, get_family
    from secmine.detect.predict import load_classifier
    from secmine.detect.train import save_model
    from secmine_testing.tiny_models import build_tiny_transformer

    data = pd.read_csv(fixtures_dir / "detect" / "labelled.csv")
    backbone = build_tiny_transformer(tmp_path / "backbone", data["text"].tolist())
    settings = ModelSettings(seed=0, num_threads=1, backbone=str(backbone), max_length=32, epochs=1, batch_size=8)
    model = get_family("transformer")(None, settings).fit(data["text"].tolist(), data["label"].to_numpy())
    texts = data["text"].tolist()
    save_model(model, tmp_path / "model", {"family": model.family, "params": model.params,
                                           "settings": settings.to_dict(), "threshold": 0.5,
                                           "text": {"max_chars": 4000}},
               validation=(texts, data["label"].to_numpy(), model.predict_proba(texts)), log=lambda _: None)
    moved: list[str] = []

    class FakeModule:
        def to(self, where):
            moved.append(str(where))
            return self

    from secmine.detect.models import transformer

    real_load = transformer.TransformerModel.load

    def load(cls, model_dir, card):
        loaded = real_load.__func__(cls, model_dir, card)
        loaded.model = FakeModule()
        return loaded

    monkeypatch.setattr(transformer.TransformerModel, "load", classmethod(load))
    gpu(True, ["CPUExecutionProvider"])
    _, _, resolved = load_classifier(tmp_path / "model", engine="onnx", device="auto")
    assert resolved == "torch" and moved == ["cuda"]
    gpu(False, ["CPUExecutionProvider"])
    classifier, _, resolved = load_classifier(tmp_path / "model", engine="onnx", device="auto")
    assert resolved == "onnx" and classifier.device == "cpu" and classifier.workers >= 1
    seen: list[list[str]] = []
    monkeypatch.setattr(engine_module, "_session", lambda path, threads, where="cpu": seen.append(
        device.session_providers(where)) or object())
    gpu(True, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    classifier, _, resolved = load_classifier(tmp_path / "model", engine="onnx-int8", device="cuda",
                                              max_batch_size=256, max_tokens=32768)
    classifier._loading.result()
    assert resolved == "onnx" and classifier.workers == 1 and classifier.max_tokens == 32768
    assert seen == [["CUDAExecutionProvider", "CPUExecutionProvider"]]


def test_stage_params_default_to_the_cpu_and_params_gpu_overrides_them() -> None:
    from secmine import config
    from secmine.stages import classify, topics
    from secmine.stages.contract import stage_block

    assert classify.Params.load().device == "cpu" and topics.Params.load().device == "cpu"
    gpu_file = config.PROJECT_ROOT / "params-gpu.yaml"
    on_gpu = classify.Params.load().replace(**stage_block("classify", gpu_file))
    assert on_gpu.device == "auto" and on_gpu.max_tokens > classify.Params.load().max_tokens
    assert topics.Params.load().replace(**stage_block("topics", gpu_file)).device == "auto"
