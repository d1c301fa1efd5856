"""Same inputs and params, same bytes: training, ONNX export and engine inference, each done twice --
once here and once in a fresh process with another hash seed and another torch thread count -- on a
tiny model.  These cover the slow stages that `make verify --fast` does not rerun; a difference is
reported part by part (secmine.detect.graphdiff), so a failure says what moved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from secmine.detect import engine as eng
from secmine.detect.graphdiff import describe_differences, diff_graphs, diff_model_dirs
from secmine.detect.models import ModelSettings, get_family
from secmine.detect.predict import classify_file
from secmine.detect.train import save_model

SRC = Path(__file__).resolve().parents[1] / "src"
SETTINGS = {"seed": 3, "num_threads": 1, "max_length": 48, "epochs": 4, "batch_size": 8, "learning_rate": 5e-3,
            "eval_batch_size": 4, "max_tokens_per_batch": 96, "llm_base_url": ""}
TEXTS = [
    "Remote code execution via pickle load in the checkpoint loader",
    "CVE in the loader " * 30,
    "typo in docs",
    "The tokenizer crashes on empty input and the server leaks the API key in its logs.",
    "Bump transformers to fix a dependency issue",
]


def _fresh_process(code: str, *args: str, threads: int = 1) -> None:
    """Run ``code`` in a new interpreter with another hash seed and torch thread count."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "PYTHONHASHSEED": "4242", "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    from secmine_testing.tiny_models import build_tiny_transformer

    texts = pd.read_csv(fixtures_dir / "detect" / "labelled.csv")["text"].tolist()
    return build_tiny_transformer(tmp_path_factory.mktemp("det") / "backbone", texts, architecture="bert", layers=2)


TRAIN = """
import json, sys
from pathlib import Path


def run(backbone, data, out, settings):
    from secmine.detect.labelled import read_labelled_file
    from secmine.detect.models import ModelSettings
    from secmine.detect.train import train_labelled

    out = Path(out)
    train_labelled(read_labelled_file(data), model_dir=out / "model",
                   settings=ModelSettings(backbone=str(backbone), **json.loads(settings)),
                   families="transformer", test_size=0.25, n_folds=3, n_trials=1, n_boot=100,
                   tables_dir=out / "tables", metrics_path=out / "train.json", log=lambda _: None)


if __name__ == "__main__":
    run(*sys.argv[1:])
"""


