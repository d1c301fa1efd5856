"""The saved-model format: the model card (write, read, validate), skops files without pickle
(round trip, same bytes, tampered files refused), old joblib files, and the module structure."""

from __future__ import annotations

import ast
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from secmine.detect import savedmodel
from secmine.detect.models import ModelError, ModelSettings, get_family
from secmine.detect.models import skops_io
from secmine.detect.train import save_model

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def data(fixtures_dir: Path) -> pd.DataFrame:
    return pd.read_csv(fixtures_dir / "detect" / "labelled.csv")


def _card(model: object) -> dict:
    return {"family": model.family, "params": model.params, "settings": model.settings.to_dict(),
            "threshold": 0.5, "text": {"max_chars": 4000}}


def _fit(family: str, data: pd.DataFrame, seed: int = 0) -> object:
    return get_family(family)(None, ModelSettings(seed=seed)).fit(data["text"].tolist(), data["label"].to_numpy())


# -- the model card -----------------------------------------------------------------------------


def test_card_is_stamped_read_back_and_legacy_cards_still_read(tmp_path: Path) -> None:
    card = {"family": "keyword", "params": {"keywords": ["cve"], "word_boundary": True}, "threshold": 0.5}
    path = savedmodel.write_card(tmp_path, card)
    assert path == tmp_path / savedmodel.MODEL_CARD
    written = json.loads(path.read_text())
    assert written["format"] == savedmodel.CARD_FORMAT and savedmodel.read_card(tmp_path) == written
    del written["format"]  # a card written before the field existed
    path.write_text(json.dumps(written))
    assert savedmodel.read_card(tmp_path)["family"] == "keyword"
    model, loaded = savedmodel.load_model(tmp_path)
    assert model.predict_proba(["a CVE here", "a typo"]).tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"family": None}, "family", "is None, not one of keyword"),
        ({"family": "bert-large"}, "family", "is 'bert-large', not one of"),
        ({"threshold": "half"}, "threshold", "must be a number from 0 to 1"),
        ({"threshold": 1.5}, "threshold", "must be a number from 0 to 1"),
        ({"format": 99}, "format", "is 99, newer than this secmine reads"),
        ({"format": "one"}, "format", "must be a positive integer"),
        ({"params": []}, "params", "must be an object"),
        ({"text": {"max_chars": -3}}, "text.max_chars", "must be a positive integer or null"),
        ({"family": "transformer", "params": {"backbone": "minilm"}}, "params.max_length", "must be a positive integer"),
        ({"engines": {"recommended": "tensorrt"}}, "engines.recommended", "must be one of torch, onnx, onnx-int8"),
    ],
)
def test_bad_card_fields_are_one_line_naming_file_and_field(tmp_path: Path, change: dict, field: str,
                                                             says: str) -> None:
    card = {"family": "keyword", "params": {}, "threshold": 0.5, **change}
    (tmp_path / savedmodel.MODEL_CARD).write_text(json.dumps(card))
    with pytest.raises(savedmodel.ModelCardError) as caught:
        savedmodel.read_card(tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / savedmodel.MODEL_CARD}: field '{field}' ") and says in message
    assert "secmine" in message  # and says what to do
    if field != "format":  # (write_card stamps its own format)
        with pytest.raises(savedmodel.ModelCardError, match=f"field '{field}'"):
            savedmodel.write_card(tmp_path / "new", card)  # nothing invalid is written either
        assert not (tmp_path / "new" / savedmodel.MODEL_CARD).exists()


def test_unreadable_cards(tmp_path: Path) -> None:
    with pytest.raises(savedmodel.ModelCardError, match=r"no model card; train a model first"):
        savedmodel.read_card(tmp_path)
    (tmp_path / savedmodel.MODEL_CARD).write_text('{"family": "keyword",\n "threshold": }')
    with pytest.raises(savedmodel.ModelCardError, match=r"model_card\.json: not valid JSON \(.*line 2\)"):
        savedmodel.read_card(tmp_path)
    (tmp_path / savedmodel.MODEL_CARD).write_text("[1, 2]")
    with pytest.raises(savedmodel.ModelCardError, match="not a JSON object but list"):
        savedmodel.read_card(tmp_path)


def test_engine_problems_name_the_folder_and_the_export_command(tmp_path: Path) -> None:
    assert "is missing" in savedmodel.engines_problem(tmp_path)
    onnx = tmp_path / savedmodel.ENGINE_DIR
    onnx.mkdir()
    (onnx / "model.onnx").write_bytes(b"x")
    assert "model.int8.onnx, export.json missing" in savedmodel.engines_problem(tmp_path)
    (onnx / "model.int8.onnx").write_bytes(b"x")
    (onnx / "export.json").write_text(json.dumps({"format": 2}))
    with pytest.raises(savedmodel.EngineError) as caught:
        savedmodel.require_engines(tmp_path)
    assert str(caught.value) == (f"{tmp_path}: ONNX engines in export format 2, this secmine runs format "
                                 f"{savedmodel.EXPORT_FORMAT}; run `secmine export --model-dir {tmp_path}` to write them")
    (onnx / "export.json").write_text(json.dumps({"format": savedmodel.EXPORT_FORMAT}))
    assert savedmodel.require_engines(tmp_path) == tmp_path and savedmodel.has_engines(tmp_path)


