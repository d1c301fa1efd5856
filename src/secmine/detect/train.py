"""The ``train`` stage: a fair comparison of model families and the saved best model.

Every family is searched (Optuna, seeded TPE, budget from params) and scored on the *same* grouped,
stratified folds of the training split (repeated with other seeds when positives are few); the best
parameters are refitted on the whole training split and scored once on the *same* held-out test
split, with bootstrap intervals.  The test split never informs any choice.

What the classifier meets decides how it is chosen and reported (:class:`TrainOptions`):

* **Population.** The paper's classifier is applied to keyword matches, where telling a security
  discussion from a passing mention is the whole difficulty.  With ``population="keyword"`` the
  fold scores that select a family and its parameters, the calibration, the threshold and the
  headline test metrics are computed on keyword-matched rows only; rows without a keyword (e.g. weak
  negatives, easy by construction) are reported apart.  ``train_population="keyword"`` also trains
  on keyword matches only (the paper's design), to compare.
* **Imbalance.** Class weights (``balanced``) in every learning family, a weighted loss for the
  transformer, a weight ``hard_weight`` on hard cases (keyword matches labelled 0) and a decision
  threshold that maximises the primary metric (MCC) on out-of-fold scores; each fold's score is
  taken at the threshold chosen on the *other* folds, so the selection sees no threshold it tuned
  on the same rows.
* **Calibration and prior.** Isotonic (or Platt) calibration fitted on the out-of-fold scores, and
  a target prior (a parameter, or estimated from unlabelled texts by EM) that moves the
  probabilities and the threshold to the population the model is applied to
  (:mod:`secmine.detect.calibration`).
* **Selection that survives few positives.** Fold scores over repeated partitions; the family is
  chosen by the lower bound of the corrected resampled-t interval (Nadeau & Bengio 2003), or -- the
  default -- the strongest family whose paired difference to the best mean is within that interval;
  the report says how sure the choice is.
* **No shortcut through the source.** A probe tells sources apart on label-neutral text
  (:mod:`secmine.detect.probe`) and the test metrics are broken down per source.
* **Label noise.** Confident learning over the out-of-fold probabilities lists the rows most likely
  mislabelled for review (:mod:`secmine.detect.noise`); nothing is relabelled.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from secmine.detect.calibration import (
    CALIBRATION_METHODS,
    Decision,
    estimate_prior_em,
    fit_decision,
    parse_target_prior,
    prior_weights,
    reliability_table,
)
from secmine.detect.metrics import METRICS, SCORE_METRICS, best_threshold, binary_metrics, evaluate_scores
from secmine.detect.models import LLM_FAMILIES, ModelSettings, SecurityModel, get_family, parse_families
from secmine.detect.savedmodel import MODEL_CARD, read_card, write_card  # noqa: F401 - MODEL_CARD kept as API

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.detect.labelled import LabelledSet

DEFAULT_FAMILIES = "keyword,tfidf_logreg,tfidf_svm,embed_logreg,transformer"
FAMILY_LABELS = {
    "keyword": "Keyword baseline",
    "tfidf_logreg": "TF-IDF + logistic regression",
    "tfidf_svm": "TF-IDF + linear SVM",
    "embed_logreg": "Sentence embeddings + logistic regression",
    "transformer": "Fine-tuned transformer",
    "llm_zero_shot": "LLM zero-shot",
    "llm_few_shot": "LLM few-shot",
}
# Prior belief in a family's capacity, strongest first: the "strongest_within" selection picks the
# strongest family that the fold scores cannot tell from the best one.
FAMILY_STRENGTH: tuple[str, ...] = (
    "transformer", "llm_few_shot", "embed_logreg", "tfidf_logreg", "tfidf_svm", "llm_zero_shot", "keyword",
)
POPULATIONS: tuple[str, ...] = ("keyword", "all")
SELECTION_RULES: tuple[str, ...] = ("strongest_within", "lcb", "mean")
AUTO_REPEATS = 5


class TrainError(ValueError):
    """The train options or the labelled set do not allow what was asked; the message says what to change."""


@dataclass(frozen=True)
class TrainOptions:
    """How the train stage selects, calibrates, thresholds and reports; one field per params.yaml
    ``train`` key of the same name."""

    population: str = "keyword"  # rows that select, calibrate, threshold and headline: keyword | all
    train_population: str = "all"  # rows the models learn from: all | keyword (the paper's design)
    split: str = "random"  # held-out test split: random | time | project
    hard_weight: float = 2.0  # training weight of a hard case (keyword match labelled 0)
    weak_weight: float = 1.0  # training weight of a weak negative
    metric: str = "mcc"  # primary metric: selection and threshold
    tune_threshold: bool = True  # False: the fixed settings.threshold (train.threshold)
    calibration: str = "isotonic"  # isotonic | platt | none, fitted on out-of-fold scores
    target_prior: float | str | None = None  # share of positives where the model is applied; "estimate"
    prior_sample: int = 1000  # unlabelled texts scored to estimate the prior
    cv_repeats: int = 0  # partitions of the folds; 0 = auto (AUTO_REPEATS below few_positives, else 1)
    few_positives: int = 30
    selection: str = "strongest_within"  # strongest_within | lcb | mean
    confidence: float = 0.95  # level of the selection interval
    precision_target: float = 0.9  # recall at this precision is reported
    label_noise: bool = True  # confident learning review sheet
    source_probe: bool = True

    def __post_init__(self) -> None:
        from secmine.detect.metrics import THRESHOLD_METRICS
        from secmine.detect.splits import SPLIT_STRATEGIES

        checks = [
            ("population", self.population, POPULATIONS),
            ("train_population", self.train_population, POPULATIONS),
            ("split", self.split, SPLIT_STRATEGIES),
            ("calibration", self.calibration, CALIBRATION_METHODS),
            ("selection", self.selection, SELECTION_RULES),
            ("metric", self.metric, tuple(sorted(THRESHOLD_METRICS))),
        ]
        for name, value, allowed in checks:
            if value not in allowed:
                raise TrainError(f"train.{name}: {value!r} is not one of {', '.join(allowed)}")
        for name in ("hard_weight", "weak_weight"):
            if not float(getattr(self, name)) > 0:
                raise TrainError(f"train.{name} must be positive, got {getattr(self, name)!r}")
        if not 0 < self.precision_target <= 1 or not 0 < self.confidence < 1:
            raise TrainError("train.precision_target must lie in (0, 1] and train.confidence in (0, 1)")
        if self.cv_repeats < 0:
            raise TrainError(f"train.cv_repeats must be 0 (auto) or positive, got {self.cv_repeats}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainOptions:
        """The options of a ``train`` params block (other keys ignored; text converted strictly)."""
        from secmine.stages.contract import convert

        def as_bool(value: Any) -> bool:
            return bool(convert(value, bool, key=f"train.{f.name}", where="train parameters"))

        data: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in params:
                continue
            value = params[f.name]
            if f.name == "target_prior":
                data[f.name] = parse_target_prior(value)
            elif f.name in ("tune_threshold", "label_noise", "source_probe"):
                data[f.name] = as_bool(value)
            elif f.name in ("hard_weight", "weak_weight", "precision_target", "confidence"):
                data[f.name] = float(value)
            elif f.name in ("prior_sample", "cv_repeats", "few_positives"):
                data[f.name] = int(value)
            else:
                data[f.name] = str(value)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FamilyResult:
    """One family's search, cross-validation and test results."""

    family: str
    params: dict[str, Any]
    fold_mcc: list[float]  # primary-metric fold scores (all repeats), eval population, nested threshold
    oof_proba: np.ndarray  # out-of-fold raw scores of the training rows (best trial, first partition)
    test_proba: np.ndarray  # raw scores of the test rows (model refitted on the training split)
    test_metrics: dict[str, Any]  # headline: test rows of the population, with intervals
    cv_metrics: dict[str, float]  # pooled out-of-fold metrics at the stored threshold (population rows)
    trials: pd.DataFrame
    model: SecurityModel
    fit_seconds: float = 0.0
    decision: Decision | None = None
    test_all_metrics: dict[str, Any] = field(default_factory=dict)  # every test row
    oof_repeats: np.ndarray | None = None  # (repeats, training rows) raw out-of-fold scores

    @property
    def cv_mcc(self) -> float:
        values = np.asarray(self.fold_mcc, dtype=np.float64)
        return float(np.nanmean(values)) if np.isfinite(values).any() else 0.0

    @property
    def cv_mcc_sd(self) -> float:
        values = np.asarray(self.fold_mcc, dtype=np.float64)
        values = values[np.isfinite(values)]
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    def probability(self, scores: np.ndarray) -> np.ndarray:
        return self.decision.probability(scores) if self.decision is not None else np.asarray(scores)

    def labels(self, scores: np.ndarray, default_threshold: float = 0.5) -> np.ndarray:
        if self.decision is not None:
            return self.decision.labels(scores)
        return (np.asarray(scores) >= default_threshold).astype(np.int64)


