"""From a model's raw score to a calibrated probability at the target's class prior, and the label.

A saved model's card holds, beside ``threshold``, three plain keys written by
:func:`decision_card` and read back by :func:`card_probability` / :func:`card_labels` (the one place
:mod:`secmine.detect.predict` and ``secmine evaluate`` apply them):

``calibration``
    ``{"method": "isotonic" | "platt" | "none", ...}``: a monotone map from the raw score to a
    probability, fitted on the *out-of-fold* scores of the training rows (each scored by a model that
    never saw it: calibration inside the folds) of the population the model is evaluated on.
``prior``
    ``{"train_prior", "target_prior", "source"}``: the share of positives the calibrated
    probabilities reflect, and the share of the population the model is applied to (a parameter, or
    estimated from unlabelled texts by :func:`estimate_prior_em`).  Probabilities are moved to the
    target prior by Bayes' rule on the odds (:func:`shift_prior`; Saerens, Latinne & Decaestecker 2002).
``decision``
    how ``threshold`` was chosen: the metric (MCC by default) maximised over the out-of-fold scores,
    with positives and negatives weighted to the target prior when one is given, and the threshold
    expressed as a probability (``probability_threshold``).

``threshold`` itself stays on the raw score, so every engine and every earlier reader compares the
same number with the same score: ``label = raw score >= threshold``.  Calibration and prior shift
are monotone, so this is the label of ``probability >= probability_threshold`` (isotonic steps
aside, where the raw score decides).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from secmine.detect.metrics import best_threshold

CALIBRATION_METHODS: tuple[str, ...] = ("isotonic", "platt", "none")
_EPS = 1e-6


class CalibrationError(ValueError):
    """A calibration, prior or threshold cannot be fitted or read; the message says why."""


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass
class Calibrator:
    """A monotone map raw score -> probability (JSON-serialisable)."""

    method: str = "none"
    x: list[float] = field(default_factory=list)  # isotonic knots (raw scores)
    y: list[float] = field(default_factory=list)  # isotonic values at the knots
    a: float = 1.0  # platt: sigmoid(a * logit(score) + b)
    b: float = 0.0
    fitted_on: int = 0

    def apply(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "none":
            return s.copy()
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * _logit(s) + self.b)))
        if self.method == "isotonic":
            return np.interp(s, np.asarray(self.x), np.asarray(self.y))
        raise CalibrationError(f"unknown calibration method {self.method!r}; choose from {', '.join(CALIBRATION_METHODS)}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "fitted_on": int(self.fitted_on)}
        if self.method == "platt":
            out.update(a=float(self.a), b=float(self.b))
        elif self.method == "isotonic":
            out.update(x=[float(v) for v in self.x], y=[float(v) for v in self.y])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Calibrator:
        data = dict(data or {})
        method = str(data.get("method", "none"))
        if method not in CALIBRATION_METHODS:
            raise CalibrationError(f"model card field 'calibration.method': {method!r} is not one of "
                                   f"{', '.join(CALIBRATION_METHODS)}")
        if method == "isotonic" and (not data.get("x") or len(data["x"]) != len(data.get("y", []))):
            raise CalibrationError("model card field 'calibration': isotonic calibration needs knots x and y "
                                   "of the same length; retrain the model")
        return cls(method=method, x=list(data.get("x", [])), y=list(data.get("y", [])),
                   a=float(data.get("a", 1.0)), b=float(data.get("b", 0.0)), fitted_on=int(data.get("fitted_on", 0)))


def fit_calibrator(
    scores: Sequence[float], labels: Sequence[int], *, method: str = "isotonic",
    sample_weight: Sequence[float] | None = None,
) -> Calibrator:
    """Fit ``method`` on (out-of-fold) ``scores`` and their ``labels``.

    Isotonic regression (scikit-learn, clipped to [0, 1]) or Platt scaling (a logistic regression on
    the logit of the score).  With one class only, or ``method="none"``, the identity is returned."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if method not in CALIBRATION_METHODS:
        raise CalibrationError(f"unknown calibration method {method!r}; choose from {', '.join(CALIBRATION_METHODS)}")
    if s.shape != y.shape:
        raise CalibrationError(f"{len(s)} scores but {len(y)} labels")
    if method == "none" or len(np.unique(y)) < 2:
        return Calibrator("none", fitted_on=len(y))
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e4, max_iter=1000)
        lr.fit(_logit(s).reshape(-1, 1), y, sample_weight=w)
        return Calibrator("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]), fitted_on=len(y))
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
    iso.fit(s, y.astype(np.float64), sample_weight=w)
    return Calibrator("isotonic", x=iso.X_thresholds_.tolist(), y=iso.y_thresholds_.tolist(), fitted_on=len(y))


# -- class prior ---------------------------------------------------------------------------------


def shift_prior(proba: Sequence[float] | np.ndarray, train_prior: float, target_prior: float | None) -> np.ndarray:
    """Probabilities that reflect ``train_prior`` moved to ``target_prior`` (Bayes' rule on the odds):
    ``q = p t/pi / (p t/pi + (1-p)(1-t)/(1-pi))``.  ``target_prior`` None: unchanged."""
    p = np.asarray(proba, dtype=np.float64)
    if target_prior is None:
        return p.copy()
    _check_prior(train_prior, "train_prior")
    _check_prior(target_prior, "target_prior")
    up = p * (target_prior / train_prior)
    down = (1.0 - p) * ((1.0 - target_prior) / (1.0 - train_prior))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(up + down > 0, up / (up + down), 0.0)
    return out


def _check_prior(value: float, name: str) -> None:
    if not 0.0 < float(value) < 1.0:
        raise CalibrationError(f"{name} must lie strictly between 0 and 1, got {value!r}")


def estimate_prior_em(
    proba: Sequence[float], train_prior: float, *, max_iter: int = 200, tol: float = 1e-7
) -> float:
    """The class prior of unlabelled texts from their calibrated probabilities (which reflect
    ``train_prior``): the EM algorithm of Saerens, Latinne & Decaestecker (2002).  Alternately the
    probabilities are moved to the current prior and the prior is set to their mean."""
    p = np.asarray(proba, dtype=np.float64)
    if len(p) == 0:
        raise CalibrationError("no unlabelled probabilities to estimate the prior from")
    _check_prior(train_prior, "train_prior")
    prior = float(train_prior)
    for _ in range(max(1, int(max_iter))):
        new = float(np.clip(np.mean(shift_prior(p, train_prior, prior)), _EPS, 1 - _EPS))
        if abs(new - prior) < tol:
            prior = new
            break
        prior = new
    return prior


def prior_weights(labels: Sequence[int], target_prior: float | None) -> np.ndarray | None:
    """Row weights that make ``labels`` look as if drawn at ``target_prior`` (positives weighted
    ``t/pi``, negatives ``(1-t)/(1-pi)``); None when no target is given."""
    y = np.asarray(labels, dtype=np.int64)
    if target_prior is None:
        return None
    _check_prior(target_prior, "target_prior")
    pi = float(y.mean()) if len(y) else 0.0
    if not 0 < pi < 1:
        return None
    return np.where(y == 1, target_prior / pi, (1 - target_prior) / (1 - pi))


def parse_target_prior(value: Any) -> float | str | None:
    """``train.target_prior``: empty/``none`` (no shift), ``estimate`` (from unlabelled texts) or a
    share in (0, 1)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_prior(float(value), "train.target_prior")
        return float(value)
    text = str(value).strip().lower()
    if text in {"", "none", "null", "no"}:
        return None
    if text == "estimate":
        return "estimate"
    try:
        number = float(text)
    except ValueError:
        raise CalibrationError(f"train.target_prior: {value!r} is not a share in (0, 1), 'estimate' or empty") from None
    _check_prior(number, "train.target_prior")
    return number


# -- the decision the card stores ------------------------------------------------------------------


@dataclass
class Decision:
    """Calibration, prior and threshold of a model, as stored in its card."""

    calibrator: Calibrator
    train_prior: float
    target_prior: float | None
    prior_source: str  # "none", "param", "estimated"
    metric: str
    threshold: float  # on the raw score
    fitted_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def probability(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """Calibrated probabilities at the target prior."""
        calibrated = self.calibrator.apply(scores)
        return shift_prior(calibrated, self.train_prior, self.target_prior) if self.target_prior is not None else calibrated

    def labels(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        return (np.asarray(scores, dtype=np.float64) >= self.threshold).astype(np.int64)

    @property
    def probability_threshold(self) -> float:
        return float(self.probability([self.threshold])[0])

    def card(self) -> dict[str, Any]:
        return {
            "threshold": float(self.threshold),
            "calibration": self.calibrator.to_dict(),
            "prior": {"train_prior": float(self.train_prior),
                      "target_prior": None if self.target_prior is None else float(self.target_prior),
                      "source": self.prior_source},
            "decision": {"metric": self.metric, "threshold_on": "raw model score",
                         "probability_threshold": self.probability_threshold,
                         "chosen_on": f"out-of-fold scores of {self.fitted_rows} training rows"
                         + ("" if self.target_prior is None else ", positives and negatives weighted to the target prior"),
                         "label": "score >= threshold"},
        }


def fit_decision(
    scores: Sequence[float],
    labels: Sequence[int],
    *,
    calibration: str = "isotonic",
    metric: str = "mcc",
    target_prior: float | None = None,
    prior_source: str = "param",
    tune_threshold: bool = True,
    default_threshold: float = 0.5,
) -> Decision:
    """Calibrate on out-of-fold ``scores`` and choose the threshold maximising ``metric`` on them
    (weighted to ``target_prior`` when given).  ``tune_threshold=False`` keeps ``default_threshold``."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    calibrator = fit_calibrator(s, y, method=calibration)
    train_prior = float(y.mean()) if len(y) else 0.5
    if not 0 < train_prior < 1:
        target_prior, prior_source = None, "none"
    if target_prior is None:
        prior_source = "none"
    threshold = best_threshold(y, s, metric=metric, sample_weight=prior_weights(y, target_prior)) \
        if tune_threshold and len(np.unique(y)) == 2 else float(default_threshold)
    return Decision(calibrator, train_prior if 0 < train_prior < 1 else 0.5, target_prior, prior_source, metric,
                    float(threshold), fitted_rows=len(y))


def decision_from_card(card: dict[str, Any]) -> Decision:
    """The :class:`Decision` a model card describes (older cards: identity and their threshold)."""
    prior = card.get("prior") or {}
    decision = card.get("decision") or {}
    target = prior.get("target_prior")
    train_prior = float(prior.get("train_prior", 0.5) or 0.5)
    return Decision(Calibrator.from_dict(card.get("calibration")), train_prior,
                    None if target is None else float(target), str(prior.get("source", "none")),
                    str(decision.get("metric", "none")), float(card.get("threshold", 0.5)))


def card_probability(card: dict[str, Any], scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """The probabilities a saved model reports for its raw ``scores``."""
    return decision_from_card(card).probability(scores)


def card_labels(card: dict[str, Any], scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """The labels a saved model gives its raw ``scores`` (``score >= card['threshold']``)."""
    return decision_from_card(card).labels(scores)


def probability_threshold(card: dict[str, Any]) -> float:
    """The card's threshold expressed as a probability (for figures and reports)."""
    return decision_from_card(card).probability_threshold


def reliability_table(labels: Sequence[int], proba: Sequence[float], *, n_bins: int = 10) -> Any:
    """Observed share of positives per bin of predicted probability (equal-width bins)."""
    import pandas as pd

    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(proba, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = which == b
        rows.append({"bin_low": edges[b], "bin_high": edges[b + 1], "n": int(mask.sum()),
                     "mean_predicted": float(p[mask].mean()) if mask.any() else float("nan"),
                     "observed": float(y[mask].mean()) if mask.any() else float("nan")})
    return pd.DataFrame(rows)