# -- skops: no pickle ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["tfidf_logreg", "tfidf_svm"])
def test_sklearn_family_round_trips_with_the_same_bytes(family: str, data: pd.DataFrame, tmp_path: Path) -> None:
    first, second = _fit(family, data), _fit(family, data)
    texts = data["text"].tolist()
    a = save_model(first, tmp_path / "a", _card(first), log=lambda _: None)
    b = save_model(second, tmp_path / "b", _card(second), log=lambda _: None)
    assert sorted(p.name for p in a.iterdir()) == ["model_card.json", "pipeline.skops"]
    for name in ("model_card.json", "pipeline.skops"):  # two fits, two processes' worth of ids: same bytes
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    loaded, card = savedmodel.load_model(a)
    assert card["family"] == family
    assert np.array_equal(loaded.predict_proba(texts), first.predict_proba(texts))
    with zipfile.ZipFile(a / "pipeline.skops") as archive:  # a zip of JSON and .npy arrays, dated 1980
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert all(name == "schema.json" or name.endswith(".npy") for name in archive.namelist())
    assert set(skops_io.schema_types(a / "pipeline.skops")) <= skops_io.TRUSTED_TYPES


def _rewrite_schema(path: Path, edit: object) -> None:
    with zipfile.ZipFile(path) as source:
        entries = {name: source.read(name) for name in source.namelist()}
    schema = json.loads(entries["schema.json"])
    edit(schema)
    entries["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name, content in entries.items():
            target.writestr(name, content)
    path.write_bytes(buffer.getvalue())


def test_tampered_skops_files_are_refused_before_loading(data: pd.DataFrame, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = _fit("tfidf_logreg", data)
    saved = save_model(model, tmp_path / "model", _card(model), log=lambda _: None)
    path = saved / "pipeline.skops"
    original = path.read_bytes()

    def swap_class(schema: dict) -> None:  # the classifier step becomes a process launcher
        step = schema["content"]["content"]["steps"]["content"][1]["content"][1]
        step["__module__"], step["__class__"] = "subprocess", "Popen"

    _rewrite_schema(path, swap_class)
    loads: list[Path] = []
    monkeypatch.setattr(sio, "load", lambda *a, **k: loads.append(a[0]))  # must never be reached
    with pytest.raises(skops_io.UntrustedModelError) as caught:
        savedmodel.load_model(saved)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: refusing to load")
    assert "subprocess.Popen" in message and not loads
    # a genuine skops dump of something that runs code (a function transformer calling eval)
    monkeypatch.undo()
    path.write_bytes(sio.dumps(Pipeline([("f", FunctionTransformer(func=eval))])))
    with pytest.raises(skops_io.UntrustedModelError, match=r"FunctionTransformer"):
        savedmodel.load_model(saved)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelError, match=r"pipeline\.skops: not a skops file"):
        savedmodel.load_model(saved)
    path.write_bytes(original)
    assert savedmodel.load_model(saved)[1]["family"] == "tfidf_logreg"


def test_pickled_models_of_earlier_versions_are_not_loaded(data: pd.DataFrame, tmp_path: Path) -> None:
    model = _fit("tfidf_svm", data)
    saved = save_model(model, tmp_path / "model", _card(model), log=lambda _: None)
    (saved / "pipeline.skops").rename(saved / "pipeline.joblib")
    with pytest.raises(ModelError, match=r"pipeline\.joblib: a pickled \(joblib\) pipeline, which secmine no longer "
                                         r"loads; retrain the model \(secmine train\)"):
        savedmodel.load_model(saved)


# -- structure ----------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_pickle_and_no_import_circle() -> None:
    banned = {"pickle", "joblib", "cloudpickle", "dill", "cPickle"}
    for path in sorted(SRC.rglob("*.py")):
        used = {name.split(".")[0] for name in _imports(path)}
        assert not used & banned, f"{path} imports {sorted(used & banned)}"
        assert "torch.load(" not in path.read_text(encoding="utf-8"), path
    detect = SRC / "secmine" / "detect"
    engine, predict, train = (_imports(detect / f"{name}.py") for name in ("engine", "predict", "train"))
    assert "secmine.detect.predict" not in engine and "secmine.detect.train" not in engine
    assert "secmine.detect.train" not in predict and "secmine.detect.predict" not in train
    assert {"secmine.detect.savedmodel"} <= engine & predict & train
    assert not _imports(detect / "savedmodel.py") & {"secmine.detect.engine", "secmine.detect.predict",
                                                     "secmine.detect.train"}
    assert not (detect / "tiny.py").exists() and (SRC / "secmine_testing" / "tiny_models.py").is_file()
