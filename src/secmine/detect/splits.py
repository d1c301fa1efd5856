"""Leakage-free splits: a held-out test split and cross-validation folds, grouped and stratified.

A thread (``group``) never sits in two folds, nor in both the test split and training: splits come
from :class:`sklearn.model_selection.StratifiedGroupKFold`.  Folds are stratified on label *and*
source, so every fold sees the same mixture of positives, hard negatives and weak negatives —
every model is compared on exactly these folds and this test split.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from secmine.errors import SecmineError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


class SplitError(SecmineError, ValueError):
    """The labelled set cannot be split as asked."""


def _strata(frame: pd.DataFrame) -> list[str]:
    source = frame["source"] if "source" in frame.columns else ["all"] * len(frame)
    return [f"{label}|{src}" for label, src in zip(frame["label"], source, strict=True)]


def assign_splits(frame: pd.DataFrame, *, test_size: float = 0.2, n_folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """A copy of ``frame`` with ``split`` (``train``/``test``) and ``fold`` (0..n_folds-1; -1 for test).

    ``frame`` needs ``group`` and ``label`` (and ``source`` for stratifying by source).
    """
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    if not 0 < test_size < 1:
        raise SplitError(f"test_size must lie in (0, 1), got {test_size}")
    if n_folds < 2:
        raise SplitError(f"n_folds must be at least 2, got {n_folds}")
    labels = frame["label"].to_numpy()
    if len(set(labels.tolist())) < 2:
        raise SplitError("the labelled set needs both labels (0 and 1)")
    groups = frame["group"].astype(str).to_numpy()
    n_test_splits = max(2, int(round(1.0 / test_size)))
    if len(set(groups)) < n_test_splits * 2 or len(set(groups)) < n_folds:
        raise SplitError(f"too few threads ({len(set(groups))}) for a test split and {n_folds} folds")
    strata = np.array(_strata(frame))
    out = frame.copy()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        outer = StratifiedGroupKFold(n_splits=n_test_splits, shuffle=True, random_state=seed)
        _, test_idx = next(outer.split(np.zeros(len(frame)), strata, groups))
        split = np.array(["train"] * len(frame), dtype=object)
        split[test_idx] = "test"
        fold = np.full(len(frame), -1, dtype=np.int64)
        train_idx = np.flatnonzero(split == "train")
        inner = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for k, (_, val) in enumerate(inner.split(np.zeros(len(train_idx)), strata[train_idx], groups[train_idx])):
            fold[train_idx[val]] = k
    out["split"] = split
    out["fold"] = fold
    for name, part in (("train", out[out["split"] == "train"]), ("test", out[out["split"] == "test"])):
        if part["label"].nunique() < 2:
            raise SplitError(f"the {name} split holds one label only; add labelled data or change test_size")
    check_no_leakage(out)
    return out


def check_no_leakage(frame: pd.DataFrame) -> None:
    """Raise :class:`SplitError` if a group or a text spans two folds (or train and test)."""
    where = frame["fold"].astype(str)
    for column in ("group", "text_hash"):
        if column not in frame.columns:
            continue
        spans = frame.assign(_where=where).groupby(column)["_where"].nunique()
        leaking = spans[spans > 1]
        if len(leaking):
            raise SplitError(f"{len(leaking)} {column}(s) span more than one fold, e.g. {leaking.index[0]!r}")


def fold_indices(frame: pd.DataFrame) -> list[tuple[list[int], list[int]]]:
    """``(train positions, validation positions)`` per fold, positions into the *train* rows of
    ``frame`` in their order (as used by the model search)."""
    train = frame[frame["split"] == "train"].reset_index(drop=True)
    folds = sorted(set(train["fold"].tolist()))
    out = []
    for k in folds:
        val = train.index[train["fold"] == k].tolist()
        fit = train.index[train["fold"] != k].tolist()
        out.append((fit, val))
    return out