def test_training_twice_writes_the_same_model_bytes(backbone: Path, fixtures_dir: Path, tmp_path: Path) -> None:
    import torch

    data = fixtures_dir / "detect" / "labelled.csv"
    settings = json.dumps(SETTINGS)
    torch.set_num_threads(2)  # the caller's setting must not matter: training fixes its own
    namespace: dict[str, object] = {"__name__": "here"}
    exec(compile(TRAIN, "train", "exec"), namespace)  # noqa: S102 - the same code as the fresh process runs
    namespace["run"](backbone, data, tmp_path / "a", settings)  # type: ignore[operator]
    _fresh_process(TRAIN, str(backbone), str(data), str(tmp_path / "b"), settings, threads=3)
    card = json.loads((tmp_path / "a" / "model" / "model_card.json").read_text())
    assert card["family"] == "transformer" and eng.has_engines(tmp_path / "a" / "model")
    report = diff_model_dirs(tmp_path / "a" / "model", tmp_path / "b" / "model")
    assert not report, "training twice gave different models:\n" + describe_differences(report)
    for name in ("train.json", "tables/comparison.csv", "tables/engines.csv", "tables/trials.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


EXPORT = """
import sys
from secmine.detect.engine import export_model_dir
export_model_dir(sys.argv[1], output_dir=sys.argv[2])
"""


@pytest.fixture(scope="module")
def saved(backbone: Path, fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = pd.read_csv(fixtures_dir / "detect" / "labelled.csv")
    model = get_family("transformer")(None, ModelSettings(backbone=str(backbone), **SETTINGS))
    model.fit(data["text"].tolist(), data["label"].to_numpy())
    card = {"family": "transformer", "params": model.params, "settings": model.settings.to_dict(), "threshold": 0.5,
            "text": {"max_chars": 4000}}
    return save_model(model, tmp_path_factory.mktemp("saved") / "model", card, log=lambda _: None)


def test_export_twice_gives_the_same_graphs(saved: Path, tmp_path: Path) -> None:
    import torch

    torch.set_num_threads(2)
    eng.export_model_dir(saved, output_dir=tmp_path / "here")
    _fresh_process(EXPORT, str(saved), str(tmp_path / "there"), threads=3)
    for folder in (tmp_path / "here", tmp_path / "there"):
        report = diff_model_dirs(saved / eng.ENGINE_DIR, folder / eng.ENGINE_DIR)
        assert not report, f"exporting again gave different engines ({folder.name}):\n" + describe_differences(report)


def test_engines_give_the_same_bytes_whatever_the_threads(saved: Path, fixtures_dir: Path, tmp_path: Path) -> None:
    card = json.loads((saved / "model_card.json").read_text())
    texts = TEXTS * 3 + pd.read_csv(fixtures_dir / "detect" / "labelled.csv")["text"].tolist()
    for engine in ("onnx", "onnx-int8"):
        runs = [eng.OnnxClassifier.from_model_dir(saved, card, engine, num_threads=n).predict_logits(texts)
                for n in (1, 2, 1)]
        assert runs[0].tobytes() == runs[1].tobytes() == runs[2].tobytes(), engine
    source = fixtures_dir / "detect" / "threads.jsonl"
    for engine in ("onnx", "onnx-int8"):
        outputs = [classify_file(saved, source, tmp_path / f"{engine}-{n}.csv", engine=engine, num_threads=n,
                                 progress=False) for n in (1, 2)]
        assert len(outputs[0]) == 24
        assert (tmp_path / f"{engine}-1.csv").read_bytes() == (tmp_path / f"{engine}-2.csv").read_bytes(), engine


def test_exact_engine_gives_each_text_the_same_logits_whatever_its_batch(saved: Path) -> None:
    """The fp32 graph: a text's logits do not depend on the texts batched with it (what lets the
    classify stage's results not depend on the batching plan); int8 quantises activations per batch."""
    card = json.loads((saved / "model_card.json").read_text())
    same_length = ["alpha beta gamma delta", "gamma delta alpha beta", "beta alpha delta gamma", "delta gamma beta alpha"]
    exact = eng.OnnxClassifier.from_model_dir(saved, card, "onnx", num_threads=1)
    together = exact.predict_logits(same_length)
    alone = np.concatenate([exact.predict_logits([text]) for text in same_length])
    assert together.tobytes() == alone.tobytes()


def test_graph_diff_names_the_part_that_moved(saved: Path, tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    source = saved / eng.ENGINE_DIR / eng.ENGINE_FILES["onnx-int8"]
    assert diff_graphs(source, source) == []
    graph = onnx.load(str(source))
    graph.producer_version = "0.0-other"
    scale = next(t for t in graph.graph.initializer if t.name.endswith("_scale"))
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) * np.float32(1.001), scale.name))
    graph.graph.node[3].name = "renamed_node"
    changed = tmp_path / "changed.onnx"
    onnx.save(graph, str(changed))
    lines = diff_graphs(source, changed)
    assert any(line.startswith("metadata producer_version") for line in lines)
    assert any(line.startswith("quantisation scales/zero points: 1 differ") for line in lines)
    assert any(line.startswith("node names/edges: 1 node(s) differ, first #3") for line in lines)
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    (copy / eng.ENGINE_DIR / "export.json").write_text(
        json.dumps({**json.loads((saved / eng.ENGINE_DIR / "export.json").read_text()), "exported_at": 1}))
    report = diff_model_dirs(saved, copy)
    assert list(report) == ["onnx/export.json"] and report["onnx/export.json"] == ["exported_at: '(absent)' -> 1"]


def test_int8_products_fit_sixteen_bits_on_every_cpu(saved: Path) -> None:
    """CPUs without VNNI add pairs of uint8 x int8 products in int16 (and saturate); with weights in
    [-64, 64] no pair can exceed 255 * 64 * 2 = 32640, so every CPU computes the same integers."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(saved / eng.ENGINE_DIR / eng.ENGINE_FILES["onnx-int8"]))
    weights = [numpy_helper.to_array(t) for t in graph.graph.initializer if t.name.endswith("_quantized")]
    assert weights and all(w.dtype == np.int8 for w in weights)
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64
    assert 255 * 64 * 2 <= np.iinfo(np.int16).max
    activations = {n.output[0] for n in graph.graph.node if n.op_type == "DynamicQuantizeLinear"}
    assert activations  # activations quantised per batch, as uint8 (DynamicQuantizeLinear's only output type)
