"""Prevalence estimates that stay valid: classical, plug-in and prediction-powered inference.

For every theme and sub-theme (issues and solutions) and every stratum of the sample design, the
share of security threads that carry it, three ways side by side:

(a) ``sample``: the coded random sample alone, with a Wilson interval;
(b) ``plugin``: the tagger's predictions over every security thread -- no valid interval, it
    inherits the tagger's errors;
(c) ``ppi``: prediction-powered inference (Angelopoulos et al., Science 2023, with the power tuning
    of PPI++; the ``ppi-python`` package's :func:`ppi_py.ppi_mean_ci`), which corrects the
    predictions over every thread with the coded sample's prediction errors.

PPI (and (a) for the run's corpus) is valid only when the coded posts are a random sample of the
threads being estimated.  :func:`check_coded_sample` decides which case holds:

* a resolved coding of the ``sample`` stage's seeded draw (``sample.csv``) -- valid for this run's
  security threads when ``sample.csv`` is exactly the draw the sample parameters give on this
  run's classified threads, it is not marked as ordered by the tagger, and in every stratum the
  coded posts are the whole draw or its first ones in the order of drawing (a prefix of a random
  order is a random sample; a hand-picked subset is not);
* the replication package's coded posts -- a random sample of the *paper's* security discussions
  (its crawl and its classifier), not of this run's corpus: (a) is reported for the paper's
  population, (c) is not computed;
* a sheet ordered by the tagger's uncertainty (:mod:`secmine.taxonomy.ordering`) -- never a random
  sample: refused.

The tables say which estimate is valid for which population and why.

PPI's interval is a normal approximation: where the coded posts of a stratum hold fewer than
``min_positives`` (5) posts with a label, or as few without it, the Wilson interval of the coded
posts is reported in its place (``ppi_method`` says which).  Intervals treat the threads as a
sample of a larger population (no finite-population correction), which only makes them wider.

:func:`coverage_study` shows that the intervals hold on data that exist here: the coded posts are
split at random, many times, into a "hand-coded" part of size n and a "not coded" remainder, and
the classical and PPI 95% intervals are checked against the remainder's true shares.  Every post's
prediction is the tagger's out-of-fold prediction (from a model that never saw the post), as in
cross-prediction-powered inference.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from secmine import published
from secmine.taxonomy.labels import LabelSpace

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

DIGITS = 6
# The paper's coded sample and its population (secmine.published holds every published number).
PAPER_CODED_POSTS = int(published.value("posts_total"))
PAPER_POPULATION = int(published.value("funnel_sec_total"))
ESTIMATE_LEVELS = ("theme", "sub_theme")
DESIGN_SUFFIX = ".design.json"


class PPIError(ValueError):
    """An estimate cannot be computed as asked; the message names the input and the fix."""


# -- intervals ---------------------------------------------------------------------------------


def _ppi_py() -> Any:
    """``ppi_py``, imported without letting it silence every warning of the process (it calls
    ``warnings.simplefilter("ignore")`` on import)."""
    with warnings.catch_warnings():
        import ppi_py
    return ppi_py


def wilson_intervals(counts: np.ndarray, n: int, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score intervals of ``counts / n`` (statsmodels), element-wise."""
    from statsmodels.stats.proportion import proportion_confint

    counts = np.asarray(counts, dtype=np.float64)
    if n <= 0:
        return np.full(counts.shape, np.nan), np.full(counts.shape, np.nan)
    lo, hi = proportion_confint(counts, n, alpha=1 - confidence, method="wilson")
    return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


