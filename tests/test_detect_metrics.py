"""Metrics and their seeded bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, precision_score, recall_score

from secmine.detect.metrics import binary_metrics, bootstrap_intervals, metrics_with_ci


def test_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 50)
        p = np.where(rng.random(50) < 0.7, y, 1 - y)
        m = binary_metrics(y, p)
        assert m["mcc"] == pytest.approx(matthews_corrcoef(y, p))
        assert m["f1"] == pytest.approx(f1_score(y, p, zero_division=0))
        assert m["precision"] == pytest.approx(precision_score(y, p, zero_division=0))
        assert m["recall"] == pytest.approx(recall_score(y, p, zero_division=0))
        assert m["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert binary_metrics([0, 0, 1], [0, 0, 0])["mcc"] == 0.0  # undefined -> 0, as scikit-learn


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.where(rng.random(200) < 0.8, y, 1 - y)
    a = bootstrap_intervals(y, p, n_boot=500, seed=7)
    b = bootstrap_intervals(y, p, n_boot=500, seed=7)
    c = bootstrap_intervals(y, p, n_boot=500, seed=8)
    assert a == b and a != c
    point = binary_metrics(y, p)
    for name, (lo, hi) in a.items():
        assert lo <= point[name] <= hi
        assert hi - lo < 0.3
    wide = bootstrap_intervals(y[:20], p[:20], n_boot=500, seed=7)
    assert wide["mcc"][1] - wide["mcc"][0] > a["mcc"][1] - a["mcc"][0]  # fewer rows, wider interval
    perfect = metrics_with_ci(y, y, n_boot=100, seed=0)
    assert perfect["mcc"] == perfect["mcc_lo"] == perfect["mcc_hi"] == 1.0
    assert perfect["n"] == 200 and perfect["positives"] == int(y.sum())
    with pytest.raises(ValueError):
        bootstrap_intervals([], [], n_boot=10)


def test_rare_class_metrics_agree_with_scikit_learn_and_carry_intervals() -> None:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    from secmine.detect.metrics import evaluate_scores, recall_at_precision, score_metrics

    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.08).astype(int)
    p = np.round(np.clip(0.55 * rng.random(400) + 0.4 * y, 0, 1), 2)  # ties included
    s = score_metrics(y, p, precision_target=0.5)
    assert s["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert s["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert s["brier"] == pytest.approx(brier_score_loss(y, p))
    # recall at precision: the best recall among thresholds whose precision reaches the target
    best = max((np.mean(p[y == 1] >= t) for t in np.unique(p) if np.mean(y[p >= t]) >= 0.5), default=0.0)
    assert recall_at_precision(y, p, 0.5) == pytest.approx(best)
    labels = (p >= 0.5).astype(int)
    m = evaluate_scores(y, p, labels, n_boot=300, seed=1, precision_target=0.5)
    recall = np.mean(labels[y == 1])
    specificity = np.mean(labels[y == 0] == 0)
    assert m["g_measure"] == pytest.approx(2 * recall * specificity / (recall + specificity))
    for name in ("mcc", "g_measure", "pr_auc", "roc_auc", "recall_at_precision", "brier"):
        assert m[f"{name}_lo"] <= m[name] <= m[f"{name}_hi"], name
    assert evaluate_scores(y, p, labels, n_boot=300, seed=1, precision_target=0.5) == m
    one_class = evaluate_scores([0, 0, 0], [0.1, 0.2, 0.3], [0, 0, 0], n_boot=50)
    assert one_class["pr_auc"] is None and one_class["pr_auc_lo"] is None and one_class["brier"] > 0


def test_best_threshold_maximises_the_metric_and_weights_act_as_replicated_rows() -> None:
    from secmine.detect.metrics import MetricError, best_threshold

    rng = np.random.default_rng(4)
    y = (rng.random(300) < 0.2).astype(int)
    p = np.clip(0.6 * rng.random(300) + 0.35 * y, 0, 1)
    t = best_threshold(y, p, metric="mcc")
    brute = max(matthews_corrcoef(y, (p >= c).astype(int)) for c in np.unique(p))
    assert matthews_corrcoef(y, (p >= t).astype(int)) == pytest.approx(brute)
    assert t not in set(p.tolist())  # halfway between two scores
    w = rng.integers(1, 4, 300)
    replicated = np.repeat(np.arange(300), w)
    assert binary_metrics(y, (p >= t).astype(int), sample_weight=w) == pytest.approx(
        binary_metrics(y[replicated], (p[replicated] >= t).astype(int)))
    tw = best_threshold(y, p, metric="f1", sample_weight=w)
    brute_f1 = max(f1_score(y[replicated], (p[replicated] >= c).astype(int)) for c in np.unique(p))
    assert f1_score(y[replicated], (p[replicated] >= tw).astype(int)) == pytest.approx(brute_f1)
    with pytest.raises(MetricError, match="unknown threshold metric"):
        best_threshold(y, p, metric="auc")
