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
