"""Classification metrics with seeded percentile-bootstrap 95% intervals.

MCC is the primary metric (as in the paper): it stays informative under class imbalance, where
accuracy and F1 flatter a classifier that favours the majority class.  Beside the thresholded
metrics (:data:`METRICS`, plus the g-measure: the harmonic mean of recall and 1 - false-positive
rate) a reviewer of a rare-class detector asks for metrics of the *probabilities*
(:data:`SCORE_METRICS`): the area under the precision-recall curve (average precision), ROC-AUC, the
recall reachable at a fixed precision, and the Brier score of the probabilities.  Every metric comes
with a bootstrap interval (rows resampled with replacement; resamples holding one class only are
left out of the metrics they leave undefined).

:func:`best_threshold` picks the decision threshold that maximises a thresholded metric, optionally
with row weights (how a threshold is chosen for another class prior, see
:mod:`secmine.detect.calibration`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

METRICS: tuple[str, ...] = ("mcc", "f1", "precision", "recall", "accuracy", "g_measure")
SCORE_METRICS: tuple[str, ...] = ("pr_auc", "roc_auc", "recall_at_precision", "brier")
THRESHOLD_METRICS = frozenset(METRICS)
DEFAULT_PRECISION_TARGET = 0.9


class MetricError(ValueError):
    """Metrics asked of inputs that cannot give them (empty, mismatched, unknown metric)."""


def _from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised metrics from confusion counts (0 where a ratio is undefined, as scikit-learn).

    Counts may be weighted (floats)."""
    tp, fp, fn, tn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn, tn))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        specificity = np.where(tn + fp > 0, tn / (tn + fp), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        accuracy = (tp + tn) / np.maximum(tp + fp + fn + tn, 1e-300)
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(denom > 0, (tp * tn - fp * fn) / denom, 0.0)
        g_measure = np.where(recall + specificity > 0, 2 * recall * specificity / (recall + specificity), 0.0)
    return {"mcc": mcc, "f1": f1, "precision": precision, "recall": recall, "accuracy": accuracy,
            "g_measure": g_measure}


def _check(y_true: Sequence[int], other: Sequence[Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64)
    o = np.asarray(other, dtype=np.float64)
    if y.shape != o.shape:
        raise MetricError(f"y_true has {y.shape} values, {name} {o.shape}")
    return y, o


def binary_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], *, sample_weight: Sequence[float] | None = None
) -> dict[str, float]:
    """MCC, F1, precision, recall, accuracy and g-measure of binary predictions (optionally weighted)."""
    y, p = _check(y_true, y_pred, "y_pred")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    pos, pred = y == 1, p == 1
    tp, fp = np.sum(w[pos & pred]), np.sum(w[~pos & pred])
    fn, tn = np.sum(w[pos & ~pred]), np.sum(w[~pos & ~pred])
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
    idx = _resamples(len(y_true), n_boot, seed)
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


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    if n == 0:
        raise MetricError("no predictions to bootstrap")
    if n_boot < 1:
        raise MetricError("n_boot must be positive")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


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


# -- metrics of probabilities ----------------------------------------------------------------


def recall_at_precision(y_true: Sequence[int], proba: Sequence[float], precision: float) -> float:
    """The highest recall of any threshold whose precision is at least ``precision`` (0 if none)."""
    from sklearn.metrics import precision_recall_curve

    y, p = _check(y_true, proba, "proba")
    if not y.any():
        return float("nan")
    prec, rec, _ = precision_recall_curve(y, p)
    ok = prec >= precision - 1e-12
    return float(rec[ok].max()) if ok.any() else 0.0


