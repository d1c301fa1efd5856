"""Classification metrics with seeded percentile-bootstrap 95% intervals.

MCC is the primary metric (as in the paper): it stays informative under class imbalance, where
accuracy and F1 flatter a classifier that favours the majority class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

METRICS: tuple[str, ...] = ("mcc", "f1", "precision", "recall", "accuracy")


def _from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised metrics from confusion counts (0 where a ratio is undefined, as scikit-learn)."""
    tp, fp, fn, tn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn, tn))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        accuracy = (tp + tn) / np.maximum(tp + fp + fn + tn, 1)
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(denom > 0, (tp * tn - fp * fn) / denom, 0.0)
    return {"mcc": mcc, "f1": f1, "precision": precision, "recall": recall, "accuracy": accuracy}


def binary_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """MCC, F1, precision, recall and accuracy of binary predictions."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.shape} values, y_pred {y_pred.shape}")
    tp = np.sum((y_true == 1) & (y_pred == 1))
    fp = np.sum((y_true == 0) & (y_pred == 1))
    fn = np.sum((y_true == 1) & (y_pred == 0))
    tn = np.sum((y_true == 0) & (y_pred == 0))
    return {k: float(v) for k, v in _from_counts(tp, fp, fn, tn).items()}


def bootstrap_intervals(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals (resampling rows with replacement, seeded) per metric."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n = len(y_true)
    if n == 0:
        raise ValueError("no predictions to bootstrap")
    if n_boot < 1:
        raise ValueError("n_boot must be positive")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    t, p = y_true[idx], y_pred[idx]
    tp = np.sum((t == 1) & (p == 1), axis=1)
    fp = np.sum((t == 0) & (p == 1), axis=1)
    fn = np.sum((t == 1) & (p == 0), axis=1)
    tn = np.sum((t == 0) & (p == 0), axis=1)
    values = _from_counts(tp, fp, fn, tn)
    alpha = (1.0 - level) / 2.0
    return {
        k: (float(np.quantile(v, alpha)), float(np.quantile(v, 1.0 - alpha))) for k, v in values.items()
    }


def metrics_with_ci(
    y_true: Sequence[int], y_pred: Sequence[int], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """``{metric: value, metric_lo: ..., metric_hi: ...}`` plus ``n`` and ``positives``."""
    point = binary_metrics(y_true, y_pred)
    intervals = bootstrap_intervals(y_true, y_pred, n_boot=n_boot, seed=seed)
    out: dict[str, Any] = {"n": int(len(y_true)), "positives": int(np.sum(np.asarray(y_true) == 1))}
    for name in METRICS:
        out[name] = point[name]
        out[f"{name}_lo"], out[f"{name}_hi"] = intervals[name]
    return out
