"""Label noise: the labelled rows most likely mislabelled, for the coders to review.

Confident learning (Northcutt, Jiang & Chuang 2021) through ``cleanlab``: with the *out-of-fold*
probabilities of the training rows (each from a model that never saw the row), a row is a label
issue when its given label is unlikely under the per-class thresholds of the confident joint.
Rows are ranked by self-confidence (the probability of the given label, lowest first).  Nothing
is relabelled: :func:`write_review_sheet` writes a CSV with an empty ``decision`` column for the
coding round-trip.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

REVIEW_COLUMNS: tuple[str, ...] = (
    "rank", "uid", "thread_id", "source", "origin", "label", "suggested_label", "probability",
    "label_quality", "excerpt", "decision",
)


def label_issues(
    frame: pd.DataFrame, probability: Sequence[float], *, excerpt_chars: int = 200
) -> pd.DataFrame:
    """The rows of ``frame`` (with ``label``) that cleanlab flags given the out-of-fold
    ``probability`` of the positive class, ranked most suspicious first (:data:`REVIEW_COLUMNS`).

    ``excerpt`` is the start of the text (``excerpt_chars``), enough to find the thread."""
    import pandas as pd
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = frame["label"].to_numpy(dtype=np.int64)
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-6, 1 - 1e-6)
    if len(p) != len(y):
        raise ValueError(f"{len(p)} probabilities for {len(y)} labelled rows")
    empty = pd.DataFrame(columns=list(REVIEW_COLUMNS))
    if len(y) == 0 or len(np.unique(y)) < 2 or np.bincount(y, minlength=2).min() < 2:
        return empty
    pred_probs = np.column_stack([1 - p, p])
    ranked = find_label_issues(labels=y, pred_probs=pred_probs, return_indices_ranked_by="self_confidence")
    if len(ranked) == 0:
        return empty
    quality = get_label_quality_scores(y, pred_probs, method="self_confidence")
    rows = frame.iloc[ranked]
    return pd.DataFrame({
        "rank": np.arange(1, len(ranked) + 1),
        "uid": rows["uid"].to_numpy(),
        "thread_id": rows["thread_id"].to_numpy() if "thread_id" in rows else None,
        "source": rows["source"].to_numpy() if "source" in rows else None,
        "origin": rows["origin"].to_numpy() if "origin" in rows else None,
        "label": y[ranked],
        "suggested_label": 1 - y[ranked],
        "probability": p[ranked],
        "label_quality": quality[ranked],
        "excerpt": [str(t)[:excerpt_chars] for t in rows["text"].tolist()],
        "decision": "",
    })[list(REVIEW_COLUMNS)]


def write_review_sheet(issues: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """The review sheet (CSV): one row per suspected label issue, ``decision`` left for the coders
    (keep / flip / unsure)."""
    from secmine import io

    io.write_csv(issues, path)
