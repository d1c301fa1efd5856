"""Calibration, prior shift and the decision threshold: the stored decision and what it buys on
rare positives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from secmine.detect.calibration import (
    CalibrationError,
    Calibrator,
    card_labels,
    card_probability,
    decision_from_card,
    estimate_prior_em,
    fit_calibrator,
    fit_decision,
    parse_target_prior,
    prior_weights,
    shift_prior,
)
from secmine.detect.metrics import binary_metrics


def _rare(n: int, share: float, seed: int, shift: float = 1.6) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping Gaussian classes in 2-D (positives moved by ``shift`` on both axes),
    positives ``share`` of the rows."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < share).astype(np.int64)
    x = rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, shift, 0.0)
    return x, y


def test_calibrators_are_monotone_and_survive_json() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    scores = np.clip(0.5 * rng.random(400) + 0.4 * y, 0, 1) ** 2  # informative but miscalibrated
    grid = np.linspace(0, 1, 101)
    for method in ("isotonic", "platt"):
        calibrator = fit_calibrator(scores, y, method=method)
        values = calibrator.apply(grid)
        assert np.all(np.diff(values) >= -1e-12) and values.min() >= 0 and values.max() <= 1
        again = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
        assert np.allclose(again.apply(grid), values)
        # calibrated out-of-sample-free check: the mean probability matches the share of positives
        assert calibrator.apply(scores).mean() == pytest.approx(y.mean(), abs=0.02)
    assert fit_calibrator(scores, np.zeros(400, dtype=int)).method == "none"  # one class: identity
    with pytest.raises(CalibrationError, match="calibration.method"):
        Calibrator.from_dict({"method": "magic"})
    with pytest.raises(CalibrationError, match="unknown calibration method"):
        fit_calibrator(scores, y, method="magic")


def test_prior_shift_follows_bayes_and_em_recovers_the_prior() -> None:
    p = np.array([0.1, 0.5, 0.9])
    assert np.allclose(shift_prior(p, 0.3, 0.3), p)
    # odds scale by (t/(1-t)) / (pi/(1-pi)): 0.5 at pi=0.5 becomes t
    assert shift_prior([0.5], 0.5, 0.05)[0] == pytest.approx(0.05)
    assert np.allclose(shift_prior(shift_prior(p, 0.6, 0.05), 0.05, 0.6), p)
    with pytest.raises(CalibrationError, match="target_prior"):
        shift_prior(p, 0.5, 1.5)
    # probabilities calibrated at a balanced training prior, applied where 4% are positive
    x_train, y_train = _rare(4000, 0.5, seed=1)
    model = LogisticRegression().fit(x_train, y_train)
    x_new, y_new = _rare(6000, 0.04, seed=2)
    estimate = estimate_prior_em(model.predict_proba(x_new)[:, 1], float(y_train.mean()))
    assert estimate == pytest.approx(y_new.mean(), abs=0.015)
    assert model.predict_proba(x_new)[:, 1].mean() > 0.15  # without the correction, far too many
    assert parse_target_prior("") is None and parse_target_prior("estimate") == "estimate"
    assert parse_target_prior("0.05") == 0.05
    with pytest.raises(CalibrationError, match="train.target_prior"):
        parse_target_prior("lots")


def test_threshold_and_prior_correction_work_on_rare_positives() -> None:
    """3% positives: the threshold chosen on out-of-fold scores finds far more positives than 0.5
    at a better MCC; a model trained on a balanced sample, moved to the 3% prior, is calibrated there
    and thresholded for it."""
    x, y = _rare(6000, 0.03, seed=3, shift=1.2)
    x_test, y_test = _rare(6000, 0.03, seed=4, shift=1.2)
    model = LogisticRegression()  # no class weights: the probabilities of rare positives stay low
    oof = cross_val_predict(model, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")[:, 1]
    decision = fit_decision(oof, y, calibration="isotonic", metric="mcc")
    scores = model.fit(x, y).predict_proba(x_test)[:, 1]
    default = binary_metrics(y_test, (scores >= 0.5).astype(int))
    tuned = binary_metrics(y_test, decision.labels(scores))
    assert default["recall"] < 0.15  # at 0.5 the model finds almost none of the positives
    assert tuned["recall"] >= default["recall"] + 0.2
    assert tuned["mcc"] >= default["mcc"] + 0.01
    assert decision.threshold < 0.5 and 0 < decision.probability_threshold < 1

    # trained on a balanced sample (what assembling positives from elsewhere does), applied at 3%
    rng = np.random.default_rng(5)
    negatives = rng.choice(np.flatnonzero(y == 0), size=int(y.sum()), replace=False)
    keep = np.r_[np.flatnonzero(y == 1), negatives]
    xb, yb = x[keep], y[keep]
    oof_b = cross_val_predict(model, xb, yb, cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")[:, 1]
    scores_b = model.fit(xb, yb).predict_proba(x_test)[:, 1]
    plain = fit_decision(oof_b, yb, calibration="isotonic", metric="mcc")
    shifted = fit_decision(oof_b, yb, calibration="isotonic", metric="mcc", target_prior=0.03)
    assert plain.probability(scores_b).mean() > 0.2  # calibrated for 50% positives
    assert shifted.probability(scores_b).mean() == pytest.approx(y_test.mean(), abs=0.02)
    at_plain = binary_metrics(y_test, plain.labels(scores_b))
    at_shifted = binary_metrics(y_test, shifted.labels(scores_b))
    assert at_shifted["mcc"] >= at_plain["mcc"] + 0.05  # the threshold chosen for the 3% prior
    assert shifted.threshold > plain.threshold


def test_the_card_holds_the_decision_and_older_cards_still_work() -> None:
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 300)
    scores = np.clip(0.6 * rng.random(300) + 0.3 * y, 0, 1)
    decision = fit_decision(scores, y, calibration="platt", target_prior=0.1)
    card = {"family": "tfidf_logreg", **json.loads(json.dumps(decision.card()))}
    assert card["threshold"] == decision.threshold and card["prior"]["target_prior"] == 0.1
    assert np.allclose(card_probability(card, scores), decision.probability(scores))
    assert (card_labels(card, scores) == (scores >= card["threshold"])).all()
    # labels by raw threshold agree with probability >= probability_threshold (monotone map)
    prob = card_probability(card, scores)
    assert ((prob >= card["decision"]["probability_threshold"] - 1e-12) == (card_labels(card, scores) == 1)).all()
    old = {"family": "keyword", "threshold": 0.5}
    assert np.allclose(card_probability(old, [0.2, 0.7]), [0.2, 0.7])
    assert card_labels(old, [0.2, 0.7]).tolist() == [0, 1]
    assert decision_from_card(old).calibrator.method == "none"
    assert prior_weights([0, 0, 0, 1], None) is None
    w = prior_weights([0, 0, 0, 1], 0.5)
    assert w.tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0])