def score_metrics(
    y_true: Sequence[int], proba: Sequence[float], *, precision_target: float = DEFAULT_PRECISION_TARGET
) -> dict[str, float]:
    """PR-AUC (average precision), ROC-AUC, recall at ``precision_target`` and the Brier score.

    The ranking metrics are NaN when ``y_true`` holds one class only."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y, p = _check(y_true, proba, "proba")
    if len(y) == 0:
        raise MetricError("no probabilities to score")
    both = 0 < int(y.sum()) < len(y)
    return {
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "recall_at_precision": recall_at_precision(y, p, precision_target) if both else float("nan"),
        "brier": float(brier_score_loss(y, p, pos_label=1)),
    }


def _score_metrics_weighted(
    y: np.ndarray, p: np.ndarray, weights: np.ndarray, precision_target: float
) -> dict[str, np.ndarray]:
    """:func:`score_metrics` for many row weightings at once (``weights``: draws x rows, e.g. the
    multinomial counts of bootstrap resamples): one score order, cumulative weighted counts per
    distinct score -- the same thresholds, hence the same values, as scikit-learn's curves."""
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    w = weights[:, order]
    starts = np.r_[0, np.flatnonzero(np.diff(p_sorted) != 0) + 1]  # first row of each distinct score
    pos_w = np.add.reduceat(w * (y_sorted == 1), starts, axis=1)
    neg_w = np.add.reduceat(w * (y_sorted == 0), starts, axis=1)
    tp, fp = np.cumsum(pos_w, axis=1), np.cumsum(neg_w, axis=1)
    total_pos, total_neg = tp[:, -1:], fp[:, -1:]
    valid = (total_pos[:, 0] > 0) & (total_neg[:, 0] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp / total_pos
        fpr = fp / total_neg
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        prev_recall = np.concatenate([np.zeros((len(w), 1)), recall[:, :-1]], axis=1)
        ap = np.sum((recall - prev_recall) * precision, axis=1)
        tpr0 = np.concatenate([np.zeros((len(w), 1)), recall], axis=1)
        fpr0 = np.concatenate([np.zeros((len(w), 1)), fpr], axis=1)
        auc = np.sum(np.diff(fpr0, axis=1) * (tpr0[:, 1:] + tpr0[:, :-1]) / 2.0, axis=1)
        reach = np.where(precision >= precision_target - 1e-12, recall, 0.0).max(axis=1)
        brier = (w * (p_sorted - y_sorted) ** 2).sum(axis=1) / w.sum(axis=1)
    nan = np.full(len(w), np.nan)
    return {"pr_auc": np.where(valid, ap, nan), "roc_auc": np.where(valid, auc, nan),
            "recall_at_precision": np.where(valid, reach, nan), "brier": brier}


def evaluate_scores(
    y_true: Sequence[int],
    proba: Sequence[float],
    labels: Sequence[int],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    precision_target: float = DEFAULT_PRECISION_TARGET,
    level: float = 0.95,
) -> dict[str, Any]:
    """Every metric of :data:`METRICS` (of ``labels``) and :data:`SCORE_METRICS` (of ``proba``) with
    ``_lo``/``_hi`` bootstrap bounds (the same resamples for all), ``n``, ``positives`` and
    ``precision_target``.  Values that are undefined (one class only) are ``None``."""
    y, p = _check(y_true, proba, "proba")
    _, lab = _check(y_true, labels, "labels")
    y = y.astype(np.int64)
    out = metrics_with_ci(y, lab.astype(np.int64), n_boot=n_boot, seed=seed)
    point = score_metrics(y, p, precision_target=precision_target)
    idx = _resamples(len(y), n_boot, seed)
    draws: dict[str, list[np.ndarray]] = {name: [] for name in SCORE_METRICS}
    block = max(1, 2_000_000 // max(1, len(y)))  # resamples per block: bounded memory on large sets
    for start in range(0, n_boot, block):
        rows = idx[start:start + block]
        counts = np.zeros((len(rows), len(y)), dtype=np.float64)
        np.add.at(counts, (np.repeat(np.arange(len(rows)), len(y)), rows.ravel()), 1.0)
        for name, values in _score_metrics_weighted(y, p, counts, precision_target).items():
            draws[name].append(values)
    alpha = (1.0 - level) / 2.0
    for name in SCORE_METRICS:
        values = np.concatenate(draws[name])
        values = values[~np.isnan(values)]
        out[name] = None if np.isnan(point[name]) else point[name]
        if out[name] is None or len(values) == 0:
            out[f"{name}_lo"] = out[f"{name}_hi"] = None
        else:
            out[f"{name}_lo"], out[f"{name}_hi"] = float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))
    out["precision_target"] = float(precision_target)
    return out


# -- thresholds --------------------------------------------------------------------------------


def threshold_curve(
    y_true: Sequence[int], proba: Sequence[float], *, metric: str = "mcc", sample_weight: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(thresholds, metric values)``: the metric of ``proba >= t`` for every distinct score ``t``
    (descending), from cumulative (weighted) confusion counts."""
    if metric not in THRESHOLD_METRICS:
        raise MetricError(f"unknown threshold metric {metric!r}; choose from {', '.join(METRICS)}")
    y, p = _check(y_true, proba, "proba")
    if len(y) == 0:
        raise MetricError("no probabilities to choose a threshold on")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    order = np.argsort(-p, kind="stable")
    p, y, w = p[order], y[order], w[order]
    last = np.r_[np.flatnonzero(np.diff(p) != 0), len(p) - 1]  # last index of each distinct score
    tp = np.cumsum(w * (y == 1))[last]
    fp = np.cumsum(w * (y == 0))[last]
    total_pos, total_neg = float(np.sum(w * (y == 1))), float(np.sum(w * (y == 0)))
    values = _from_counts(tp, fp, total_pos - tp, total_neg - fp)[metric]
    return p[last], values


def best_threshold(
    y_true: Sequence[int], proba: Sequence[float], *, metric: str = "mcc", sample_weight: Sequence[float] | None = None
) -> float:
    """The threshold maximising ``metric`` of ``proba >= threshold``.

    It lies halfway between the lowest score labelled positive at the best cut and the next lower
    score (so it does not sit on a training score); ties go to the highest threshold."""
    thresholds, values = threshold_curve(y_true, proba, metric=metric, sample_weight=sample_weight)
    best = int(np.argmax(values))
    if best + 1 < len(thresholds):
        return float((thresholds[best] + thresholds[best + 1]) / 2.0)
    return float(np.nextafter(thresholds[best], -np.inf)) if thresholds[best] > 0 else 0.0
