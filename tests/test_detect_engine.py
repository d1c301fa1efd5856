"""ONNX Runtime engines of a saved transformer: export parity, int8, choice, validation, classify, CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from secmine.cli import app
from secmine.detect import engine as eng
from secmine.detect.models import ModelSettings, get_family
from secmine.detect.predict import classify_file, load_classifier
from secmine.detect.train import save_model

VARIED = [
    "Remote code execution via pickle load",  # short
    "CVE in the loader " * 30,  # truncated at max_length
    "typo in docs",
    "The tokenizer crashes on empty input and the server leaks the API key in its logs.",
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def data(fixtures_dir: Path) -> pd.DataFrame:
    return pd.read_csv(fixtures_dir / "detect" / "labelled.csv")


def _settings(backbone: Path) -> ModelSettings:
    return ModelSettings(seed=0, num_threads=1, backbone=str(backbone), max_length=48, epochs=2, batch_size=8,
                         learning_rate=5e-3, eval_batch_size=3, max_tokens_per_batch=96)


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            data: pd.DataFrame) -> tuple[str, object]:
    """A tiny classifier of each architecture, fine-tuned on the fixture texts."""
    from secmine_testing.tiny_models import build_tiny_transformer

    root = tmp_path_factory.mktemp(f"engine-{request.param}")
    backbone = build_tiny_transformer(root / "backbone", data["text"].tolist(), architecture=request.param,
                                      layers=2, dim=32, heads=2)
    model = get_family("transformer")(None, _settings(backbone)).fit(data["text"].tolist(), data["label"].to_numpy())
    return request.param, model


def _card(model: object) -> dict:
    return {"family": "transformer", "params": model.params, "settings": model.settings.to_dict(),
            "threshold": 0.5, "text": {"max_chars": 4000}}


def test_export_reproduces_pytorch_and_is_deterministic(trained: tuple[str, object], data: pd.DataFrame,
                                                        tmp_path: Path) -> None:
    architecture, model = trained
    info = eng.export_engines(model.model, model.tokenizer, tmp_path / "a", max_length=48)
    # BERT (the MiniLM family) gets the [CLS]-only last layer; other architectures are exported whole
    assert info["graph"] == ("cls-only" if architecture == "bert" else "full")
    assert info["parity_max_abs_logit_diff"] <= eng.PARITY_TOLERANCE
    texts = data["text"].tolist() + VARIED
    reference = model.predict_logits(texts)
    fp32 = eng.OnnxClassifier(eng.engine_path(tmp_path / "a", "onnx"), model.tokenizer, engine="onnx", max_length=48,
                              num_threads=1, max_batch_size=3, max_tokens=96)
    shapes: list[tuple[int, ...]] = []
    run = fp32.session.run

    def recorded(names, feed):  # type: ignore[no-untyped-def]
        shapes.append(feed["input_ids"].shape)
        return run(names, feed)

    fp32.session.run = recorded  # type: ignore[method-assign]
    # no padding, no mask: each batch holds texts of one length, and the logits are PyTorch's (padded batches)
    assert [i.name for i in fp32.session.get_inputs()] == ["input_ids"]
    assert np.abs(fp32.predict_logits(texts) - reference).max() < 1e-4
    lengths = sorted((len(x) for x in model.tokenizer(texts, truncation=True, max_length=48)["input_ids"]),
                     reverse=True)
    assert sum(rows for rows, _ in shapes) == len(texts)
    assert [length for rows, length in shapes for _ in range(rows)] == lengths  # longest first, one length a batch
    assert all(rows <= 3 and rows * length <= max(96, length) for rows, length in shapes)
    # several batches at once (one thread each): the same logits, bit for bit, as one at a time
    for engine in ("onnx", "onnx-int8"):
        one, two = (eng.OnnxClassifier(eng.engine_path(tmp_path / "a", engine), model.tokenizer, engine=engine,
                                       max_length=48, num_threads=n, max_batch_size=3, max_tokens=96) for n in (1, 2))
        assert two.workers == 2 and np.array_equal(one.predict_logits(texts), two.predict_logits(texts))
    int8 = eng.OnnxClassifier(eng.engine_path(tmp_path / "a", "onnx-int8"), model.tokenizer, engine="onnx-int8",
                              max_length=48, num_threads=1)
    proba = int8.predict_proba(texts)
    assert proba.shape == (len(texts),) and np.all((proba >= 0) & (proba <= 1))
    assert np.abs(proba - fp32.predict_proba(texts)).max() < 0.25  # approximate, not arbitrary
    # same model, same bytes: the graphs are reproducible DVC outputs
    eng.export_engines(model.model, model.tokenizer, tmp_path / "b", max_length=48)
    assert sorted(p.name for p in (tmp_path / "a" / "onnx").iterdir()) == ["export.json", "model.int8.onnx", "model.onnx"]
    for name in ("model.onnx", "model.int8.onnx", "export.json"):
        assert _digest(tmp_path / "a" / "onnx" / name) == _digest(tmp_path / "b" / "onnx" / name), name


def test_unusable_graphs_are_named(trained: tuple[str, object], tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    _, model = trained
    with pytest.raises(eng.EngineError, match="no such ONNX graph"):
        eng.OnnxClassifier(tmp_path / "missing.onnx", model.tokenizer, engine="onnx", max_length=48)
    with pytest.raises(eng.EngineError, match="is not an ONNX engine"):
        eng.OnnxClassifier(tmp_path / "missing.onnx", model.tokenizer, engine="torch", max_length=48)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf")
    with pytest.raises(eng.EngineError, match=r"broken\.onnx: ONNX Runtime cannot load it"):
        eng.OnnxClassifier(broken, model.tokenizer, engine="onnx", max_length=48).predict_proba(["a text"])
    other = tmp_path / "other.onnx"  # a valid graph whose input is not input_ids
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["logits"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.INT64, ["b", "s"])],
                              [helper.make_tensor_value_info("logits", TensorProto.INT64, ["b", "s"])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), other)
    with pytest.raises(eng.EngineError, match=r"other\.onnx: the graph has no 'input_ids' input \(inputs: \['x'\]"):
        eng.OnnxClassifier(other, model.tokenizer, engine="onnx", max_length=48).predict_proba(["a text"])


def test_cls_only_graph_needs_a_bert_pooler(trained: tuple[str, object]) -> None:
    architecture, model = trained
    assert eng._cls_only_supported(model.model) == (architecture == "bert")


def test_resolve_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    transformer = {"family": "transformer"}
    assert eng.resolve_engine("auto", {"family": "tfidf_logreg"}) == "torch"  # other families run their own code
    assert eng.resolve_engine("onnx-int8", {"family": "keyword"}) == "torch"
    assert eng.resolve_engine("auto", transformer) == "onnx"  # not validated: the exact fp32 graph
    assert eng.resolve_engine("auto", {**transformer, "engines": {"recommended": "onnx-int8"}}) == "onnx-int8"
    assert eng.resolve_engine("auto", {**transformer, "engines": {"recommended": "torch"}}) == "torch"
    assert eng.resolve_engine("auto", {**transformer, "engine_export": {"error": "no graph"}}) == "torch"
    assert eng.resolve_engine("torch", {**transformer, "engines": {"recommended": "onnx-int8"}}) == "torch"
    # exact (the classify stage): auto never picks int8, a forced engine still wins
    assert eng.resolve_engine("auto", {**transformer, "engines": {"recommended": "onnx-int8"}}, exact=True) == "onnx"
    assert eng.resolve_engine("auto", {**transformer, "engines": {"recommended": "torch"}}, exact=True) == "torch"
    assert eng.resolve_engine("onnx-int8", transformer, exact=True) == "onnx-int8"
    with pytest.raises(eng.EngineError, match="choose one of auto, torch, onnx, onnx-int8"):
        eng.resolve_engine("tensorrt", transformer)
    monkeypatch.setattr(eng, "onnxruntime_available", lambda: False)
    assert eng.resolve_engine("auto", {**transformer, "engines": {"recommended": "onnx-int8"}}) == "torch"
    with pytest.raises(eng.EngineError, match="needs onnxruntime"):
        eng.resolve_engine("onnx", transformer)


def test_saving_validates_engines_and_classify_follows(trained: tuple[str, object], data: pd.DataFrame,
                                                       fixtures_dir: Path, tmp_path: Path) -> None:
    _, model = trained
    texts, labels = data["text"].tolist(), data["label"].to_numpy()
    reference = model.predict_proba(texts)
    loose = save_model(model, tmp_path / "loose", _card(model), validation=(texts, labels, reference),
                       engine_tolerance=1.0, log=lambda _: None)
    strict = save_model(model, tmp_path / "strict", _card(model), validation=(texts, labels, reference),
                        engine_tolerance=-1.0, log=lambda _: None)
    loose_card = json.loads((loose / "model_card.json").read_text())
    strict_card = json.loads((strict / "model_card.json").read_text())
    assert eng.has_engines(loose) and eng.has_engines(strict)
    report = loose_card["engines"]
    assert report["validated_on"] == len(texts) and report["recommended"] == "onnx-int8"
    assert report["onnx"]["agreement"] == 1.0 and report["onnx"]["mcc"] == pytest.approx(report["torch"]["mcc"])
    assert strict_card["engines"]["recommended"] == "torch"  # nothing is within a negative tolerance
    assert load_classifier(loose)[2] == "onnx-int8" and load_classifier(strict)[2] == "torch"
    table = eng.engines_table(report)
    assert table["engine"].tolist() == list(eng.ENGINES) and table["recommended"].sum() == 1
    # classify: PyTorch and the fp32 graph give the same probabilities; int8 gives one row per input too
    source = fixtures_dir / "detect" / "threads.jsonl"
    outputs = {}
    for engine in ("torch", "onnx", "onnx-int8", "auto"):
        outputs[engine] = classify_file(loose, source, tmp_path / f"{engine}.csv", engine=engine, progress=False)
    assert np.allclose(outputs["torch"]["probability"], outputs["onnx"]["probability"], atol=1e-5)
    assert (outputs["torch"]["label"] == outputs["onnx"]["label"]).all()
    assert len(outputs["onnx-int8"]) == len(outputs["torch"]) == 24
    assert (tmp_path / "auto.csv").read_bytes() == (tmp_path / "onnx-int8.csv").read_bytes()


def test_model_without_engines_says_to_export_and_writes_nothing_elsewhere(
        trained: tuple[str, object], fixtures_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, model = trained
    saved = save_model(model, tmp_path / "model", _card(model), log=lambda _: None)
    shutil.rmtree(saved / eng.ENGINE_DIR)  # e.g. a model saved before engines existed
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    source = fixtures_dir / "detect" / "threads.jsonl"
    for engine in ("onnx", "onnx-int8"):
        with pytest.raises(eng.EngineError) as caught:
            classify_file(saved, source, tmp_path / "a.csv", engine=engine, progress=False)
        message = str(caught.value)
        assert "\n" not in message and message.startswith(f"{saved}: no ONNX engines")
        assert f"run `secmine export --model-dir {saved}`" in message
    assert not (saved / eng.ENGINE_DIR).exists() and not any(home.rglob("*"))  # nothing exported on the fly
    assert not (tmp_path / "a.csv").exists()
    # engines of an older export format: the same one line, naming the formats
    eng.export_engines(model.model, model.tokenizer, saved, max_length=48)
    info = saved / eng.ENGINE_DIR / eng.EXPORT_INFO
    info.write_text(json.dumps({**json.loads(info.read_text()), "format": 2}))
    with pytest.raises(eng.EngineError, match=rf"export format 2, this secmine runs format {eng.EXPORT_FORMAT}; "
                       rf"run `secmine export --model-dir {saved}` to write them"):
        classify_file(saved, source, tmp_path / "a.csv", engine="onnx", progress=False)
    result = CliRunner().invoke(app, ["export", "--model-dir", str(saved)])
    assert result.exit_code == 0, result.output
    assert eng.has_engines(saved)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for engine in ("onnx", "onnx-int8"):
        classify_file(saved, source, tmp_path / "a.csv", engine=engine, progress=False)
    # classify wrote its output and nothing else: no cache, nothing beside the model or in $HOME
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == sorted({*before, Path("a.csv")})


def test_export_into_a_named_folder(trained: tuple[str, object], fixtures_dir: Path, tmp_path: Path) -> None:
    _, model = trained
    saved = save_model(model, tmp_path / "model", _card(model), log=lambda _: None)
    before = {p.relative_to(saved): p.read_bytes() for p in saved.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["export", "--model-dir", str(saved), "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert eng.has_engines(tmp_path / "out")
    assert {p.relative_to(saved): p.read_bytes() for p in saved.rglob("*") if p.is_file()} == before
    for name in (*eng.ENGINE_FILES.values(), eng.EXPORT_INFO):  # the same bytes as the train stage's export
        assert (tmp_path / "out" / eng.ENGINE_DIR / name).read_bytes() == before[Path(eng.ENGINE_DIR) / name], name


def test_export_command_writes_and_records_engines(trained: tuple[str, object], fixtures_dir: Path,
                                                   tmp_path: Path) -> None:
    _, model = trained
    saved = save_model(model, tmp_path / "model", _card(model), log=lambda _: None)
    shutil.rmtree(saved / eng.ENGINE_DIR)
    result = CliRunner().invoke(app, ["export", "--model-dir", str(saved), "--data",
                                      str(fixtures_dir / "detect" / "labelled.csv"), "--split", "all",
                                      "--num-threads", "1"])
    assert result.exit_code == 0, result.output
    assert eng.has_engines(saved) and "onnx-int8" in result.output
    card = json.loads((saved / "model_card.json").read_text())
    assert card["engines"]["validated_on"] == 48 and card["engines"]["recommended"] in eng.ENGINES


def test_export_command_refuses_other_families(fixtures_dir: Path, data: pd.DataFrame, tmp_path: Path) -> None:
    model = get_family("tfidf_logreg")(None, ModelSettings(seed=0)).fit(data["text"].tolist(), data["label"].to_numpy())
    saved = save_model(model, tmp_path / "model", {"family": model.family, "params": model.params,
                                                   "settings": model.settings.to_dict(), "threshold": 0.5})
    result = CliRunner().invoke(app, ["export", "--model-dir", str(saved)])
    assert result.exit_code == 1 and "only transformers have ONNX engines" in result.output
    assert not (saved / eng.ENGINE_DIR).exists()


def test_train_reports_the_engines_of_a_saved_transformer(data: pd.DataFrame, fixtures_dir: Path,
                                                          tmp_path: Path) -> None:
    from secmine.detect.labelled import read_labelled_file
    from secmine_testing.tiny_models import build_tiny_transformer
    from secmine.detect.train import train_labelled

    backbone = build_tiny_transformer(tmp_path / "tiny", data["text"].tolist(), architecture="bert")
    train_labelled(read_labelled_file(fixtures_dir / "detect" / "labelled.csv"), model_dir=tmp_path / "model", settings=_settings(backbone),
                   families="transformer", test_size=0.25, n_folds=3, n_trials=1, n_boot=100,
                   tables_dir=tmp_path / "tables", metrics_path=tmp_path / "train.json",
                   labelled_out=tmp_path / "labelled.parquet", log=lambda _: None)
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    table = pd.read_csv(tmp_path / "tables" / "engines.csv")
    assert table["engine"].tolist() == list(eng.ENGINES)
    labelled = pd.read_parquet(tmp_path / "labelled.parquet")
    assert card["engines"]["validated_on"] == int((labelled["split"] == "test").sum()) > 0  # the held-out rows
    assert table.loc[table["engine"] == "torch", "test_mcc"].item() == pytest.approx(card["metrics"]["test"]["mcc"],
                                                                                      abs=1e-6)
    metrics = json.loads((tmp_path / "train.json").read_text())
    assert metrics["engines"]["recommended"] == card["engines"]["recommended"]
    assert (tmp_path / "tables" / "engines.md").is_file() and (tmp_path / "tables" / "engines.tex").is_file()


def test_classify_stage_reports_int8_exactness(trained: tuple[str, object], data: pd.DataFrame, fixtures_dir: Path,
                                               tmp_path: Path) -> None:
    from secmine.collect.corpus import write_corpus
    from secmine.detect.stage import run_classify_stage
    from secmine.snapshot import read_snapshot

    _, model = trained
    texts, labels = data["text"].tolist(), data["label"].to_numpy()
    saved = save_model(model, tmp_path / "model", _card(model), validation=(texts, labels, model.predict_proba(texts)),
                       engine_tolerance=1.0, log=lambda _: None)
    corpus = tmp_path / "corpus"
    write_corpus(list(read_snapshot(fixtures_dir / "detect" / "threads.jsonl")), corpus)
    cases = (("auto", 10, False), ("onnx-int8", 10, True), ("auto", 10, True), ("onnx", 10, False), ("auto", 0, False))
    for engine, sample, deterministic in cases:
        metrics = tmp_path / f"{engine}-{sample}-{deterministic}.json"
        run, _ = run_classify_stage(
            model_dir=saved, corpus=corpus, keywords_path=None, output=tmp_path / "classified.parquet",
            checkpoint_dir=None, tables_dir=None, figures_dir=None, metrics_path=metrics, engine=engine,
            exactness_sample=sample, num_threads=1, progress=False, deterministic=deterministic)
        classified = pd.read_parquet(run.output)  # the stage streams: its result holds no rows
        written = json.loads(metrics.read_text())
        if sample and (engine == "onnx-int8" or (engine == "auto" and not deterministic)):
            check = written["engine_check"]
            assert written["engine"] == check["engine"] == "onnx-int8" and check["threads"] == 10
            exact = classify_file(saved, corpus, tmp_path / "exact.csv", engine="onnx", progress=False)
            picked = exact.iloc[np.unique(np.linspace(0, 23, 10).astype(int))]
            ours = classified.set_index("id").loc[picked["id"], "label"].to_numpy()
            assert check["label_agreement"] == pytest.approx(float((ours == picked["label"].to_numpy()).mean()))
            assert check["security_pct_exact"] == pytest.approx(100 * picked["label"].mean())
        else:
            assert "engine_check" not in written  # exact engine, or no sample asked for
            if deterministic:  # the stage's default: auto runs the exact graph although int8 was validated
                assert written["engine"] == "onnx"
