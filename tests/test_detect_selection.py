"""Model selection on few positives, the source probe and the label-noise review sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from secmine.detect.train import FamilyResult, TrainError, TrainOptions, corrected_interval, select_family


def _result(family: str, scores: list[float]) -> FamilyResult:
    return FamilyResult(family, {}, scores, np.zeros(1), np.zeros(1), {}, {}, pd.DataFrame(), None)  # type: ignore[arg-type]


def test_corrected_interval_is_wider_than_the_naive_one() -> None:
    scores = [0.6, 0.7, 0.65, 0.72, 0.58, 0.69]
    mean, lo, hi = corrected_interval(scores, n_folds=3)
    sd = np.std(scores, ddof=1)
    naive = 2.571 * sd / np.sqrt(len(scores))  # t(0.975, 5)
    assert mean == pytest.approx(np.mean(scores)) and hi - mean > naive * 1.5
    assert corrected_interval([float("nan"), 0.5], n_folds=3)[0] == 0.5  # one finite score: no interval


def test_selection_rules_and_how_sure_they_are() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 0.08, 15)  # shared fold difficulty: scores on the same folds are paired
    noisy_keyword = list(0.62 + base + rng.normal(0, 0.01, 15))
    results = {
        "keyword": _result("keyword", noisy_keyword),
        "tfidf_logreg": _result("tfidf_logreg", list(0.60 + base + rng.normal(0, 0.03, 15))),
        "transformer": _result("transformer", list(0.30 + base + rng.normal(0, 0.03, 15))),
    }
    chosen, report = select_family(results, rule="mean", n_folds=3)
    assert chosen == "keyword" and report["best_mean"] == "keyword"
    chosen, report = select_family(results, rule="strongest_within", n_folds=3)
    # the transformer is clearly worse; TF-IDF cannot be told from the keyword baseline: the stronger wins
    assert chosen == "tfidf_logreg" and report["runner_up"] == "keyword" and not report["sure"]
    assert report["families"]["transformer"]["diff_high"] < 0
    assert "not sure" in report["summary"]
    clear = {"keyword": _result("keyword", list(0.3 + base)), "tfidf_logreg": _result("tfidf_logreg", list(0.7 + base))}
    chosen, report = select_family(clear, rule="lcb", n_folds=3)
    assert chosen == "tfidf_logreg" and report["sure"] and report["win_share"] == 1.0
    with pytest.raises(TrainError, match="train.selection"):
        select_family(clear, rule="vote", n_folds=3)


def test_train_options_from_params_and_their_errors() -> None:
    options = TrainOptions.from_params({"population": "all", "hard_weight": "3", "target_prior": "0.05",
                                        "tune_threshold": "false", "cv_repeats": "4", "unknown": 1})
    assert options.population == "all" and options.hard_weight == 3.0 and options.target_prior == 0.05
    assert options.tune_threshold is False and options.cv_repeats == 4
    with pytest.raises(TrainError, match="train.split"):
        TrainOptions(split="weekly")
    with pytest.raises(TrainError, match="train.hard_weight"):
        TrainOptions(hard_weight=0)


def test_source_probe_sees_sources_that_differ_and_not_those_that_do_not() -> None:
    from secmine.detect.probe import mask_keywords, source_probe

    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(40)]

    def text(extra: str) -> str:
        return " ".join(rng.choice(words, 12)) + " " + extra

    rows = []
    for i in range(60):  # label 1: coded posts say "spreadsheet", issues say "template"
        rows.append({"label": 1, "source": "coded", "text": text("spreadsheet export security")})
        rows.append({"label": 1, "source": "issues", "text": text("issue template security")})
    for i in range(60):  # label 0: two sources drawn alike, except that one has keywords by construction
        rows.append({"label": 0, "source": "hard", "text": text("vulnerability")})
        rows.append({"label": 0, "source": "weak", "text": text("")})
    frame = pd.DataFrame(rows)
    frame["group"] = [f"g{i}" for i in range(len(frame))]
    probe = source_probe(frame, keywords=("vulnerability", "security"), n_folds=5, seed=0).set_index("label")
    assert probe.loc[1, "balanced_accuracy"] > 0.95
    assert abs(probe.loc[0, "balanced_accuracy"] - 0.5) < 0.15  # the keyword is masked: nothing to tell apart
    assert probe.loc[0, "chance"] == 0.5
    assert mask_keywords(["A Security fix, cybersecurity"], ["security"]) == ["A   fix, cyber "]


def test_label_issues_flag_flipped_labels_for_review(tmp_path: Path) -> None:
    from secmine.detect.noise import REVIEW_COLUMNS, label_issues, write_review_sheet

    rng = np.random.default_rng(2)
    truth = (rng.random(300) < 0.3).astype(int)
    probability = np.clip(np.where(truth == 1, 0.85, 0.1) + rng.normal(0, 0.05, 300), 0.01, 0.99)
    given = truth.copy()
    flipped = rng.choice(300, 12, replace=False)
    given[flipped] = 1 - given[flipped]
    frame = pd.DataFrame({"uid": [f"u{i}" for i in range(300)], "thread_id": None, "source": "user",
                          "origin": [f"f.csv:row {i + 2}" for i in range(300)], "label": given,
                          "text": ["x" * 500] * 300})
    issues = label_issues(frame, probability, excerpt_chars=50)
    assert list(issues.columns) == list(REVIEW_COLUMNS)
    found = set(issues["uid"])
    assert len({f"u{i}" for i in flipped} & found) >= 11 and len(found) <= 20
    assert (issues["suggested_label"] == 1 - issues["label"]).all() and issues["rank"].tolist()[0] == 1
    assert issues["excerpt"].str.len().max() == 50 and (issues["decision"] == "").all()
    assert frame["label"].tolist() == given.tolist()  # nothing relabelled
    write_review_sheet(issues, tmp_path / "review.csv")
    assert pd.read_csv(tmp_path / "review.csv")["uid"].tolist() == issues["uid"].tolist()
