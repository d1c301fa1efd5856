"""Can a model tell the labelled sources apart?  A shortcut check.

When positives come mostly from one source (the replication package's coded posts) and negatives
from another (snapshot issues), a classifier can score well by learning where a text comes from
instead of what it says.  :func:`source_probe` trains a *probe* -- TF-IDF + logistic regression on
the model's inputs -- to predict ``source`` among rows of the **same label**, so the label cannot
explain what it finds, on *label-neutral* text: the keywords, which define how some sources were
drawn (security_labels are keyword matches, weak negatives have none), are removed first.  Its
cross-validated balanced accuracy is reported beside chance (0.5 for two sources, 1/k for k): a
probe far above chance means the sources differ in ways a model can exploit, and the per-source
test metrics (:meth:`secmine.detect.train.Comparison.by_source`) show whether the selected model did.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

def mask_keywords(texts: Sequence[str], keywords: Sequence[str]) -> list[str]:
    """``texts`` with every keyword (case-insensitive, also inside words) removed: a placeholder
    token would itself tell the keyword-selected sources apart."""
    words = sorted({k.strip().lower() for k in keywords if k and k.strip()}, key=len, reverse=True)
    if not words:
        return list(texts)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    return [pattern.sub(" ", t) for t in texts]


def source_probe(
    frame: pd.DataFrame,
    *,
    keywords: Sequence[str],
    n_folds: int = 5,
    seed: int = 0,
    min_rows: int = 10,
) -> pd.DataFrame:
    """Per label with rows of two or more sources (each with at least ``min_rows``): the probe's
    grouped cross-validated accuracy and balanced accuracy at telling the sources apart, chance and
    the majority share.  Columns ``label, sources, rows, folds, accuracy, balanced_accuracy, chance,
    majority_share``."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline

    rows = []
    for label in sorted(frame["label"].unique().tolist()):
        part = frame[frame["label"] == label]
        counts = part["source"].value_counts()
        kept = sorted(counts[counts >= min_rows].index.tolist())
        if len(kept) < 2:
            continue
        part = part[part["source"].isin(kept)].reset_index(drop=True)
        y = part["source"].to_numpy()
        groups = part["group"].astype(str).to_numpy()
        folds = int(min(n_folds, counts[kept].min(), len(set(groups))))
        if folds < 2:
            continue
        texts = mask_keywords(part["text"].tolist(), keywords)
        predicted = np.empty(len(part), dtype=object)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
            for fit, val in splitter.split(np.zeros(len(part)), y, groups):
                probe = make_pipeline(
                    TfidfVectorizer(lowercase=True, ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50_000),
                    LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed),
                )
                probe.fit([texts[i] for i in fit], y[fit])
                predicted[val] = probe.predict([texts[i] for i in val])
        rows.append({
            "label": int(label),
            "sources": " vs ".join(f"{s} ({int(counts[s])})" for s in kept),
            "rows": int(len(part)),
            "folds": folds,
            "accuracy": float(accuracy_score(y, predicted)),
            "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
            "chance": 1.0 / len(kept),
            "majority_share": float(counts[kept].max() / counts[kept].sum()),
        })
    return pd.DataFrame(rows, columns=["label", "sources", "rows", "folds", "accuracy", "balanced_accuracy",
                                       "chance", "majority_share"])
