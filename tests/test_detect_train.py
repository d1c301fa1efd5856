"""The comparison: shared folds, Optuna budget, tables/figure/metrics, best model saved, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from secmine.cli import app
from secmine.detect.labelled import read_labelled_file
from secmine.detect.models import ModelSettings
from secmine.detect.predict import load_model
from secmine.detect.train import train_labelled


@pytest.fixture(scope="module")
def labelled_csv(fixtures_dir: Path) -> Path:
    return fixtures_dir / "detect" / "labelled.csv"


def _run(labelled_csv: Path, out: Path, families: str, settings: ModelSettings) -> object:
    return train_labelled(
        read_labelled_file(labelled_csv), model_dir=out / "model", settings=settings, families=families,
        test_size=0.25, n_folds=3, n_trials=3, transformer_trials=1, n_boot=200,
        tables_dir=out / "tables", figures_dir=out / "figures", metrics_path=out / "train.json",
        labelled_out=out / "labelled.parquet", predictions_out=out / "predictions.parquet", log=lambda _: None,
    )


def test_comparison_is_fair_reported_saved_and_deterministic(labelled_csv: Path, tmp_path: Path) -> None:
    from secmine_testing.tiny_models import build_tiny_transformer

    tiny = build_tiny_transformer(tmp_path / "tiny", pd.read_csv(labelled_csv)["text"].tolist())
    settings = ModelSettings(seed=5, num_threads=1, backbone=str(tiny), max_length=64, epochs=4, batch_size=8,
                             learning_rate=5e-3, warmup_ratio=0.0, llm_base_url="")
    families = "keyword,tfidf_logreg,tfidf_svm,transformer,llm_zero_shot"
    first = _run(labelled_csv, tmp_path / "a", families, settings)
    assert list(first.results) == ["keyword", "tfidf_logreg", "tfidf_svm", "transformer"]
    assert any("llm_zero_shot" in n for n in first.notes)  # skipped without an endpoint, and said so
    assert len(first.results["tfidf_logreg"].trials) == 3 and len(first.results["transformer"].trials) == 1
    # every family was scored on the same folds and the same test rows
    predictions = pd.read_parquet(tmp_path / "a" / "predictions.parquet")
    per_family = predictions.groupby("family")["uid"].apply(tuple)
    assert per_family.nunique() == 1
    labelled = pd.read_parquet(tmp_path / "a" / "labelled.parquet")
    assert (labelled.groupby("group")["fold"].nunique() == 1).all()
    table = pd.read_csv(tmp_path / "a" / "tables" / "comparison.csv")
    assert table["selected"].sum() == 1
    best = table.loc[table["cv_mcc"].idxmax(), "family"]
    assert table.loc[table["selected"], "family"].item() == best == first.best.family
    for column in ("test_mcc", "test_f1", "test_precision", "test_recall", "test_accuracy"):
        assert (table[f"{column}_lo"] <= table[column]).all() and (table[column] <= table[f"{column}_hi"]).all()
    for name in ("comparison.md", "comparison.tex", "test_by_source.csv", "trials.csv", "labelled_set.csv"):
        assert (tmp_path / "a" / "tables" / name).is_file()
    assert (tmp_path / "a" / "figures" / "comparison.png").is_file()
    metrics = json.loads((tmp_path / "a" / "train.json").read_text())
    assert metrics["selected"] == best and "mcc_lo" in metrics["test"]
    model, card = load_model(tmp_path / "a" / "model")
    assert card["family"] == best and card["threshold"] == 0.5
    assert card["metrics"]["test"]["mcc"] == pytest.approx(table.loc[table["selected"], "test_mcc"].item())
    assert model.predict_proba(["CVE in the loader"]).shape == (1,)
    # `secmine evaluate` on the stage's labelled Parquet, test split: the model card's test metrics
    result = CliRunner().invoke(app, ["evaluate", "--model-dir", str(tmp_path / "a" / "model"), "--data",
                                      str(tmp_path / "a" / "labelled.parquet"), "--split", "test", "--bootstrap",
                                      "200", "--seed", "5", "--output", str(tmp_path / "eval.json")])
    assert result.exit_code == 0, result.output
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    for name in ("mcc", "mcc_lo", "mcc_hi", "f1", "n"):
        assert evaluation[name] == pytest.approx(card["metrics"]["test"][name])
    # same inputs and params: byte-identical tables and metrics
    _run(labelled_csv, tmp_path / "b", families, settings)
    for name in sorted(p.name for p in (tmp_path / "a" / "tables").iterdir()):
        assert (tmp_path / "a" / "tables" / name).read_bytes() == (tmp_path / "b" / "tables" / name).read_bytes(), name
    assert (tmp_path / "a" / "train.json").read_bytes() == (tmp_path / "b" / "train.json").read_bytes()


def test_train_and_evaluate_commands(labelled_csv: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--data", str(labelled_csv), "--model-dir", str(tmp_path / "m"),
                                 "--families", "keyword,tfidf_svm", "--n-folds", "3", "--n-trials", "2",
                                 "--reports-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "TF-IDF + linear SVM" in result.output
    assert (tmp_path / "m" / "model_card.json").is_file() and (tmp_path / "r" / "train.json").is_file()
    result = runner.invoke(app, ["evaluate", "--model-dir", str(tmp_path / "m"), "--data", str(labelled_csv),
                                 "--output", str(tmp_path / "eval.json")])
    assert result.exit_code == 0, result.output
    assert "mcc" in result.output
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert evaluation["n"] == 48 and -1 <= evaluation["mcc_lo"] <= evaluation["mcc"] <= evaluation["mcc_hi"] <= 1
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,2\n")
    result = runner.invoke(app, ["evaluate", "--model-dir", str(tmp_path / "m"), "--data", str(bad)])
    assert result.exit_code != 0 and "row 2, field 'label'" in str(result.exception)
