"""The comparison: shared folds, Optuna budget, tables/figure/metrics, best model saved, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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
    best = table.loc[table["selected"], "family"].item()
    assert best == first.best.family == first.selection["selected"]
    selection = pd.read_csv(tmp_path / "a" / "tables" / "selection.csv").set_index("family")
    assert selection.loc[best, "mean"] == pytest.approx(table.loc[table["selected"], "cv_mcc"].item())
    for column in ("test_mcc", "test_f1", "test_precision", "test_recall", "test_accuracy", "test_g_measure",
                   "test_pr_auc", "test_roc_auc", "test_brier"):
        assert (table[f"{column}_lo"] <= table[column]).all() and (table[column] <= table[f"{column}_hi"]).all()
    for name in ("comparison.md", "comparison.tex", "test_by_source.csv", "trials.csv", "labelled_set.csv",
                 "selection.csv", "reliability.csv", "test_by_population.csv", "test_by_source_metrics.csv",
                 "source_probe.csv", "label_issues.csv"):
        assert (tmp_path / "a" / "tables" / name).is_file(), name
    assert (tmp_path / "a" / "figures" / "comparison.png").is_file()
    assert (tmp_path / "a" / "figures" / "reliability.png").is_file()
    metrics = json.loads((tmp_path / "a" / "train.json").read_text())
    assert metrics["selected"] == best and "mcc_lo" in metrics["test"] and "pr_auc_lo" in metrics["test"]
    assert metrics["selection"]["rule"] == "strongest_within" and isinstance(metrics["selection"]["sure"], bool)
    model, card = load_model(tmp_path / "a" / "model")
    assert card["family"] == best
    result = first.best
    # the stored threshold is the one chosen on the out-of-fold scores, with its calibration and prior
    assert card["threshold"] == pytest.approx(result.decision.threshold)
    assert card["calibration"]["method"] == "isotonic" and card["prior"]["source"] == "none"
    assert card["decision"]["metric"] == "mcc" and 0 <= card["decision"]["probability_threshold"] <= 1
    assert card["population"]["selected_calibrated_and_reported_on"] == first.population
    assert card["selection"]["selected"] == best and "summary" in card["selection"]
    assert set(card["rare_class_metrics"]) >= {"pr_auc", "pr_auc_lo", "recall_at_precision", "brier", "g_measure"}
    assert card["metrics"]["test"]["mcc"] == pytest.approx(table.loc[table["selected"], "test_mcc"].item())
    assert model.predict_proba(["CVE in the loader"]).shape == (1,)
    # `secmine evaluate` on the stage's labelled Parquet, test split: the model card's test metrics
    result = CliRunner().invoke(app, ["evaluate", "--model-dir", str(tmp_path / "a" / "model"), "--data",
                                      str(tmp_path / "a" / "labelled.parquet"), "--split", "test", "--bootstrap",
                                      "200", "--seed", "5", "--output", str(tmp_path / "eval.json")])
    assert result.exit_code == 0, result.output
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    for name in ("mcc", "mcc_lo", "mcc_hi", "f1", "n", "g_measure", "pr_auc", "pr_auc_lo", "brier"):
        assert evaluation[name] == pytest.approx(card["metrics"]["test"][name]), name
    assert "pr_auc" in result.output
    # same inputs and params: byte-identical tables and metrics
    _run(labelled_csv, tmp_path / "b", families, settings)
    for name in sorted(p.name for p in (tmp_path / "a" / "tables").iterdir()):
        assert (tmp_path / "a" / "tables" / name).read_bytes() == (tmp_path / "b" / "tables" / name).read_bytes(), name
    assert (tmp_path / "a" / "train.json").read_bytes() == (tmp_path / "b" / "train.json").read_bytes()


def test_train_and_evaluate_commands(labelled_csv: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--data", str(labelled_csv), "--model-dir", str(tmp_path / "m"),
                                 "--families", "keyword,tfidf_svm", "--n-folds", "3", "--n-trials", "2",
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "TF-IDF + linear SVM" in result.output
    assert (tmp_path / "m" / "model_card.json").is_file()
    assert (tmp_path / "r" / "reports" / "metrics" / "train.json").is_file()
    result = runner.invoke(app, ["evaluate", "--model-dir", str(tmp_path / "m"), "--data", str(labelled_csv),
                                 "--output", str(tmp_path / "eval.json")])
    assert result.exit_code == 0, result.output
    assert "mcc" in result.output
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    if evaluation["population"] == "keyword":  # the card's population; every row is reported apart
        assert evaluation["n"] < 48 and evaluation["all_rows"]["n"] == 48
    else:
        assert evaluation["n"] == 48
    assert -1 <= evaluation["mcc_lo"] <= evaluation["mcc"] <= evaluation["mcc_hi"] <= 1
    assert evaluation["threshold"] == card["threshold"] and "g_measure" in evaluation and "pr_auc" in evaluation
    result = runner.invoke(app, ["evaluate", "--model-dir", str(tmp_path / "m"), "--data", str(labelled_csv),
                                 "--population", "all", "--output", str(tmp_path / "eval_all.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval_all.json").read_text())["n"] == 48
    for name in ("g_measure", "pr_auc", "roc_auc", "recall@P0.9", "brier"):
        assert name in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,2\n")
    result = runner.invoke(app, ["evaluate", "--model-dir", str(tmp_path / "m"), "--data", str(bad)])
    assert result.exit_code == 1 and "row 2, field 'label'" in result.output


def _rare_csv(path: Path, n: int = 600, share: float = 0.03, seed: int = 0) -> None:
    """Synthetic issue reports, ``share`` security reports, one a day (for a time split)."""
    rng = np.random.default_rng(seed)
    common = [f"word{i}" for i in range(60)]
    signal = ["exploit", "injection", "leak", "token", "unauthenticated", "traversal"]
    rows = []
    for i in range(n):
        label = int(rng.random() < share)
        words = list(rng.choice(common, 25))
        if label:
            words += list(rng.choice(signal, 3))
        elif rng.random() < 0.05:  # a passing mention
            words += [str(rng.choice(signal))]
        day = pd.Timestamp("2023-01-01", tz="UTC") + pd.Timedelta(days=i)
        rows.append({"id": f"i{i}", "text": " ".join(words), "label": label,
                     "created_at": day.strftime("%Y-%m-%dT%H:%M:%SZ"), "repo": f"org/r{i % 7}"})
    frame = pd.DataFrame(rows)
    frame.loc[frame.index[:2], "label"] = 1  # at least a few positives in the oldest half
    frame.to_csv(path, index=False)


def test_rare_positives_split_by_time_threshold_beats_the_default(tmp_path: Path) -> None:
    """`secmine train --data` on 3% positives, oldest half trains, newest half tests: the stored
    threshold finds more positives than 0.5 at an MCC at least as good, and `classify` uses it."""
    data = tmp_path / "rare.csv"
    _rare_csv(data)
    runner = CliRunner()
    cards, evaluations = {}, {}
    for name, extra in (("default", ["--params", str(tmp_path / "baseline.yaml")]), ("tuned", [])):
        (tmp_path / "baseline.yaml").write_text("train:\n  tune_threshold: false\n  calibration: none\n"
                                                "  selection: mean\n  threshold: 0.5\n")
        result = runner.invoke(app, ["train", "--data", str(data), "--model-dir", str(tmp_path / name),
                                     "--families", "tfidf_logreg", "--n-folds", "3", "--n-trials", "1",
                                     "--split", "time", "--test-size", "0.5", "--population", "all",
                                     "--out", str(tmp_path / f"r-{name}"), *extra])
        assert result.exit_code == 0, result.output
        reports = tmp_path / f"r-{name}" / "data" / "interim"
        labelled = pd.read_parquet(reports / "labelled.parquet")
        test = labelled[labelled["split"] == "test"]
        assert pd.to_datetime(test["created_at"]).min() > pd.to_datetime(labelled.loc[labelled["split"] == "train",
                                                                                       "created_at"]).max()
        out = tmp_path / f"eval-{name}.json"
        result = runner.invoke(app, ["evaluate", "--model-dir", str(tmp_path / name), "--data",
                                     str(reports / "labelled.parquet"), "--split", "test",
                                     "--population", "all", "--bootstrap", "200", "--output", str(out)])
        assert result.exit_code == 0, result.output
        evaluations[name] = json.loads(out.read_text())
        cards[name] = json.loads((tmp_path / name / "model_card.json").read_text())
        assert (reports / "label_review.csv").is_file()
    default, tuned = evaluations["default"], evaluations["tuned"]
    assert cards["default"]["threshold"] == 0.5 and cards["tuned"]["threshold"] != 0.5
    assert cards["tuned"]["population"]["repeats"] > 1  # few positives: repeated folds
    assert tuned["recall"] >= default["recall"] + 0.2 and tuned["mcc"] >= default["mcc"]
    # classify labels with the stored threshold (on the raw score) and reports calibrated probabilities
    texts = tmp_path / "texts.csv"
    pd.read_csv(data)[["id", "text"]].to_csv(texts, index=False)
    result = runner.invoke(app, ["classify", "--model-dir", str(tmp_path / "tuned"), "--input", str(texts),
                                 "--output", str(tmp_path / "classified.csv")])
    assert result.exit_code == 0, result.output
    classified = pd.read_csv(tmp_path / "classified.csv")
    model, card = load_model(tmp_path / "tuned")
    scores = model.predict_proba(pd.read_csv(texts)["text"].tolist())
    assert (classified["label"].to_numpy() == (scores >= card["threshold"])).all()
    from secmine.detect.calibration import card_probability

    assert np.allclose(classified["probability"], card_probability(card, scores))
