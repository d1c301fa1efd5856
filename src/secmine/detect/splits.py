"""Leakage-free splits: a held-out test split and cross-validation folds, grouped and stratified.

A thread (``group``) never sits in two folds, nor in both the test split and training: splits come
from :class:`sklearn.model_selection.StratifiedGroupKFold`.  Folds are stratified on label *and*
source, so every fold sees the same mixture of positives, hard negatives and weak negatives --
every model is compared on exactly these folds and this test split.

Three ways to hold out the test split (``strategy``, params ``train.split``):

``random``
    a random grouped, stratified share ``test_size`` of the threads (the default);
``time``
    the newest ``test_size`` of the dated threads (by ``created_at``; a thread's rows go together):
    the model is trained on the past and tested on the future, as it meets new data.  Rows without a
    date can only be training rows;
``project``
    whole repositories (``repo``; a row without one is its own project) held out, about
    ``test_size`` of the rows: the model is tested on projects it never saw.  The validation folds
    are then grouped by repository too.

:func:`repeated_folds` draws the folds again with other seeds (repeated grouped stratified
cross-validation), so that a selection on few positives rests on more than one partition.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from secmine.errors import SecmineError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

SPLIT_STRATEGIES: tuple[str, ...] = ("random", "time", "project")


class SplitError(SecmineError, ValueError):
    """The labelled set cannot be split as asked."""


def _strata(frame: pd.DataFrame) -> list[str]:
    source = frame["source"] if "source" in frame.columns else ["all"] * len(frame)
    return [f"{label}|{src}" for label, src in zip(frame["label"], source, strict=True)]


def _projects(frame: pd.DataFrame) -> np.ndarray:
    """The repository of each row (its group where it has none)."""
    import numpy as np

    groups = frame["group"].astype(str)
    if "repo" not in frame.columns:
        return groups.to_numpy()
    repo = frame["repo"].astype(object)
    return np.where(repo.notna() & (repo.astype(str) != ""), "repo:" + repo.astype(str), groups)


def _fold_groups(frame: pd.DataFrame, strategy: str) -> np.ndarray:
    return _projects(frame) if strategy == "project" else frame["group"].astype(str).to_numpy()


def _time_test(frame: pd.DataFrame, test_size: float) -> np.ndarray:
    """Positions of the newest ``test_size`` share of the dated rows, whole threads at a time."""
    import numpy as np
    import pandas as pd

    if "created_at" not in frame.columns:
        raise SplitError("split 'time' needs a created_at column (a date per row)")
    dates = pd.to_datetime(frame["created_at"], utc=True, errors="coerce")
    dated = dates.notna().to_numpy()
    if dated.sum() < 4:
        raise SplitError(f"split 'time' needs dated rows; only {int(dated.sum())} of {len(frame)} have a created_at")
    groups = frame["group"].astype(str)
    # a thread's time is its earliest row's; an undated row of a dated thread follows the thread
    first = dates.groupby(groups).transform("min")
    order = (pd.DataFrame({"t": first, "g": groups, "pos": np.arange(len(frame))})
             .loc[first.notna().to_numpy()].sort_values(["t", "g"], kind="stable"))
    per_group = order.groupby("g", sort=False).size()
    n_test = test_size * len(order)
    test_groups, taken = [], 0
    for group, size in list(per_group.items())[::-1]:  # newest first
        if taken >= n_test:
            break
        test_groups.append(group)
        taken += int(size)
    return np.flatnonzero(groups.isin(set(test_groups)).to_numpy())


def assign_splits(
    frame: pd.DataFrame, *, test_size: float = 0.2, n_folds: int = 5, seed: int = 0, strategy: str = "random"
) -> pd.DataFrame:
    """A copy of ``frame`` with ``split`` (``train``/``test``) and ``fold`` (0..n_folds-1; -1 for test).

    ``frame`` needs ``group`` and ``label`` (``source`` for stratifying by source, ``created_at``
    for ``strategy="time"``, ``repo`` for ``strategy="project"``).
    """
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    if strategy not in SPLIT_STRATEGIES:
        raise SplitError(f"train.split {strategy!r} is not one of {', '.join(SPLIT_STRATEGIES)}")
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
        if strategy == "time":
            test_idx = _time_test(frame, test_size)
        else:
            outer_groups = _projects(frame) if strategy == "project" else groups
            if len(set(outer_groups)) < 2:
                raise SplitError("split 'project' needs rows of at least two repositories")
            outer = StratifiedGroupKFold(n_splits=min(n_test_splits, len(set(outer_groups))), shuffle=True,
                                         random_state=seed)
            _, test_idx = next(outer.split(np.zeros(len(frame)), strata, outer_groups))
        split = np.array(["train"] * len(frame), dtype=object)
        split[test_idx] = "test"
        out["split"] = split
        for name, part in (("train", out[out["split"] == "train"]), ("test", out[out["split"] == "test"])):
            if part["label"].nunique() < 2:
                raise SplitError(f"the {name} split holds one label only (split {strategy!r}); "
                                 "add labelled data, change test_size or use another train.split")
        out["fold"] = _folds(out, n_folds=n_folds, seed=seed, strategy=strategy)
    check_no_leakage(out)
    return out


def _folds(frame: pd.DataFrame, *, n_folds: int, seed: int, strategy: str) -> np.ndarray:
    """Fold numbers of the training rows (test rows -1), grouped and stratified."""
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    fold = np.full(len(frame), -1, dtype=np.int64)
    train_idx = np.flatnonzero((frame["split"] == "train").to_numpy())
    groups = _fold_groups(frame, strategy)[train_idx]
    if len(set(groups)) < n_folds:
        raise SplitError(f"too few {'repositories' if strategy == 'project' else 'threads'} ({len(set(groups))}) "
                         f"in the training split for {n_folds} folds")
    strata = np.array(_strata(frame))[train_idx]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        inner = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for k, (_, val) in enumerate(inner.split(np.zeros(len(train_idx)), strata, groups)):
            fold[train_idx[val]] = k
    return fold


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


def repeated_folds(
    frame: pd.DataFrame, *, repeats: int = 1, seed: int = 0, strategy: str = "random"
) -> list[list[tuple[list[int], list[int]]]]:
    """The folds of ``frame`` (repeat 0, its ``fold`` column) and ``repeats - 1`` more partitions of
    the training rows with seeds ``seed + 1, seed + 2, ...`` (same number of folds, same grouping
    and strata); positions as in :func:`fold_indices`."""
    import numpy as np

    first = fold_indices(frame)
    out = [first]
    n_folds = len(first)
    train_mask = (frame["split"] == "train").to_numpy()
    for r in range(1, max(1, int(repeats))):
        fold = _folds(frame, n_folds=n_folds, seed=seed + r, strategy=strategy)[train_mask]
        partition = []
        for k in range(n_folds):
            val = np.flatnonzero(fold == k).tolist()
            fit = np.flatnonzero(fold != k).tolist()
            partition.append((fit, val))
        out.append(partition)
    return out