def ppi_intervals(
    Y: np.ndarray,
    Yhat: np.ndarray,
    Yhat_unlabeled: np.ndarray,
    *,
    confidence: float = 0.95,
    power_tuning: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PPI point estimates and two-sided intervals of the means of the columns of ``Y``.

    ``Y``/``Yhat``: labels and predictions on the labelled rows; ``Yhat_unlabeled``: predictions on
    the rows to estimate over.  ``power_tuning``: one PPI++ weight per column (``lam_optim_mode=
    "element"``), else plain PPI (``lam=1``).  A column whose predictions are constant has no
    tuning to do and is computed with ``lam=1`` (= the classical interval).  Returns
    ``(estimate, low, high)``.
    """
    ppi = _ppi_py()
    Y = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    Yhat = np.asarray(Yhat, dtype=np.float64).reshape(len(Yhat), -1)
    unl = np.asarray(Yhat_unlabeled, dtype=np.float64).reshape(len(Yhat_unlabeled), -1)
    if Y.shape != Yhat.shape or unl.shape[1] != Y.shape[1]:
        raise PPIError(
            f"labels {Y.shape}, predictions {Yhat.shape} and unlabelled predictions {unl.shape} do not match"
        )
    if len(Y) < 2 or len(unl) < 2:
        raise PPIError(
            f"PPI needs at least two labelled and two unlabelled rows (got {len(Y)} and {len(unl)})"
        )
    alpha = 1 - confidence
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if power_tuning:
            lo, hi = ppi.ppi_mean_ci(Y, Yhat, unl, alpha=alpha, lam_optim_mode="element")
        else:
            lo, hi = ppi.ppi_mean_ci(Y, Yhat, unl, alpha=alpha, lam=1.0)
        lo, hi = (
            np.atleast_1d(np.asarray(lo, dtype=np.float64)).copy(),
            np.atleast_1d(np.asarray(hi, dtype=np.float64)).copy(),
        )
        bad = ~(np.isfinite(lo) & np.isfinite(hi))
        if bad.any():
            lo_b, hi_b = ppi.ppi_mean_ci(Y[:, bad], Yhat[:, bad], unl[:, bad], alpha=alpha, lam=1.0)
            lo[bad], hi[bad] = np.atleast_1d(lo_b), np.atleast_1d(hi_b)
    return (lo + hi) / 2, lo, hi


def ppi_or_wilson(
    Y: np.ndarray,
    Yhat: np.ndarray,
    Yhat_unlabeled: np.ndarray,
    *,
    confidence: float = 0.95,
    power_tuning: bool = True,
    min_positives: int = 5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """PPI intervals (clipped to [0, 1]) where the labelled rows hold at least ``min_positives``
    rows with the label and as many without; elsewhere the normal approximation PPI rests on is
    unreliable and the Wilson interval of the labelled rows is returned instead.  Returns
    ``(estimate, low, high, used_ppi)``."""
    Y = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    n = len(Y)
    counts = Y.sum(axis=0)
    estimate, low, high = ppi_intervals(
        Y, Yhat, Yhat_unlabeled, confidence=confidence, power_tuning=power_tuning
    )
    used = (counts >= min_positives) & (n - counts >= min_positives)
    w_lo, w_hi = wilson_intervals(counts, n, confidence)
    estimate = np.where(used, estimate, counts / n)
    low = np.where(used, np.clip(low, 0, 1), w_lo)
    high = np.where(used, np.clip(high, 0, 1), w_hi)
    return estimate, low, high, used


# -- which coded sample is valid for what ------------------------------------------------------


@dataclass
class SampleCheck:
    """What a coded sample is a random sample of, and so which estimates it supports."""

    case: str  # run-sample | paper-sample | uncertainty-ordered | not-a-random-sample | none
    valid_for_corpus: bool  # PPI and (a) for this run's security threads
    population: str  # what the coded posts are a random sample of ("" when of nothing known)
    reason: str
    coded: pd.DataFrame | None = None  # post_id, source, thread_id, stratum (+ labels in Y)
    Y: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "valid_for_corpus": self.valid_for_corpus,
            "population": self.population,
            "reason": self.reason,
            "coded_posts": 0 if self.coded is None else len(self.coded),
        }


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_design(sample_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The design record written beside an ordered sample (``<sample>.design.json``), or ``{}``."""
    path = Path(sample_path)
    design = path.with_name(path.name.removesuffix(".csv") + DESIGN_SUFFIX)
    if not design.is_file():
        return {}
    try:
        return dict(json.loads(design.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise PPIError(f"{design}: not valid JSON ({exc}); delete it or rewrite it") from exc


def _coded_matrix(path: Path, space: LabelSpace) -> tuple[pd.DataFrame, np.ndarray]:
    from secmine.replication import load_coded_sample

    sample = load_coded_sample(path=path, codebook=space.codebook, posts=None)
    posts = sample.posts[["post_id", "source"]].copy()
    return posts.reset_index(drop=True), space.matrix(posts["post_id"].tolist(), sample.mentions)


def check_coded_sample(
    coded: str | os.PathLike[str] | None,
    space: LabelSpace,
    *,
    sample_path: str | os.PathLike[str] | None,
    classified: pd.DataFrame | None,
    sample_params: Any = None,
    replication_root: str | os.PathLike[str] | None = None,
) -> SampleCheck:
    """Decide what the coded sample ``coded`` (a CSV in the replication format) is a random sample
    of (see the module docstring).  ``classified``: this run's classified threads
    (:func:`secmine.analysis.data.load_classified`); ``sample_params``: the ``sample`` stage's
    :class:`secmine.analysis.sampling.SampleParams` (default: its defaults)."""
    from secmine import config
    from secmine.analysis.sampling import (
        SampleParams,
        draw_sample,
        parse_strata,
        sample_plan,
        stratum_sources,
    )
    from secmine.replication import CODED_FILE

    root = Path(replication_root) if replication_root is not None else config.replication_dir()
    if coded is None or str(coded).strip() in ("", "none"):
        return SampleCheck(
            "none",
            False,
            "",
            "no coding of this run's sample was given: code the sample stage's "
            "coding sheet (secmine coding-sheet, coding-agree, coding-resolve) and pass the resolved CSV",
        )
    paper = root / CODED_FILE
    coded_path = paper if str(coded).strip() == "replication" else Path(coded)
    if not coded_path.is_file():
        raise PPIError(
            f"{coded_path}: coded sample not found (a resolved coding in the replication format "
            "source,id,issue,solution)"
        )
    if paper.is_file() and (
        coded_path.resolve() == paper.resolve() or file_sha256(coded_path) == file_sha256(paper)
    ):
        posts, Y = _coded_matrix(paper, space)
        return SampleCheck(
            "paper-sample",
            False,
            "the paper's security discussions (its crawl and classifier)",
            "the replication package's coded posts are a random sample of the paper's population, "
            "not of this "
            "run's corpus (which also holds other threads): the sample share is reported for the paper's "
            "population, PPI is not computed",
            posts,
            Y,
        )
    posts, Y = _coded_matrix(coded_path, space)
    if sample_path is None or not Path(sample_path).is_file():
        return SampleCheck(
            "not-a-random-sample",
            False,
            "",
            f"{sample_path}: no sample.csv to check the coding "
            "against, so nothing shows the coded posts are a random draw",
            posts,
            Y,
        )
    import pandas as pd

    sample = pd.read_csv(sample_path, dtype={"post_id": str, "id": str, "source": str}, keep_default_na=False)
    missing = [c for c in ("source", "draw", "post_id", "id") if c not in sample.columns]
    if missing:
        raise PPIError(
            f"{sample_path}, row 1: missing column(s) {', '.join(missing)} (a sample stage sample.csv)"
        )
    design = read_design(sample_path)
    marked = (
        "random_sample" in sample.columns
        and (~sample["random_sample"].astype(str).str.lower().isin(["true", "1"])).any()
    )
    if marked or design.get("random_sample") is False:
        return SampleCheck(
            "uncertainty-ordered",
            False,
            "",
            f"{sample_path} is marked as not a random sample "
            f"({design.get('order', 'ordered by the tagger')}): posts coded from it are excluded from "
            "PPI and from the sample shares",
            posts,
            Y,
        )
    params = sample_params or SampleParams()
    if classified is None:
        raise PPIError(
            "checking a run's coded sample needs the run's classified threads (classified.parquet)"
        )
    strata = parse_strata(params.strata)
    security = classified[classified["label"] == 1]
    plan = sample_plan(
        security, strata, confidence=params.confidence, margin=params.margin, proportion=params.proportion
    )
    redrawn = draw_sample(security, plan, params.seed)
    if redrawn["id"].astype(str).tolist() != sample["id"].astype(str).tolist():
        return SampleCheck(
            "not-a-random-sample",
            False,
            "",
            f"{sample_path} is not the seeded draw the sample "
            f"parameters (seed {params.seed}, strata {params.strata!r}) give on this run's classified "
            "threads (the corpus or the classifier changed since): rerun the sample stage and code "
            "the new sheet",
            posts,
            Y,
        )
    key = sample.set_index(["source", "post_id"])
    coded_keys = list(zip(posts["source"], posts["post_id"]))
    outside = [k for k in coded_keys if k not in key.index]
    if outside:
        return SampleCheck(
            "not-a-random-sample",
            False,
            "",
            f"{coded_path}: post {outside[0][1]!r} ({outside[0][0]}) "
            f"is not in {sample_path}; {len(outside)} coded post(s) were not drawn",
            posts,
            Y,
        )
    stratum_of = {src: name for name in strata for src in stratum_sources(name)}
    posts["stratum"] = [stratum_of.get(s, s) for s in posts["source"]]
    posts["thread_id"] = [str(key.loc[k, "id"]) for k in coded_keys]
    posts["draw"] = [int(key.loc[k, "draw"]) for k in coded_keys]
    notes = []
    for name in strata:
        draws = sorted(posts.loc[posts["stratum"] == name, "draw"].tolist())
        total = int((sample["source"].map(stratum_of) == name).sum())
        if draws != list(range(1, len(draws) + 1)):
            gap = next(i for i, d in enumerate(draws, start=1) if d != i)
            return SampleCheck(
                "not-a-random-sample",
                False,
                "",
                f"{coded_path}: in stratum {name!r} the coded posts are "
                f"not the first {len(draws)} drawn (draw {gap} is not coded): code posts in the order "
                "of drawing, or all of them",
                posts,
                Y,
            )
        if draws:
            notes.append(f"{name}: the first {len(draws)} of {total} drawn posts are coded")
    return SampleCheck(
        "run-sample",
        True,
        "this run's security threads (classify stage)",
        "a resolved coding of the sample stage's seeded draw from this run's security threads, coded "
        "in the order of drawing: a random sample of each stratum",
        posts,
        Y,
        notes,
    )


# -- the three estimates -----------------------------------------------------------------------


def wide_predictions(
    tagged: pd.DataFrame, space: LabelSpace, value: str = "probability"
) -> tuple[list[str], np.ndarray]:
    """``(thread ids, matrix)`` of a long tagged frame (``id, type, level, label, <value>``)."""
    from secmine.taxonomy.labels import label_key

    keys = [label_key(t, lv, lab) for t, lv, lab in zip(tagged["type"], tagged["level"], tagged["label"])]
    frame = tagged.assign(_key=keys).pivot(index="id", columns="_key", values=value)
    missing = [k for k in space.keys if k not in frame.columns]
    if missing:
        raise PPIError(f"tagged predictions lack label {missing[0]!r}; tag again with the current tagger")
    frame = frame[list(space.keys)].sort_index()
    return frame.index.astype(str).tolist(), frame.to_numpy(dtype=np.float64)


def prevalence_estimates(
    threads: pd.DataFrame,
    P: np.ndarray,
    H: np.ndarray,
    space: LabelSpace,
    check: SampleCheck,
    *,
    strata: Sequence[str],
    paper: SampleCheck | None = None,
    confidence: float = 0.95,
    ppi_input: str = "probability",
    power_tuning: bool = True,
    min_positives: int = 5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The three estimates per stratum, theme and sub-theme, and a validity table.

    ``threads``: ``id, source`` of every security thread, rows matching ``P`` (probabilities) and
    ``H`` (0/1 predictions).  ``check``: the run's coded sample (:func:`check_coded_sample`);
    ``paper``: the replication package's coded posts, reported as (a) for the paper's population
    when the run has no valid sample.
    """
    import pandas as pd

    from secmine.analysis.sampling import stratum_sources

    if ppi_input not in ("probability", "predicted"):
        raise PPIError(f"ppi_input {ppi_input!r}: use probability or predicted")
    columns = np.concatenate([space.positions(level=lv) for lv in ESTIMATE_LEVELS])
    columns.sort()
    frame = space.frame()
    index = {str(i): r for r, i in enumerate(threads["id"].astype(str))}
    rows = []
    sample_source = check if check.valid_for_corpus else paper
    for name in strata:
        in_stratum = threads["source"].isin(stratum_sources(name)).to_numpy()
        N = int(in_stratum.sum())
        plugin = H[in_stratum][:, columns].mean(axis=0) if N else np.full(len(columns), np.nan)
        a_share = a_lo = a_hi = np.full(len(columns), np.nan)
        n_a = 0
        if sample_source is not None and sample_source.coded is not None and sample_source.Y is not None:
            coded = sample_source.coded
            strat = coded["stratum"] if "stratum" in coded.columns else coded["source"]
            mask = strat.isin([name]).to_numpy() | coded["source"].isin(stratum_sources(name)).to_numpy()
            n_a = int(mask.sum())
            if n_a:
                counts = sample_source.Y[mask][:, columns].sum(axis=0)
                a_share = counts / n_a
                a_lo, a_hi = wilson_intervals(counts, n_a, confidence)
        c_share = c_lo = c_hi = np.full(len(columns), np.nan)
        c_method = np.full(len(columns), "", dtype=object)
        n_c = 0
        if check.valid_for_corpus and check.coded is not None and check.Y is not None:
            mask = (check.coded["stratum"] == name).to_numpy()
            positions = [index.get(str(t)) for t in check.coded.loc[mask, "thread_id"]]
            if any(p is None for p in positions):
                raise PPIError(
                    "a coded post of the run's sample is not among the tagged security threads; tag again"
                )
            n_c = int(mask.sum())
            if n_c >= 2 and N >= 2:
                source = P if ppi_input == "probability" else H
                c_share, c_lo, c_hi, used = ppi_or_wilson(
                    check.Y[mask][:, columns],
                    source[positions][:, columns],
                    source[in_stratum][:, columns],
                    confidence=confidence,
                    power_tuning=power_tuning,
                    min_positives=min_positives,
                )
                c_method = np.where(
                    used, "ppi", f"wilson (fewer than {min_positives} coded posts with or without)"
                )
        for i, j in enumerate(columns):
            rows.append(
                {
                    "type": frame.loc[j, "type"],
                    "level": frame.loc[j, "level"],
                    "label": frame.loc[j, "label"],
                    "stratum": name,
                    "threads": N,
                    "coded_posts": n_a,
                    "sample_share": a_share[i],
                    "sample_lo": a_lo[i],
                    "sample_hi": a_hi[i],
                    "plugin_share": plugin[i],
                    "ppi_coded_posts": n_c,
                    "ppi_share": c_share[i],
                    "ppi_lo": c_lo[i],
                    "ppi_hi": c_hi[i],
                    "ppi_method": c_method[i],
                }
            )
    table = pd.DataFrame(rows).round(DIGITS)
    sample_population = check.population if check.valid_for_corpus else (paper.population if paper else "")
    validity = pd.DataFrame(
        [
            {
                "estimate": "(a) sample share, Wilson interval",
                "population": sample_population or "none",
                "valid": bool(sample_source is not None and sample_source.coded is not None),
                "why": (
                    check.reason
                    if check.valid_for_corpus
                    else (paper.reason if paper is not None else check.reason)
                ),
            },
            {
                "estimate": "(b) plug-in share of the tagger's predictions",
                "population": "this run's security threads",
                "valid": False,
                "why": "a point estimate without a valid interval: it carries the tagger's errors "
                "(see the tagger's per-label precision and recall)",
            },
            {
                "estimate": "(c) prediction-powered inference",
                "population": check.population if check.valid_for_corpus else "none",
                "valid": bool(check.valid_for_corpus),
                "why": check.reason,
            },
        ]
    )
    return table, validity


# -- the coverage study ------------------------------------------------------------------------


@dataclass
class CoverageResult:
    detail: pd.DataFrame  # per n and label
    headline: pd.DataFrame  # per n
    sample_size: pd.DataFrame  # per label: the n PPI needs for the paper's precision
    metrics: dict[str, Any]
    figure: Figure | None = None
    notes: list[str] = field(default_factory=list)


def coverage_study(
    Y: np.ndarray,
    Yhat: np.ndarray,
    space: LabelSpace,
    *,
    n_values: Sequence[int] = (50, 100, 200, 400),
    repeats: int = 1000,
    seed: int = 20260115,
    confidence: float = 0.95,
    min_remainder: int = 100,
    power_tuning: bool = True,
    paper_n: int = PAPER_CODED_POSTS,
    population_size: int = PAPER_POPULATION,
    target_coverage: float = 0.93,
    min_positives: int = 5,
    progress: bool = False,
) -> CoverageResult:
    """Coverage and width of classical (Wilson) and PPI intervals for the remainder's true shares
    (see the module docstring).  ``Y``: the coded posts' labels; ``Yhat``: the tagger's out-of-fold
    predictions for them (probabilities or 0/1).  An ``n`` that leaves fewer than
    ``min_remainder`` posts uncoded is dropped (said in ``notes``).

    Each split's remainder is small (hundreds of posts, where the real population has thousands),
    so its share is itself noisy: coverage is of each interval widened by sqrt(1 + n / (N - n))
    (``coverage_*``; this makes the classical interval exact for the remainder's share) and, for
    reference, of the intervals as computed (``coverage_*_unadjusted``).  Widths are of the
    intervals as computed.  PPI falls back to the Wilson interval where the hand-coded part has
    fewer than ``min_positives`` posts with (or without) a label (``ppi_share_of_splits``: how often
    PPI itself was used), as :func:`prevalence_estimates` does."""
    import pandas as pd
    from tqdm.auto import tqdm

    Y = np.asarray(Y, dtype=np.float64)
    Yhat = np.asarray(Yhat, dtype=np.float64)
    if Y.shape != Yhat.shape:
        raise PPIError(f"labels {Y.shape} and predictions {Yhat.shape} differ in shape")
    if repeats < 1:
        raise PPIError(f"repeats must be positive, got {repeats}")
    columns = np.sort(np.concatenate([space.positions(level=lv) for lv in ESTIMATE_LEVELS]))
    total = len(Y)
    kept = [int(n) for n in n_values if 2 <= int(n) <= total - min_remainder]
    dropped = [int(n) for n in n_values if int(n) not in kept]
    notes = []
    if dropped:
        notes.append(
            f"n = {', '.join(map(str, dropped))} dropped: {total} coded posts leave fewer than "
            f"{min_remainder} uncoded (the cap is n <= {total - min_remainder})"
        )
    if not kept:
        raise PPIError(f"no n of {list(n_values)} fits {total} coded posts with {min_remainder} left uncoded")
    y, f = Y[:, columns], Yhat[:, columns]
    z = _z(confidence)
    rows = []
    for n in tqdm(kept, desc="coverage study", unit="n", disable=not progress):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(n)]))
        # the remainder's share is itself a sample of its N - n posts: an interval for it is the
        # interval for the mean widened by sqrt(1 + n / (N - n)) (exact for the classical one)
        widen = math.sqrt(1 + n / (total - n))
        stats = {k: np.zeros(len(columns)) for k in ("cc", "cp", "rc", "rp", "wc", "wp", "used")}
        for _ in range(repeats):
            order = rng.permutation(total)
            lab, rem = order[:n], order[n:]
            truth = y[rem].mean(axis=0)
            counts = y[lab].sum(axis=0)
            lo, hi = wilson_intervals(counts, n, confidence)
            _, plo, phi, used = ppi_or_wilson(
                y[lab],
                f[lab],
                f[rem],
                confidence=confidence,
                power_tuning=power_tuning,
                min_positives=min_positives,
            )
            share = counts / n
            alo, ahi = wilson_intervals(share * n / widen**2, n / widen**2, confidence)
            mid, half = (plo + phi) / 2, (phi - plo) / 2 * widen
            plo_a = np.where(used, mid - half, alo)
            phi_a = np.where(used, mid + half, ahi)
            eps = 1e-12
            stats["cc"] += (alo <= truth + eps) & (truth - eps <= ahi)
            stats["cp"] += (plo_a <= truth + eps) & (truth - eps <= phi_a)
            stats["rc"] += (lo <= truth + eps) & (truth - eps <= hi)
            stats["rp"] += (plo <= truth + eps) & (truth - eps <= phi)
            stats["wc"] += hi - lo
            stats["wp"] += phi - plo
            stats["used"] += used
        for i, j in enumerate(columns):
            label = space.labels[j]
            rows.append(
                {
                    "n": n,
                    "type": label.type,
                    "level": label.level,
                    "label": label.name,
                    "prevalence": float(y[:, i].mean()),
                    "coverage_classical": stats["cc"][i] / repeats,
                    "coverage_ppi": stats["cp"][i] / repeats,
                    "coverage_classical_unadjusted": stats["rc"][i] / repeats,
                    "coverage_ppi_unadjusted": stats["rp"][i] / repeats,
                    "width_classical": stats["wc"][i] / repeats,
                    "width_ppi": stats["wp"][i] / repeats,
                    "ppi_share_of_splits": stats["used"][i] / repeats,
                }
            )
    detail = pd.DataFrame(rows)
    detail["width_ratio"] = detail["width_ppi"] / detail["width_classical"].where(
        detail["width_classical"] > 0
    )
    headline = (
        detail.groupby("n", sort=True)
        .agg(
            labels=("label", "size"),
            coverage_classical=("coverage_classical", "mean"),
            coverage_classical_min=("coverage_classical", "min"),
            coverage_ppi=("coverage_ppi", "mean"),
            coverage_ppi_min=("coverage_ppi", "min"),
            coverage_classical_unadjusted=("coverage_classical_unadjusted", "mean"),
            coverage_ppi_unadjusted=("coverage_ppi_unadjusted", "mean"),
            width_classical=("width_classical", "mean"),
            width_ppi=("width_ppi", "mean"),
        )
        .reset_index()
    )
    headline["width_ratio"] = headline["width_ppi"] / headline["width_classical"]
    headline.insert(1, "uncoded", total - headline["n"])
    headline.insert(2, "repeats", repeats)
    headline["ppi_holds"] = headline["coverage_ppi"] >= target_coverage
    below = detail[detail["coverage_ppi"] < target_coverage]
    if len(below):
        notes.append(
            f"{below['label'].nunique()} label(s) fall below {target_coverage:.2f} PPI coverage at some n "
            "(rare labels: few positives among the coded posts): "
            + "; ".join(
                f"{r.label} at n={r.n} ({r.coverage_ppi:.3f}, prevalence {r.prevalence:.3f})"
                for r in below.sort_values(["n", "label"]).head(12).itertuples()
            )
        )
    needed = _needed_sample_size(y, f, space, columns, paper_n=paper_n, population_size=population_size, z=z)
    finite = needed["n_ppi"].replace([np.inf], np.nan).dropna()
    metrics: dict[str, Any] = {
        "coded_posts": total,
        "repeats": repeats,
        "seed": seed,
        "confidence": confidence,
        "n_values": kept,
        "dropped_n": dropped,
        "target_coverage": target_coverage,
        "headline": headline.round(DIGITS).to_dict(orient="records"),
        "paper_n": paper_n,
        "population_size": population_size,
        "median_n_ppi_for_paper_precision": float(finite.median()) if len(finite) else None,
        "notes": notes,
    }
    return CoverageResult(
        detail.round(DIGITS),
        headline.round(DIGITS),
        needed.round(DIGITS),
        metrics,
        coverage_figure(headline, target_coverage),
        notes,
    )


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - (1 - confidence) / 2))


def _needed_sample_size(
    y: np.ndarray,
    f: np.ndarray,
    space: LabelSpace,
    columns: np.ndarray,
    *,
    paper_n: int,
    population_size: int,
    z: float,
) -> pd.DataFrame:
    """Per label, the coded posts PPI needs for the width the paper's ``paper_n`` posts give a
    classical interval, predictions on ``population_size`` threads: with the PPI++ weight
    lambda = cov(Y, f) / var(f) (clipped to [0, 1]), the PPI variance is var(Y - lambda f) / n +
    lambda^2 var(f) / N, set equal to var(Y) / paper_n."""
    import pandas as pd

    rows = []
    for i, j in enumerate(columns):
        label = space.labels[j]
        yi, fi = y[:, i], f[:, i]
        var_y, var_f = float(yi.var()), float(fi.var())
        lam = float(np.clip(np.cov(yi, fi, bias=True)[0, 1] / var_f, 0, 1)) if var_f > 0 else 0.0
        var_rect = float((yi - lam * fi).var())
        target = var_y / paper_n
        room = target - lam**2 * var_f / population_size
        n_ppi = (
            math.ceil(var_rect / room) if room > 0 and var_rect > 0 else (0 if var_rect == 0 else math.inf)
        )
        rows.append(
            {
                "type": label.type,
                "level": label.level,
                "label": label.name,
                "prevalence": float(yi.mean()),
                "paper_width": 2 * z * math.sqrt(target),
                "lambda": lam,
                "n_ppi": float(n_ppi),
                "share_of_paper_n": float(n_ppi) / paper_n,
            }
        )
    return pd.DataFrame(rows)


def coverage_figure(headline: pd.DataFrame, target: float = 0.93) -> Figure:
    """Coverage of the classical and PPI 95% intervals (mean and worst label) and the width ratio
    PPI/classical against the number of coded posts."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 3.2))
    left, right = fig.subplots(1, 2)
    n = headline["n"].to_numpy()
    left.plot(n, headline["coverage_classical"], "o-", label="classical (Wilson), mean")
    left.plot(n, headline["coverage_ppi"], "s-", label="PPI, mean")
    left.plot(n, headline["coverage_ppi_min"], "s:", color="tab:orange", alpha=0.6, label="PPI, worst label")
    left.axhline(0.95, color="black", lw=0.8, ls="--")
    left.axhline(target, color="tab:red", lw=0.8, ls=":", label=f"{target:.2f}")
    left.set_xlabel("hand-coded posts n")
    left.set_ylabel("coverage of the uncoded remainder's share")
    left.set_ylim(
        max(
            0.0,
            min(
                0.8, float(np.nanmin(headline[["coverage_ppi_min", "coverage_classical"]].to_numpy())) - 0.02
            ),
        ),
        1.0,
    )
    left.legend(fontsize=7, frameon=False)
    right.plot(n, headline["width_ratio"], "d-", color="tab:green")
    right.axhline(1.0, color="black", lw=0.8, ls="--")
    right.set_xlabel("hand-coded posts n")
    right.set_ylabel("mean width PPI / classical")
    right.set_ylim(0, max(1.1, float(headline["width_ratio"].max()) + 0.05))
    fig.tight_layout()
    return fig