def corrected_interval(scores: Sequence[float], n_folds: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` of fold scores from repeated k-fold cross-validation with the
    corrected resampled-t variance (Nadeau & Bengio 2003; Bouckaert & Frank 2004):
    ``var = (1/J + 1/(k-1)) s^2`` over the J finite scores, Student t with J-1 degrees of freedom."""
    from scipy import stats

    values = np.asarray(scores, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return 0.0, float("nan"), float("nan")
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    ratio = 1.0 / max(1, n_folds - 1)
    se = math.sqrt((1.0 / len(values) + ratio) * float(np.var(values, ddof=1)))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, len(values) - 1)) * se
    return mean, mean - half, mean + half


@dataclass
class Comparison:
    """All families' results on one labelled set with its splits."""

    labelled: pd.DataFrame  # with split, fold and keyword_match
    results: dict[str, FamilyResult]
    settings: ModelSettings
    notes: list[str] = field(default_factory=list)
    options: TrainOptions = field(default_factory=TrainOptions)
    selected: str | None = None
    selection: dict[str, Any] = field(default_factory=dict)  # the rule, intervals and how sure
    population: str = "keyword"  # the population actually used (falls back to all, see notes)
    repeats: int = 1
    prior: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> FamilyResult:
        """The selected family (:attr:`selected`); without one, the highest mean fold score."""
        if self.selected is not None:
            return self.results[self.selected]
        return max(self.results.values(), key=lambda r: r.cv_mcc)

    def _train_test(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        train = self.labelled[self.labelled["split"] == "train"].reset_index(drop=True)
        test = self.labelled[self.labelled["split"] == "test"].reset_index(drop=True)
        return train, test

    def population_mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of ``frame`` in the population the comparison selects and reports on."""
        if self.population == "keyword":
            return frame["keyword_match"].to_numpy(dtype=bool)
        return np.ones(len(frame), dtype=bool)

    def table(self) -> pd.DataFrame:
        """The comparison table: CV score (mean, sd, corrected interval) and test metrics with 95%
        intervals on the population's test rows, and MCC on every test row."""
        import pandas as pd

        rows = []
        best = self.best.family
        intervals = self.selection.get("families", {})
        for family, result in self.results.items():
            stats = intervals.get(family, {})
            row: dict[str, Any] = {
                "model": FAMILY_LABELS.get(family, family),
                "family": family,
                "selected": family == best,
                "cv_mcc": result.cv_mcc,
                "cv_mcc_sd": result.cv_mcc_sd,
                "cv_mcc_lo": stats.get("low", float("nan")),
                "cv_mcc_hi": stats.get("high", float("nan")),
                "threshold": result.decision.threshold if result.decision else self.settings.threshold,
                "probability_threshold": result.decision.probability_threshold if result.decision else float("nan"),
            }
            for metric in (*METRICS, *SCORE_METRICS):
                for suffix in ("", "_lo", "_hi"):
                    value = result.test_metrics.get(f"{metric}{suffix}")
                    row[f"test_{metric}{suffix}"] = float("nan") if value is None else value
            row["test_n"] = result.test_metrics["n"]
            row["test_positives"] = result.test_metrics["positives"]
            for suffix in ("", "_lo", "_hi"):
                row[f"test_all_mcc{suffix}"] = result.test_all_metrics.get(f"mcc{suffix}", float("nan"))
            row["trials"] = len(result.trials)
            row["params"] = json.dumps(_public_params(result.params), sort_keys=True)
            rows.append(row)
        return pd.DataFrame(rows)

    def display_table(self) -> pd.DataFrame:
        """A compact table for Markdown/LaTeX: value [lo, hi] per test metric."""
        import pandas as pd

        table = self.table()
        scope = "keyword-matched" if self.population == "keyword" else "all"

        def cell(frame: pd.DataFrame, name: str) -> list[str]:
            return [("n/a" if not np.isfinite(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]")
                    for v, lo, hi in zip(frame[name], frame[f"{name}_lo"], frame[f"{name}_hi"], strict=True)]

        out = pd.DataFrame({
            "Model": [m + (" (selected)" if s else "") for m, s in zip(table["model"], table["selected"], strict=True)],
            "CV MCC": [f"{m:.3f} ± {s:.3f}" for m, s in zip(table["cv_mcc"], table["cv_mcc_sd"], strict=True)],
        })
        names = {"mcc": "MCC", "f1": "F1", "precision": "Precision", "recall": "Recall", "accuracy": "Accuracy",
                 "g_measure": "G-measure", "pr_auc": "PR-AUC", "roc_auc": "ROC-AUC",
                 "recall_at_precision": f"Recall@P{self.options.precision_target:g}", "brier": "Brier"}
        for metric in (*METRICS, *SCORE_METRICS):
            out[f"Test {names[metric]} ({scope})"] = cell(table, f"test_{metric}")
        if self.population != "all":
            out["Test MCC (all rows)"] = cell(table, "test_all_mcc")
        return out

    def by_source(self) -> pd.DataFrame:
        """Test metrics per labelled source, per family (at each family's stored threshold): does a
        model only learn the source?  ``accuracy`` per source and label as before, and per source
        the recall, specificity and MCC where the source holds both labels."""
        import pandas as pd

        _, test = self._train_test()
        y = test["label"].to_numpy(dtype=np.int64)
        rows = []
        for family, result in self.results.items():
            predicted = result.labels(result.test_proba, self.settings.threshold)
            for (source, label), index in test.groupby(["source", "label"], sort=True).groups.items():
                positions = np.asarray(list(index))
                part = test.iloc[positions]
                rows.append({
                    "family": family, "source": source, "label": int(label), "n": len(positions),
                    "keyword_matched": int(part["keyword_match"].sum()) if "keyword_match" in part else 0,
                    "accuracy": float(np.mean(predicted[positions] == y[positions])),
                })
        return pd.DataFrame(rows)

    def source_metrics(self) -> pd.DataFrame:
        """Per family and source: test rows, positives, recall, specificity and MCC (NaN where a
        source holds one label only)."""
        import pandas as pd

        _, test = self._train_test()
        y = test["label"].to_numpy(dtype=np.int64)
        rows = []
        for family, result in self.results.items():
            predicted = result.labels(result.test_proba, self.settings.threshold)
            for source, index in test.groupby("source", sort=True).groups.items():
                positions = np.asarray(list(index))
                yt, yp = y[positions], predicted[positions]
                both = 0 < yt.sum() < len(yt)
                m = binary_metrics(yt, yp)
                negatives = yt == 0
                rows.append({
                    "family": family, "source": source, "n": len(positions), "positives": int(yt.sum()),
                    "recall": m["recall"] if yt.any() else float("nan"),
                    "specificity": float(np.mean(yp[negatives] == 0)) if negatives.any() else float("nan"),
                    "mcc": m["mcc"] if both else float("nan"),
                })
        return pd.DataFrame(rows)

    def population_metrics(self) -> pd.DataFrame:
        """Per family: test metrics on keyword-matched rows, on rows without a keyword (the easy weak
        negatives, reported apart) and on all rows."""
        import pandas as pd

        _, test = self._train_test()
        y = test["label"].to_numpy(dtype=np.int64)
        keyword = test["keyword_match"].to_numpy(dtype=bool)
        rows = []
        for family, result in self.results.items():
            predicted = result.labels(result.test_proba, self.settings.threshold)
            for name, mask in (("keyword match", keyword), ("no keyword match", ~keyword),
                               ("all", np.ones(len(y), dtype=bool))):
                if not mask.any():
                    continue
                yt, yp = y[mask], predicted[mask]
                m = binary_metrics(yt, yp)
                both = 0 < yt.sum() < len(yt)
                rows.append({
                    "family": family, "rows": name, "n": int(mask.sum()), "positives": int(yt.sum()),
                    "mcc": m["mcc"] if both else float("nan"),
                    "recall": m["recall"] if yt.any() else float("nan"),
                    "specificity": float(np.mean(yp[yt == 0] == 0)) if (yt == 0).any() else float("nan"),
                    "precision": m["precision"] if yp.any() else float("nan"),
                })
        return pd.DataFrame(rows)

    def selection_table(self) -> pd.DataFrame:
        """Per family: fold scores (mean, sd, corrected interval), the paired difference to the
        selected family and the share of folds it wins."""
        import pandas as pd

        stats = self.selection.get("families", {})
        rows = [{"family": f, **{k: v for k, v in s.items() if k != "scores"}} for f, s in stats.items()]
        return pd.DataFrame(rows)

    def predictions(self) -> pd.DataFrame:
        """Out-of-fold (training rows) and test scores of every family, one row per row x family:
        ``probability`` is the raw model score, ``calibrated`` the card's probability."""
        import pandas as pd

        train, test = self._train_test()
        frames = []
        for family, result in self.results.items():
            for part, proba in ((train, result.oof_proba), (test, result.test_proba)):
                scores = np.asarray(proba, dtype=np.float64)
                frames.append(
                    pd.DataFrame(
                        {
                            "uid": part["uid"].to_numpy(),
                            "split": part["split"].to_numpy(),
                            "fold": part["fold"].to_numpy(),
                            "source": part["source"].to_numpy(),
                            "keyword_match": part["keyword_match"].to_numpy(dtype=bool),
                            "label": part["label"].to_numpy(),
                            "family": family,
                            "probability": scores,
                            "calibrated": result.probability(scores),
                            "predicted": result.labels(scores, self.settings.threshold),
                        }
                    )
                )
        return pd.concat(frames, ignore_index=True)


def _public_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params for tables and JSON: floats rounded to 6 significant digits."""
    out = {}
    for key, value in params.items():
        if isinstance(value, float):
            value = float(f"{value:.6g}")
        out[key] = value
    return out


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    if isinstance(value, np.generic):
        return _round(value.item())
    return value


def fold_scores(
    oof: np.ndarray,
    labels: np.ndarray,
    folds: list[tuple[list[int], list[int]]],
    eval_mask: np.ndarray,
    *,
    metric: str = "mcc",
    tune_threshold: bool = True,
    threshold: float = 0.5,
    target_prior: float | None = None,
) -> list[float]:
    """The primary metric of each fold on its population rows, at the threshold chosen on the
    population rows of the *other* folds (nested: no fold is scored at a threshold tuned on it);
    ``tune_threshold=False`` scores every fold at ``threshold``.  NaN for a fold whose population
    rows hold one label only."""
    scores = []
    for fit_idx, val_idx in folds:
        fit = np.asarray(fit_idx, dtype=np.int64)
        val = np.asarray(val_idx, dtype=np.int64)
        fit, val = fit[eval_mask[fit]], val[eval_mask[val]]
        y = labels[val]
        if len(val) == 0 or len(np.unique(y)) < 2:
            scores.append(float("nan"))
            continue
        cut = threshold
        if tune_threshold and len(np.unique(labels[fit])) == 2:
            cut = best_threshold(labels[fit], oof[fit], metric=metric,
                                 sample_weight=prior_weights(labels[fit], target_prior))
        predicted = (oof[val] >= cut).astype(np.int64)
        scores.append(binary_metrics(y, predicted, sample_weight=prior_weights(y, target_prior))[metric])
    return scores


class FoldCache:
    """Finished fold fits of the search, kept between runs: a killed ``secmine train`` (or ``dvc repro``
    of the train stage) resumes without refitting the folds it finished.

    One fit (a family's model with one trial's params, fitted on a fold's fit rows) is keyed by a
    SHA-256 of the labelled data it sees (texts, labels, weights, the rows it may learn from), the
    model settings, the family, the params and the fold's rows; its validation scores are a Parquet
    file ``<family>-<key>.parquet`` (columns ``position``, ``score``; float64, so a reused score is
    the computed one bit for bit).  The seeded Optuna study is replayed: the same scores give the same
    suggestions, so every finished trial and fold is found again, and the final model and reports
    equal an uninterrupted run's.  :meth:`prune` removes the fits a completed run did not use."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.used: set[str] = set()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def data_key(texts: Sequence[str], labels: np.ndarray, weights: np.ndarray | None, fit_mask: np.ndarray,
                 settings: ModelSettings) -> str:
        import hashlib

        digest = hashlib.sha256()
        for text in texts:
            digest.update(hashlib.sha1(text.encode("utf-8")).digest())
        digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
        digest.update(b"w" + (np.ascontiguousarray(weights, dtype=np.float64).tobytes() if weights is not None else b""))
        digest.update(np.ascontiguousarray(fit_mask, dtype=bool).tobytes())
        kept = {k: v for k, v in settings.to_dict().items() if k != "progress"}
        digest.update(json.dumps(kept, sort_keys=True, default=str).encode())
        return digest.hexdigest()

    def key(self, data_key: str, family: str, params: dict[str, Any], fit: np.ndarray, val: np.ndarray) -> str:
        import hashlib

        digest = hashlib.sha256(data_key.encode())
        digest.update(family.encode() + b"\0")
        digest.update(json.dumps(params, sort_keys=True, default=str).encode())
        digest.update(np.ascontiguousarray(fit, dtype=np.int64).tobytes() + b"|")
        digest.update(np.ascontiguousarray(val, dtype=np.int64).tobytes())
        return f"{family}-{digest.hexdigest()[:24]}"

    def get(self, name: str, val: np.ndarray) -> np.ndarray | None:
        import pyarrow.parquet as pq

        self.used.add(name)
        path = self.folder / f"{name}.parquet"
        if not path.is_file():
            self.misses += 1
            return None
        try:
            table = pq.read_table(path)
            positions = table.column("position").to_numpy()
            scores = table.column("score").to_numpy()
        except Exception:  # noqa: BLE001 - an unreadable entry is refitted
            self.misses += 1
            return None
        if not np.array_equal(positions, val):
            self.misses += 1
            return None
        self.hits += 1
        return np.asarray(scores, dtype=np.float64)

    def put(self, name: str, val: np.ndarray, scores: np.ndarray) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from secmine import io

        table = pa.table({"position": pa.array(np.asarray(val, dtype=np.int64)),
                          "score": pa.array(np.asarray(scores, dtype=np.float64))})
        with io.atomic_path(self.folder / f"{name}.parquet") as tmp:
            pq.write_table(table, tmp)

    def prune(self) -> int:
        """Remove the entries this run did not use (after a complete run); returns how many."""
        removed = 0
        for path in self.folder.glob("*.parquet"):
            if path.stem not in self.used:
                path.unlink()
                removed += 1
        return removed


def search_family(
    family: str,
    texts: Sequence[str],
    labels: np.ndarray,
    folds: list[tuple[list[int], list[int]]] | list[list[tuple[list[int], list[int]]]],
    settings: ModelSettings,
    *,
    n_trials: int = 1,
    sample_weight: np.ndarray | None = None,
    fit_mask: np.ndarray | None = None,
    eval_mask: np.ndarray | None = None,
    metric: str = "mcc",
    tune_threshold: bool = False,
    target_prior: float | None = None,
    cache: FoldCache | None = None,
) -> tuple[dict[str, Any], list[float], np.ndarray, pd.DataFrame]:
    """Optuna search of one family on the folds: ``(best params, fold scores, out-of-fold scores of
    each partition (repeats x rows), trials)``.

    ``folds`` is one partition (a list of ``(fit, validation)`` positions) or several (repeated
    cross-validation).  Models learn from the ``fit_mask`` rows of each fold's fit part (weighted by
    ``sample_weight``) and score every validation row; a fold is scored (:func:`fold_scores`) on
    its ``eval_mask`` rows.  The objective is the mean fold score; the family's defaults are the
    first trial.  ``cache``: finished fold fits are read from and written to it (:class:`FoldCache`)."""
    import optuna
    import pandas as pd

    cls = get_family(family)
    labels = np.asarray(labels, dtype=np.int64)
    texts = list(texts)
    n = len(texts)
    partitions = [folds] if folds and isinstance(folds[0], tuple) else list(folds)  # type: ignore[list-item]
    fit_mask = np.ones(n, dtype=bool) if fit_mask is None else np.asarray(fit_mask, dtype=bool)
    eval_mask = np.ones(n, dtype=bool) if eval_mask is None else np.asarray(eval_mask, dtype=bool)
    outcomes: dict[int, tuple[dict[str, Any], list[float], np.ndarray]] = {}
    data_key = (FoldCache.data_key(texts, labels, sample_weight, fit_mask, settings)
                if cache is not None and cls.trainable else "")

    def evaluate(params: dict[str, Any], trial: optuna.Trial | None) -> float:
        oof = np.full((len(partitions), n), np.nan)
        scores: list[float] = []
        shared = None if cls.trainable else cls(params, settings).predict_proba(texts)
        for r, partition in enumerate(partitions):
            for fit_idx, val_idx in partition:
                if shared is not None:
                    oof[r, val_idx] = shared[val_idx]
                    continue
                fit = np.asarray(fit_idx, dtype=np.int64)
                fit = fit[fit_mask[fit]]
                val = np.asarray(val_idx, dtype=np.int64)
                name = cache.key(data_key, family, params, fit, val) if cache is not None else ""
                done = cache.get(name, val) if cache is not None else None
                if done is not None:
                    oof[r, val_idx] = done
                    continue
                weights = None if sample_weight is None else sample_weight[fit]
                model = cls(params, settings).fit([texts[i] for i in fit], labels[fit], sample_weight=weights)
                oof[r, val_idx] = model.predict_proba([texts[i] for i in val_idx])
                if cache is not None:
                    cache.put(name, val, oof[r, val_idx])
            scores.extend(fold_scores(oof[r], labels, partition, eval_mask, metric=metric,
                                      tune_threshold=tune_threshold, threshold=settings.threshold,
                                      target_prior=target_prior))
            value = float(np.nanmean(scores)) if np.isfinite(scores).any() else 0.0
            if trial is not None:
                trial.report(value, r)
                if r < len(partitions) - 1 and trial.should_prune():
                    raise optuna.TrialPruned()
        outcomes[trial.number if trial is not None else 0] = (params, scores, oof)
        return float(np.nanmean(scores)) if np.isfinite(scores).any() else 0.0

    if not cls.searchable:
        params = cls.default_params(settings)
        value = evaluate(params, None)
        params, scores, oof = outcomes[0]
        trials = pd.DataFrame([{"trial": 0, "state": "COMPLETE", "cv_mcc": value, "params": json.dumps(_public_params(params), sort_keys=True)}])
        return params, scores, oof, trials

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=settings.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        study_name=family,
    )
    study.enqueue_trial(cls.initial_trial(settings))
    study.optimize(lambda trial: evaluate(cls.suggest(trial, settings), trial), n_trials=max(1, int(n_trials)))
    best = study.best_trial
    params, scores, oof = outcomes[best.number]
    trials = pd.DataFrame(
        [
            {
                "trial": t.number,
                "state": t.state.name,
                "cv_mcc": t.value if t.value is not None else float("nan"),
                "params": json.dumps(_public_params(outcomes[t.number][0]), sort_keys=True)
                if t.number in outcomes
                else json.dumps(_public_params(t.params), sort_keys=True),
            }
            for t in study.trials
        ]
    )
    return params, scores, oof, trials


def training_weights(frame: pd.DataFrame, options: TrainOptions) -> np.ndarray:
    """A weight per row for learning: ``hard_weight`` for hard cases (keyword matches labelled 0,
    not weak), ``weak_weight`` for weak negatives, 1 otherwise (class balance is each family's
    ``class_weight``)."""
    w = np.ones(len(frame), dtype=np.float64)
    weak = frame["weak"].to_numpy(dtype=bool) if "weak" in frame.columns else np.zeros(len(frame), dtype=bool)
    hard = frame["keyword_match"].to_numpy(dtype=bool) & (frame["label"].to_numpy() == 0) & ~weak
    w[hard] *= float(options.hard_weight)
    w[weak] *= float(options.weak_weight)
    return w


def select_family(
    results: dict[str, FamilyResult], *, rule: str = "strongest_within", n_folds: int, confidence: float = 0.95
) -> tuple[str, dict[str, Any]]:
    """``(selected family, report)`` from the fold scores every family got on the same folds.

    ``mean``: the highest mean.  ``lcb``: the highest lower bound of the corrected interval.
    ``strongest_within``: among the families whose paired difference to the best mean is not
    significant (its corrected interval reaches 0), the strongest by :data:`FAMILY_STRENGTH`.
    The report has each family's mean, sd and interval, its paired difference to the selected one,
    the share of folds the selected family wins, and ``sure``: whether the selected family's paired
    difference to the runner-up (best mean of the others) lies above 0."""
    if rule not in SELECTION_RULES:
        raise TrainError(f"train.selection: {rule!r} is not one of {', '.join(SELECTION_RULES)}")
    names = list(results)
    scores = {f: np.asarray(results[f].fold_mcc, dtype=np.float64) for f in names}
    stats: dict[str, dict[str, Any]] = {}
    for f in names:
        mean, low, high = corrected_interval(scores[f], n_folds, confidence)
        finite = scores[f][np.isfinite(scores[f])]
        stats[f] = {"mean": mean, "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0,
                    "low": low, "high": high, "folds": int(len(finite))}
    best_mean = max(names, key=lambda f: stats[f]["mean"])

    def paired(a: str, b: str) -> tuple[float, float, float]:
        return corrected_interval(scores[a] - scores[b], n_folds, confidence)

    if rule == "mean":
        selected = best_mean
    elif rule == "lcb":
        selected = max(names, key=lambda f: stats[f]["low"] if math.isfinite(stats[f]["low"]) else -math.inf)
    else:
        within = [f for f in names if f == best_mean or not paired(best_mean, f)[1] > 0]
        rank = {f: i for i, f in enumerate(FAMILY_STRENGTH)}
        selected = min(within, key=lambda f: (rank.get(f, len(rank)), names.index(f)))
    for f in names:
        diff, lo, hi = paired(selected, f) if f != selected else (0.0, 0.0, 0.0)
        stats[f].update({"diff_to_selected": -diff, "diff_low": -hi, "diff_high": -lo})
    others = [f for f in names if f != selected]
    report: dict[str, Any] = {"rule": rule, "confidence": confidence, "selected": selected, "best_mean": best_mean,
                              "families": stats}
    if others:
        runner = max(others, key=lambda f: stats[f]["mean"])
        diff, lo, hi = paired(selected, runner)
        stacked = np.vstack([scores[f] for f in names])
        finite = np.isfinite(stacked).all(axis=0)
        wins = stacked[names.index(selected), finite] >= np.max(stacked[:, finite], axis=0) - 1e-12
        report.update({
            "runner_up": runner, "difference": diff, "difference_low": lo, "difference_high": hi,
            "win_share": float(wins.mean()) if finite.any() else float("nan"),
            "sure": bool(math.isfinite(lo) and lo > 0),
        })
        word = "sure" if report["sure"] else "not sure"
        report["summary"] = (
            f"{selected} selected ({rule}); fold-score difference to the runner-up {runner}: {diff:+.3f} "
            f"[{lo:+.3f}, {hi:+.3f}] ({confidence:.0%} corrected resampled-t, {stats[selected]['folds']} fold scores); "
            f"it wins {report['win_share']:.0%} of the folds: {word} the choice is right"
        )
    else:
        report.update({"sure": False, "summary": f"{selected}: the only family compared"})
    return selected, report


def compare(
    labelled: pd.DataFrame,
    *,
    families: str | Sequence[str] = DEFAULT_FAMILIES,
    settings: ModelSettings | None = None,
    n_trials: int = 10,
    transformer_trials: int = 1,
    n_boot: int = 1000,
    log: Any = print,
    options: TrainOptions | None = None,
    unlabelled_texts: Sequence[str] | None = None,
    cache: FoldCache | None = None,
) -> Comparison:
    """Search, cross-validate, select, calibrate, threshold, refit and test every family on
    ``labelled`` (with ``split``/``fold``; ``keyword_match`` is added when missing).  ``cache``:
    finished fold fits (:class:`FoldCache`, a killed run resumes).

    ``unlabelled_texts``: texts of the population the model is applied to, for
    ``options.target_prior == "estimate"``."""
    from secmine.detect.labelled import mark_keyword_match
    from secmine.detect.splits import check_no_leakage, repeated_folds

    settings = settings or ModelSettings()
    options = options or TrainOptions()
    names = parse_families(list(families) if not isinstance(families, str) else families)
    notes: list[str] = []
    if not settings.llm_base_url:
        skipped = [n for n in names if n in LLM_FAMILIES]
        if skipped:
            notes.append(f"skipped {', '.join(skipped)}: no LLM endpoint configured (llm_base_url)")
        names = [n for n in names if n not in LLM_FAMILIES]
    if not names:
        raise ValueError("no model family to compare")
    if "keyword_match" not in labelled.columns:
        labelled = mark_keyword_match(labelled, keywords=settings.keywords, word_boundary=settings.word_boundary)
    check_no_leakage(labelled)
    train = labelled[labelled["split"] == "train"].reset_index(drop=True)
    test = labelled[labelled["split"] == "test"].reset_index(drop=True)
    train_texts, train_labels = train["text"].tolist(), train["label"].to_numpy(dtype=np.int64)
    test_texts, test_labels = test["text"].tolist(), test["label"].to_numpy(dtype=np.int64)
    train_kw, test_kw = train["keyword_match"].to_numpy(dtype=bool), test["keyword_match"].to_numpy(dtype=bool)

    population = options.population
    if population == "keyword" and (len(np.unique(train_labels[train_kw])) < 2 or len(np.unique(test_labels[test_kw])) < 2):
        notes.append("population 'keyword': the keyword-matched training or test rows hold one label only; "
                     "selection, calibration, threshold and the headline metrics use all rows")
        population = "all"
    eval_mask = train_kw if population == "keyword" else np.ones(len(train), dtype=bool)
    test_mask = test_kw if population == "keyword" else np.ones(len(test), dtype=bool)
    fit_mask = train_kw if options.train_population == "keyword" else np.ones(len(train), dtype=bool)
    if len(np.unique(train_labels[fit_mask])) < 2:
        raise TrainError("train.train_population 'keyword': the keyword-matched training rows hold one label only; "
                         "use train_population: all")
    weights = training_weights(train, options)
    positives = int(train_labels[eval_mask].sum())
    repeats = options.cv_repeats or (AUTO_REPEATS if positives < options.few_positives else 1)
    partitions = repeated_folds(labelled, repeats=repeats, seed=settings.seed, strategy=options.split)
    n_folds = len(partitions[0])
    if repeats > 1:
        notes.append(f"{positives} positive training rows in the population: folds repeated {repeats} times "
                     f"({repeats * n_folds} fold scores per family)")
    numeric_prior = options.target_prior if isinstance(options.target_prior, float) else None
    searched: dict[str, tuple[dict[str, Any], list[float], np.ndarray, pd.DataFrame, SecurityModel, np.ndarray, float]] = {}
    for family in names:
        budget = transformer_trials if family == "transformer" else n_trials
        started = time.perf_counter()
        params, scores, oof, trials = search_family(
            family, train_texts, train_labels, partitions, settings, n_trials=budget, sample_weight=weights,
            fit_mask=fit_mask, eval_mask=eval_mask, metric=options.metric, tune_threshold=options.tune_threshold,
            target_prior=numeric_prior, cache=cache,
        )
        cls = get_family(family)
        model = cls(params, settings).fit([train_texts[i] for i in np.flatnonzero(fit_mask)], train_labels[fit_mask],
                                          sample_weight=weights[fit_mask])
        test_proba = np.asarray(model.predict_proba(test_texts), dtype=np.float64)
        elapsed = time.perf_counter() - started
        searched[family] = (params, scores, oof, trials, model, test_proba, elapsed)
        finite = [s for s in scores if math.isfinite(s)]
        log(f"{family}: CV {options.metric.upper()} {np.mean(finite) if finite else float('nan'):.3f} over "
            f"{len(finite)} fold score(s) ({len(trials)} trial(s), {elapsed:.0f} s)")

    # placeholder results (no decision yet) to select on the fold scores
    results = {f: FamilyResult(f, v[0], v[1], v[2][0], v[5], {}, {}, v[3], v[4], v[6], oof_repeats=v[2])
               for f, v in searched.items()}
    selected, selection = select_family(results, rule=options.selection, n_folds=n_folds, confidence=options.confidence)
    log(selection["summary"])

    prior_source, target_prior = ("param", numeric_prior) if numeric_prior is not None else ("none", None)
    prior_info: dict[str, Any] = {"requested": options.target_prior, "source": prior_source, "target_prior": target_prior}
    if options.target_prior == "estimate":
        if unlabelled_texts:
            best = results[selected]
            base = fit_decision(best.oof_proba[eval_mask], train_labels[eval_mask], calibration=options.calibration,
                                metric=options.metric, tune_threshold=False)
            scores = np.asarray(best.model.predict_proba(list(unlabelled_texts)), dtype=np.float64)
            target_prior = estimate_prior_em(base.calibrator.apply(scores), base.train_prior)
            prior_source = "estimated"
            prior_info.update(source="estimated", target_prior=target_prior, unlabelled=len(unlabelled_texts),
                              estimated_with=selected, labelled_prior=base.train_prior)
            log(f"target prior estimated by EM on {len(unlabelled_texts)} unlabelled texts with {selected}: "
                f"{target_prior:.3f} (labelled {base.train_prior:.3f})")
        else:
            notes.append("train.target_prior 'estimate': no unlabelled texts given; probabilities keep the labelled prior")
            prior_info["source"] = "none"

    for family, result in results.items():
        decision = fit_decision(result.oof_proba[eval_mask], train_labels[eval_mask], calibration=options.calibration,
                                metric=options.metric, target_prior=target_prior, prior_source=prior_source,
                                tune_threshold=options.tune_threshold, default_threshold=settings.threshold)
        result.decision = decision
        probability = decision.probability(result.test_proba)
        predicted = decision.labels(result.test_proba)
        result.test_metrics = evaluate_scores(test_labels[test_mask], probability[test_mask], predicted[test_mask],
                                              n_boot=n_boot, seed=settings.seed,
                                              precision_target=options.precision_target)
        result.test_all_metrics = evaluate_scores(test_labels, probability, predicted, n_boot=n_boot,
                                                  seed=settings.seed, precision_target=options.precision_target)
        result.cv_metrics = binary_metrics(train_labels[eval_mask], decision.labels(result.oof_proba[eval_mask]))
        m = result.test_metrics
        log(f"{family}: threshold {decision.threshold:.4g} (probability {decision.probability_threshold:.3f}); "
            f"test MCC {m['mcc']:.3f} [{m['mcc_lo']:.3f}, {m['mcc_hi']:.3f}] on {m['n']} {population} rows "
            f"({m['positives']} positive), all rows {result.test_all_metrics['mcc']:.3f}")
    return Comparison(labelled, results, settings, notes, options=options, selected=selected, selection=selection,
                      population=population, repeats=repeats, prior=prior_info)


# -- saving ------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("secmine", "scikit-learn", "torch", "transformers", "sentence-transformers", "optuna", "cleanlab"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "absent"
    return out


def card_additions(comparison: Comparison, result: FamilyResult) -> dict[str, Any]:
    """The model card's keys for how the model decides and how sure the choice was -- plain keys
    of the card: ``threshold`` (raw score), ``calibration``, ``prior``, ``decision`` (see
    :mod:`secmine.detect.calibration`), ``population``, ``selection`` (rule, intervals, how sure)
    and ``rare_class_metrics`` (PR-AUC, ROC-AUC, recall at the precision target, Brier, g-measure
    with intervals, on the population's test rows)."""
    options = comparison.options
    decision = result.decision or fit_decision([], [], calibration="none", tune_threshold=False,
                                               default_threshold=comparison.settings.threshold)
    out = decision.card()
    out["prior"] = {**out["prior"], **{k: v for k, v in comparison.prior.items() if k not in out["prior"]}}
    out["population"] = {
        "selected_calibrated_and_reported_on": comparison.population,
        "requested": options.population,
        "trained_on": options.train_population,
        "hard_weight": options.hard_weight,
        "weak_weight": options.weak_weight,
        "split": options.split,
        "repeats": comparison.repeats,
    }
    selection = {k: v for k, v in comparison.selection.items() if k != "families"}
    selection["families"] = {f: {k: v for k, v in s.items()} for f, s in comparison.selection.get("families", {}).items()}
    selection["fold_scores"] = [float(v) for v in result.fold_mcc]
    out["selection"] = _round(selection)
    names = [*SCORE_METRICS, "g_measure"]
    rare = {f"{n}{s}": result.test_metrics.get(f"{n}{s}") for n in names for s in ("", "_lo", "_hi")}
    rare.update(precision_target=options.precision_target, n=result.test_metrics["n"],
                positives=result.test_metrics["positives"], rows=comparison.population)
    out["rare_class_metrics"] = _round(rare)
    return out


def model_card(comparison: Comparison, result: FamilyResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metadata saved beside a model: family, params, threshold, metrics, data, versions."""
    labelled = comparison.labelled
    card: dict[str, Any] = {
        "family": result.family,
        "model": FAMILY_LABELS.get(result.family, result.family),
        "params": result.params,
        "settings": comparison.settings.to_dict(),
        "threshold": comparison.settings.threshold,
        "positive_label": "security",
        "selected_by": f"{comparison.options.selection} over the fold scores ({comparison.options.metric}, "
                       f"{comparison.population} rows, threshold chosen on the other folds) of the shared folds",
        "metrics": {
            "cv": {"mcc_mean": result.cv_mcc, "mcc_sd": result.cv_mcc_sd, "fold_mcc": result.fold_mcc,
                   "pooled": result.cv_metrics, "metric": comparison.options.metric},
            "test": result.test_metrics,
            "test_all": result.test_all_metrics,
        },
        "data": {
            "rows": int(len(labelled)),
            "train_rows": int((labelled["split"] == "train").sum()),
            "test_rows": int((labelled["split"] == "test").sum()),
            "positives": int(labelled["label"].sum()),
            "keyword_rows": int(labelled["keyword_match"].sum()) if "keyword_match" in labelled else None,
            "weak_rows": int(labelled["weak"].sum()) if "weak" in labelled else 0,
            "folds": int(labelled.loc[labelled["split"] == "train", "fold"].nunique()),
            "sources": {str(k): int(v) for k, v in labelled["source"].value_counts().sort_index().items()}
            if "source" in labelled
            else {},
        },
        "text": {
            "representation": "secmine.text.canonical_text: title, body and comments flattened, "
            "whitespace folded, cut at max_chars",
            "max_chars": int((extra or {}).get("max_chars", 0)) or None,
        },
        "trained_on": "training split only (the test split is held out)",
        "versions": _versions(),
        **result.model.describe(),
    }
    card.update(card_additions(comparison, result))
    card["metrics"] = _round(card["metrics"])
    if extra:
        card.update({k: v for k, v in extra.items() if k != "max_chars"})
    return card


def save_model(
    model: SecurityModel,
    directory: str | os.PathLike[str],
    card: dict[str, Any],
    *,
    validation: tuple[Sequence[str], Sequence[int], Sequence[float]] | None = None,
    engine_tolerance: float = 0.01,
    log: Any = print,
) -> Path:
    """Replace ``directory`` with the model's files and ``model_card.json`` (atomically: a sibling
    temporary folder is renamed into place; this process is its only writer).

    A transformer is also exported to ONNX (``onnx/``, see :mod:`secmine.detect.engine`); with
    ``validation`` = ``(texts, labels, PyTorch probabilities)`` of held-out rows, every engine is
    scored on them and the card records the engine ``secmine classify --engine auto`` runs.
    The layout and the card are :mod:`secmine.detect.savedmodel`'s.
    """
    from secmine.detect.engine import EngineError, export_engines, onnxruntime_available, validate_engines
    from secmine.io import atomic_dir

    card = dict(card)
    with atomic_dir(directory) as staging:
        model.save(staging)
        if model.family == "transformer" and onnxruntime_available():
            try:
                card["engine_export"] = export_engines(model.model, model.tokenizer, staging,
                                                       max_length=int(model.params["max_length"]))
            except EngineError as exc:
                card["engine_export"] = {"error": str(exc)}
                log(f"no ONNX engines: {exc}")
            if validation is not None and "error" not in card["engine_export"]:
                texts, labels, reference = validation
                card["engines"] = validate_engines(
                    staging, card, list(texts), labels, reference, tolerance=engine_tolerance,
                    num_threads=int(model.settings.num_threads) or 2,
                )
                log(f"engines on {len(texts)} held-out texts: " + ", ".join(
                    f"{e} MCC {card['engines'][e]['mcc']:.3f}" for e in ("torch", "onnx", "onnx-int8"))
                    + f"; recommended {card['engines']['recommended']}")
        write_card(staging, card)
    return Path(directory)


def comparison_figure(comparison: Comparison) -> Any:
    """Test MCC with its 95% bootstrap interval and the cross-validated MCC (mean ± sd) per model."""
    import matplotlib.pyplot as plt

    table = comparison.table()
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(table) + 1.4))
    y = np.arange(len(table))[::-1]
    ax.errorbar(
        table["test_mcc"], y + 0.12,
        xerr=[table["test_mcc"] - table["test_mcc_lo"], table["test_mcc_hi"] - table["test_mcc"]],
        fmt="o", color="tab:blue", capsize=3, label="test MCC (95% bootstrap CI)",
    )
    ax.errorbar(table["cv_mcc"], y - 0.12, xerr=table["cv_mcc_sd"], fmt="s", color="tab:orange", capsize=3,
                label="cross-validated MCC (mean ± sd)")
    labels = [m + (" *" if s else "") for m, s in zip(table["model"], table["selected"], strict=True)]
    ax.set_yticks(y, labels)
    ax.set_xlabel("Matthews correlation coefficient")
    ax.set_xlim(min(-0.05, float(np.nanmin(table[["test_mcc_lo", "cv_mcc"]].to_numpy())) - 0.05), 1.0)
    ax.axvline(0, color="grey", lw=0.6)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("Security classifier comparison (* = selected)")
    fig.tight_layout()
    return fig


def reliability_figure(comparison: Comparison) -> Any:
    """Reliability diagram of the selected model on the population's test rows: observed share of
    positives per bin of predicted probability, raw scores and calibrated probabilities, with
    their Brier scores."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import brier_score_loss

    best = comparison.best
    _, test = comparison._train_test()
    mask = comparison.population_mask(test)
    y = test["label"].to_numpy(dtype=np.int64)[mask]
    raw = np.clip(best.test_proba[mask], 0.0, 1.0)
    calibrated = best.probability(best.test_proba)[mask]
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfectly calibrated")
    for values, name, colour, marker in ((raw, "raw score", "tab:orange", "s"),
                                         (calibrated, "calibrated probability", "tab:blue", "o")):
        table = reliability_table(y, values, n_bins=10)
        table = table[table["n"] > 0]
        brier = brier_score_loss(y, values, pos_label=1) if len(y) else float("nan")
        ax.plot(table["mean_predicted"], table["observed"], marker=marker, color=colour,
                label=f"{name} (Brier {brier:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted probability of a security discussion")
    ax.set_ylabel("observed share of security discussions")
    ax.set_title(f"Reliability: {FAMILY_LABELS.get(best.family, best.family)}, {len(y)} test rows "
                 f"({comparison.population})", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def write_reports(
    comparison: Comparison,
    *,
    tables_dir: str | os.PathLike[str] | None,
    figures_dir: str | os.PathLike[str] | None,
    metrics_path: str | os.PathLike[str] | None,
    provenance: pd.DataFrame | None = None,
    engines: dict[str, Any] | None = None,
    probe: pd.DataFrame | None = None,
    issues: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Comparison tables (CSV/MD/TeX), figures (PNG/SVG) and DVC metrics; returns the metrics.
    ``engines``: the saved model's engine validation (model card), reported as a table and metrics;
    ``probe``: the source probe (:func:`secmine.detect.probe.source_probe`); ``issues``: the label
    issues (:func:`secmine.detect.noise.label_issues`), reported as counts per source and label."""
    import pandas as pd
    from sklearn.metrics import brier_score_loss

    from secmine import io

    table = comparison.table()
    best = comparison.best
    scope = "keyword-matched" if comparison.population == "keyword" else "all"
    if tables_dir is not None:
        tables = Path(tables_dir)
        io.write_csv(table, tables / "comparison.csv")
        shown = comparison.display_table()
        io.write_table(shown, tables / "comparison", formats=("md", "tex"),
                       caption=f"Security classifiers: cross-validated MCC and held-out test metrics on {scope} "
                       "rows (MCC, F1, precision, recall, accuracy, g-measure, PR-AUC, ROC-AUC, recall at fixed "
                       "precision, Brier) with 95% bootstrap intervals.")
        io.write_table(comparison.by_source(), tables / "test_by_source", float_format="{:.3f}")
        io.write_table(comparison.source_metrics(), tables / "test_by_source_metrics", float_format="{:.3f}",
                       caption="Test recall, specificity and MCC per labelled source (a model that learnt the "
                       "source does far better on one source than another).")
        io.write_table(comparison.population_metrics(), tables / "test_by_population", float_format="{:.3f}",
                       caption="Test metrics on keyword-matched rows, rows without a keyword (easy weak negatives) "
                       "and all rows.")
        io.write_table(comparison.selection_table(), tables / "selection", float_format="{:.3f}",
                       caption=comparison.selection.get("summary", ""))
        _, test = comparison._train_test()
        mask = comparison.population_mask(test)
        io.write_table(reliability_table(test["label"].to_numpy()[mask], best.probability(best.test_proba)[mask]),
                       tables / "reliability", float_format="{:.3f}")
        trials = [result.trials.assign(family=family) for family, result in comparison.results.items()]
        io.write_table(pd.concat(trials, ignore_index=True)[["family", "trial", "state", "cv_mcc", "params"]],
                       tables / "trials", float_format="{:.3f}")
        if provenance is not None:
            io.write_table(provenance, tables / "labelled_set", float_format="{:.0f}")
        if probe is not None:
            io.write_table(probe, tables / "source_probe", float_format="{:.3f}",
                           caption="Source probe: TF-IDF + logistic regression telling the labelled sources apart "
                           "among rows of the same label, keywords masked (grouped cross-validation).")
        if issues is not None:
            counts = (issues.groupby(["source", "label"], sort=True).size().rename("suspected").reset_index()
                      if len(issues) else pd.DataFrame(columns=["source", "label", "suspected"]))
            io.write_table(counts, tables / "label_issues", float_format="{:.0f}")
        if engines is not None:
            from secmine.detect.engine import engines_table

            io.write_table(engines_table(engines), tables / "engines", float_format="{:.4f}",
                           caption="Inference engines of the saved transformer on the held-out test split: "
                           "MCC, difference to PyTorch, label agreement and largest probability difference.")
    if figures_dir is not None:
        import matplotlib.pyplot as plt

        for name, draw in (("comparison", comparison_figure), ("reliability", reliability_figure)):
            fig = draw(comparison)
            io.save_figure(fig, Path(figures_dir) / name)
            plt.close(fig)
    _, test = comparison._train_test()
    mask = comparison.population_mask(test)
    y = test["label"].to_numpy(dtype=np.int64)[mask]
    decision = best.decision
    selection = comparison.selection
    labelled = comparison.labelled
    metrics: dict[str, Any] = {
        "selected": best.family,
        "cv_mcc": best.cv_mcc,
        "cv_mcc_sd": best.cv_mcc_sd,
        "cv_mcc_lo": selection.get("families", {}).get(best.family, {}).get("low"),
        "cv_mcc_hi": selection.get("families", {}).get(best.family, {}).get("high"),
        "selection": {k: selection.get(k) for k in ("rule", "runner_up", "difference", "difference_low",
                                                       "difference_high", "win_share", "sure")},
        "population": comparison.population,
        "repeats": comparison.repeats,
        "threshold": decision.threshold if decision else comparison.settings.threshold,
        "probability_threshold": decision.probability_threshold if decision else None,
        "calibration": decision.calibrator.method if decision else "none",
        "prior": {"train_prior": decision.train_prior if decision else None,
                  "target_prior": decision.target_prior if decision else None,
                  "source": decision.prior_source if decision else "none"},
        "brier_test": {"raw": float(brier_score_loss(y, np.clip(best.test_proba[mask], 0, 1), pos_label=1)),
                       "calibrated": float(brier_score_loss(y, best.probability(best.test_proba)[mask], pos_label=1))}
        if len(y) else {},
        "test": dict(best.test_metrics),
        "test_all": {k: best.test_all_metrics[k] for k in ("n", "positives", "mcc", "mcc_lo", "mcc_hi", "recall",
                                                            "precision", "g_measure", "pr_auc")},
        "models": {
            f: {"cv_mcc": r.cv_mcc, "test_mcc": r.test_metrics["mcc"], "test_f1": r.test_metrics["f1"],
                "test_pr_auc": r.test_metrics.get("pr_auc"), "test_all_mcc": r.test_all_metrics.get("mcc")}
            for f, r in comparison.results.items()
        },
        "labelled": {
            "rows": int(len(labelled)),
            "positives": int(labelled["label"].sum()),
            "test_rows": int((labelled["split"] == "test").sum()),
            "keyword_rows": int(labelled["keyword_match"].sum()),
            "test_population_rows": int(mask.sum()),
        },
    }
    if probe is not None and len(probe):
        metrics["source_probe"] = {str(int(r.label)): {"balanced_accuracy": r.balanced_accuracy, "chance": r.chance,
                                                       "sources": r.sources} for r in probe.itertuples()}
    if issues is not None:
        metrics["label_issues"] = int(len(issues))
    if engines is not None:
        metrics["engines"] = {
            "recommended": engines["recommended"],
            **{e: {"test_mcc": engines[e]["mcc"], "agreement": engines[e]["agreement"]}
               for e in ("torch", "onnx", "onnx-int8") if e in engines},
        }
    metrics = _round(metrics)
    if metrics_path is not None:
        io.write_json(metrics_path, metrics)
    return metrics


def settings_from_params(params: dict[str, Any], *, keywords: Sequence[str] | None = None,
                         word_boundary: bool = True) -> ModelSettings:
    """:class:`ModelSettings` from the ``train`` block of params.yaml (unknown keys ignored)."""
    data = {k: v for k, v in params.items() if k in ModelSettings.__dataclass_fields__}
    if keywords is not None:
        data["keywords"] = tuple(keywords)
    data["word_boundary"] = bool(word_boundary)
    return ModelSettings.from_dict(data)


def train_labelled(
    labelled: LabelledSet,
    *,
    model_dir: str | os.PathLike[str] | None,
    settings: ModelSettings,
    families: str | Sequence[str] = DEFAULT_FAMILIES,
    test_size: float = 0.2,
    n_folds: int = 5,
    n_trials: int = 10,
    transformer_trials: int = 1,
    n_boot: int = 1000,
    max_chars: int = 4000,
    tables_dir: str | os.PathLike[str] | None = None,
    figures_dir: str | os.PathLike[str] | None = None,
    metrics_path: str | os.PathLike[str] | None = None,
    labelled_out: str | os.PathLike[str] | None = None,
    predictions_out: str | os.PathLike[str] | None = None,
    log: Any = print,
    options: TrainOptions | None = None,
    review_out: str | os.PathLike[str] | None = None,
    unlabelled_texts: Sequence[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
) -> Comparison:
    """Split, compare, report and save the selected model (the whole ``train`` stage after assembly).

    ``checkpoint_dir``: the search's finished fold fits are kept there (:class:`FoldCache`), so a
    killed run resumes without refitting them; a completed run removes the entries it did not use.

    ``options`` (:class:`TrainOptions`, from params ``train``): population, weights, split strategy,
    calibration, threshold, prior, selection.  ``review_out``: the label-noise review sheet (CSV).
    ``unlabelled_texts``: texts of the population, for ``target_prior: estimate``."""
    from secmine import io
    from secmine.detect.labelled import mark_keyword_match
    from secmine.detect.models.transformer import configure_torch
    from secmine.detect.splits import assign_splits

    options = options or TrainOptions()
    configure_torch(settings.seed, settings.num_threads)
    frame = labelled.frame
    if "keyword_match" not in frame.columns:
        frame = mark_keyword_match(frame, keywords=settings.keywords, word_boundary=settings.word_boundary)
    frame = assign_splits(frame, test_size=test_size, n_folds=n_folds, seed=settings.seed, strategy=options.split)
    if options.split == "time":
        undated = int(frame["created_at"].isna().sum())
        if undated:
            labelled.notes.append(f"split 'time': {undated} row(s) without a date are training rows only")
    if labelled_out is not None:
        io.write_parquet(frame, labelled_out)
    cache = FoldCache(checkpoint_dir) if checkpoint_dir is not None else None
    comparison = compare(
        frame, families=families, settings=settings, n_trials=n_trials,
        transformer_trials=transformer_trials, n_boot=n_boot, log=log, options=options,
        unlabelled_texts=unlabelled_texts, cache=cache,
    )
    if cache is not None:
        log(f"fold fits: {cache.hits} reused from {cache.folder}, {cache.misses} computed")
    comparison.notes = labelled.notes + comparison.notes
    provenance = (
        frame.groupby(["source", "label", "keyword_match", "split"], sort=True).size()
        .unstack("split", fill_value=0).reset_index()
    )
    best = comparison.best
    probe = None
    if options.source_probe:
        from secmine.detect.probe import source_probe

        probe = source_probe(frame, keywords=settings.keywords, n_folds=n_folds, seed=settings.seed)
        for row in probe.itertuples():
            log(f"source probe, label {row.label}: {row.sources}: balanced accuracy {row.balanced_accuracy:.3f} "
                f"(chance {row.chance:.3f})")
    issues = None
    if options.label_noise:
        from secmine.detect.noise import label_issues, write_review_sheet

        train, test = comparison._train_test()
        import pandas as pd

        rows = pd.concat([train, test], ignore_index=True)
        issues = label_issues(rows, np.r_[best.probability(best.oof_proba), best.probability(best.test_proba)])
        if review_out is not None:
            write_review_sheet(issues, review_out)
        log(f"label noise: {len(issues)} labelled row(s) flagged for review" +
            (f" ({review_out})" if review_out is not None else ""))
    engines = None
    if model_dir is not None:
        test = frame[frame["split"] == "test"]
        save_model(best.model, model_dir, model_card(comparison, best, {"max_chars": max_chars}),
                   validation=(test["text"].tolist(), test["label"].to_numpy(dtype=np.int64), best.test_proba),
                   engine_tolerance=float(settings.engine_tolerance), log=log)
        log(f"saved {best.family} to {model_dir}")
        engines = read_card(model_dir).get("engines")
    write_reports(comparison, tables_dir=tables_dir, figures_dir=figures_dir, metrics_path=metrics_path,
                  provenance=provenance, engines=engines, probe=probe, issues=issues)
    if predictions_out is not None:
        io.write_parquet(comparison.predictions(), predictions_out)
    if cache is not None:
        cache.prune()
    return comparison
