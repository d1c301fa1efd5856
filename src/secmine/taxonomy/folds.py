"""Grouped, iteratively stratified folds and per-label thresholds chosen inside them.

Folds come from iterative stratification over all labels at once (Sechidis et al. 2011, the
``iterative-stratification`` package's :class:`~iterstrat.ml_stratifiers.MultilabelStratifiedKFold`),
applied to *groups* (one row per group, its labels the union of its posts'), so the posts of one
thread or one text never sit in two folds.  Every model family is compared on the same folds.

Thresholds are chosen per label to maximise F1 on predictions the model made for rows it was not
fitted on, and only ever on rows of the training part of an outer fold: the outer fold's own rows
never choose anything.
"""

from __future__ import annotations

import numpy as np

from secmine.taxonomy.labels import LEVELS, LabelSpace

THRESHOLD_GRID: np.ndarray = np.round(np.arange(0.02, 0.99, 0.02), 2)
DEFAULT_THRESHOLD = 0.5


class FoldError(ValueError):
    """The data cannot be split into the folds asked for."""


def grouped_multilabel_folds(
    Y: np.ndarray, groups: list[str] | np.ndarray, n_folds: int, seed: int
) -> np.ndarray:
    """Fold number (0..n_folds-1) of every row: iterative stratification over groups."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    Y = np.asarray(Y)
    groups = np.asarray(groups, dtype=object).astype(str)
    if Y.ndim != 2 or Y.shape[0] != groups.shape[0]:
        raise FoldError(f"{Y.shape[0] if Y.ndim else 0} label rows for {groups.shape[0]} groups")
    if n_folds < 2:
        raise FoldError(f"n_folds must be at least 2, got {n_folds}")
    names, inverse = np.unique(groups, return_inverse=True)
    if len(names) < n_folds:
        raise FoldError(f"{len(names)} groups cannot fill {n_folds} folds")
    grouped = np.zeros((len(names), Y.shape[1]), dtype=np.int64)
    np.maximum.at(grouped, inverse, Y.astype(np.int64))
    splitter = MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=int(seed))
    group_fold = np.full(len(names), -1, dtype=np.int64)
    for k, (_, test) in enumerate(splitter.split(np.zeros((len(names), 1)), grouped)):
        group_fold[test] = k
    folds = group_fold[inverse]
    if (folds < 0).any() or len(np.unique(folds)) != n_folds:  # pragma: no cover - defensive
        raise FoldError("iterative stratification left a fold empty")
    return folds


def check_grouping(folds: np.ndarray, groups: list[str] | np.ndarray) -> None:
    """:class:`FoldError` when one group spans two folds."""
    seen: dict[str, int] = {}
    for fold, group in zip(np.asarray(folds).tolist(), np.asarray(groups, dtype=object).astype(str).tolist()):
        if seen.setdefault(group, fold) != fold:
            raise FoldError(f"group {group!r} spans folds {seen[group]} and {fold}")


def f1_grid(Y: np.ndarray, P: np.ndarray, grid: np.ndarray = THRESHOLD_GRID) -> np.ndarray:
    """F1 of every label (columns) at every threshold of ``grid`` (rows)."""
    Y = np.asarray(Y, dtype=bool)
    P = np.asarray(P, dtype=np.float64)
    predicted = P[None, :, :] >= grid[:, None, None]  # (grid, rows, labels)
    tp = (predicted & Y[None]).sum(axis=1)
    fp = (predicted & ~Y[None]).sum(axis=1)
    fn = (~predicted & Y[None]).sum(axis=1)
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def choose_thresholds(
    Y: np.ndarray,
    P: np.ndarray,
    *,
    space: LabelSpace | None = None,
    grid: np.ndarray = THRESHOLD_GRID,
    default: float = DEFAULT_THRESHOLD,
) -> np.ndarray:
    """Per label, the threshold of ``grid`` with the best F1 of ``P`` against ``Y`` (the middle one
    of a plateau of equal F1); ``default`` for labels without a positive in ``Y``.

    With ``space``, level by level as :meth:`LabelSpace.decide` predicts: a sub-theme's threshold
    maximises the F1 of its predictions where its theme is predicted at the themes' chosen
    thresholds, a code's where its sub-theme is."""
    Y = np.asarray(Y)
    P = np.asarray(P, dtype=np.float64)
    if Y.shape != P.shape:
        raise ValueError(f"labels {Y.shape} and probabilities {P.shape} differ in shape")
    if space is not None:
        out = np.full(Y.shape[1], float(default), dtype=np.float64)
        predicted = np.zeros(Y.shape, dtype=bool)
        for level in LEVELS:
            columns = space.positions(level=level)
            gate = (
                predicted[:, space.parent_index[columns]]
                if level != "theme"
                else np.ones((len(Y), len(columns)), bool)
            )
            gated = np.where(gate, P[:, columns], -1.0)
            out[columns] = choose_thresholds(Y[:, columns], gated, grid=grid, default=default)
            predicted[:, columns] = gated >= out[columns][None, :]
        return out
    scores = f1_grid(Y, P, grid)
    out = np.full(Y.shape[1], float(default), dtype=np.float64)
    positives = Y.sum(axis=0) > 0
    for j in np.flatnonzero(positives):
        best = np.flatnonzero(np.isclose(scores[:, j], scores[:, j].max()))
        out[j] = float(grid[best[len(best) // 2]])
    return out
