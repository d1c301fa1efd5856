"""Statistics used by the RQ1, sampling, coding and topic analyses.

Everything here is a thin, tested layer over statsmodels, scikit-learn and ``krippendorff``:

* :func:`wilson_interval` / :func:`proportion_table` - proportions with Wilson score intervals;
* :func:`cochran_sample_size` - Cochran's sample size with the finite population correction;
* :func:`lorenz_curve` / :func:`gini` - concentration of counts across projects;
* :func:`growth_rate` - an exponential growth rate fitted to monthly counts (Poisson GLM);
* :func:`cohen_kappa` / :func:`krippendorff_alpha` - inter-coder agreement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

GrowthModel = Literal["poisson", "quasipoisson", "negbin"]


# -- proportions ---------------------------------------------------------------------------------


def wilson_interval(count: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``count / total`` (statsmodels ``proportion_confint``).

    A zero total has no interval: ``(nan, nan)``.
    """
    from statsmodels.stats.proportion import proportion_confint

    _check_confidence(confidence)
    if count < 0 or total < 0 or count > total:
        raise ValueError(f"count {count} and total {total} do not make a proportion")
    if total == 0:
        return (math.nan, math.nan)
    low, high = proportion_confint(int(count), int(total), alpha=1 - confidence, method="wilson")
    return (float(low), float(high))


def proportion_table(
    frame: pd.DataFrame,
    by: Sequence[str],
    flag: str,
    *,
    weight: str | None = None,
    confidence: float = 0.95,
    digits: int = 6,
) -> pd.DataFrame:
    """Per group of ``by``: ``n`` rows, ``count`` rows where ``flag`` is true, ``proportion`` and
    its Wilson interval (``ci_low``, ``ci_high``), plus an ``all`` row over every group.

    ``weight``: a column of integer counts, when each row stands for that many items (a counted
    frame): ``n`` and ``count`` then sum it instead of counting rows."""
    import pandas as pd

    by = list(by)
    flags = frame[flag].to_numpy(dtype=bool)
    n = frame[weight].to_numpy(dtype="int64") if weight is not None else np.ones(len(frame), dtype="int64")
    work = pd.DataFrame({f"_by{i}": frame[column].to_numpy() for i, column in enumerate(by)})
    work["_n"], work["_k"] = n, flags * n
    sums = work.groupby([f"_by{i}" for i in range(len(by))], sort=True, dropna=False)[["_n", "_k"]].sum()
    rows = []
    for key, total, count in zip(sums.index, sums["_n"], sums["_k"], strict=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append(dict(zip(by, key, strict=True)) | _prop_row(int(count), int(total), confidence, digits))
    total = {column: "all" for column in by} | _prop_row(int(work["_k"].sum()), int(work["_n"].sum()), confidence, digits)
    rows.append(total)
    return pd.DataFrame(rows, columns=[*by, "n", "count", "proportion", "ci_low", "ci_high"])


def _prop_row(count: int, total: int, confidence: float, digits: int) -> dict[str, float | int]:
    low, high = wilson_interval(count, total, confidence)
    proportion = count / total if total else math.nan
    return {
        "n": total,
        "count": count,
        "proportion": round(proportion, digits),
        "ci_low": round(low, digits),
        "ci_high": round(high, digits),
    }


# -- sample sizes --------------------------------------------------------------------------------


def z_value(confidence: float) -> float:
    """The two-sided standard normal quantile of a confidence level (1.959964 for 0.95)."""
    from scipy.stats import norm

    _check_confidence(confidence)
    return float(norm.ppf(1 - (1 - confidence) / 2))


def cochran_sample_size(
    population: int | None,
    confidence: float = 0.95,
    margin: float = 0.05,
    proportion: float = 0.5,
) -> int:
    """Cochran's sample size, with the finite population correction, rounded up.

    ``n0 = z^2 p (1 - p) / e^2`` and ``n = n0 / (1 + (n0 - 1) / N)``; ``population=None`` means
    an infinite population (``n0`` rounded up).  The sample never exceeds the population.
    For 95% confidence and a 5% margin over the paper's 8,421 HF security discussions this is 368.
    """
    if not 0 < margin < 1:
        raise ValueError(f"margin {margin} must be between 0 and 1")
    if not 0 < proportion < 1:
        raise ValueError(f"proportion {proportion} must be between 0 and 1")
    z = z_value(confidence)
    n0 = z * z * proportion * (1 - proportion) / (margin * margin)
    if population is None:
        return math.ceil(n0)
    if population < 0:
        raise ValueError(f"population {population} is negative")
    if population == 0:
        return 0
    n = n0 / (1 + (n0 - 1) / population)
    # guard against 367.0000000001-style float noise before rounding up
    return min(int(population), math.ceil(round(n, 9)))


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} must be between 0 and 1")


# -- concentration -------------------------------------------------------------------------------


def lorenz_curve(values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points of the Lorenz curve: cumulative share of units (x) against cumulative share of the
    total (y), from the smallest unit up, both starting at 0."""
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0:
        raise ValueError("the Lorenz curve of nothing is undefined")
    if np.any(x < 0):
        raise ValueError("the Lorenz curve needs non-negative values")
    total = x.sum()
    if total == 0:
        raise ValueError("the Lorenz curve of all zeros is undefined")
    share_units = np.arange(0, x.size + 1) / x.size
    share_total = np.concatenate([[0.0], np.cumsum(x) / total])
    return share_units, share_total


def gini(values: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, ``1 - 1/n`` when one unit
    holds everything.  ``G = 2 * sum_i(i * x_(i)) / (n * sum x) - (n + 1) / n`` (ascending, 1-based)."""
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0:
        raise ValueError("the Gini coefficient of nothing is undefined")
    if np.any(x < 0):
        raise ValueError("the Gini coefficient needs non-negative values")
    total = x.sum()
    if total == 0:
        return 0.0
    n = x.size
    ranks = np.arange(1, n + 1)
    return float(2 * np.sum(ranks * x) / (n * total) - (n + 1) / n)


def top_share(values: Sequence[float] | np.ndarray, fraction: float) -> float:
    """Share of the total held by the top ``fraction`` of units (at least one unit)."""
    x = np.sort(np.asarray(values, dtype=float))[::-1]
    if x.size == 0 or x.sum() == 0:
        return math.nan
    k = max(1, math.ceil(fraction * x.size))
    return float(x[:k].sum() / x.sum())


# -- growth --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrowthFit:
    """An exponential growth fit ``E[count] = exp(a + b * month)``."""

    model: str
    months: int
    first_month: str
    last_month: str
    total: int
    beta_per_month: float
    beta_se: float
    monthly_rate: float
    annual_rate: float  # exp(12 b) - 1
    annual_ci_low: float
    annual_ci_high: float
    doubling_months: float
    dispersion: float  # Pearson chi2 / df of the Poisson fit
    confidence: float

    def as_dict(self, digits: int = 6) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in asdict(self).items():
            out[key] = round(value, digits) if isinstance(value, float) and math.isfinite(value) else value
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


def growth_rate(
    counts: Sequence[float] | np.ndarray,
    *,
    model: GrowthModel = "quasipoisson",
    confidence: float = 0.95,
    exposure: Sequence[float] | np.ndarray | None = None,
    times: Sequence[float] | np.ndarray | None = None,
    first_month: str = "",
    last_month: str = "",
) -> GrowthFit:
    """Fit ``log E[count_t] = a + b t`` to consecutive monthly counts with a statsmodels GLM.

    ``model`` is ``poisson``, ``quasipoisson`` (Poisson, with the standard error scaled by the
    square root of the Pearson chi2 dispersion when it exceeds 1, so the interval widens with
    over-dispersion but never narrows below Poisson's; the default) or ``negbin`` (a negative
    binomial GLM whose dispersion comes from the Cameron-Trivedi auxiliary regression on the
    Poisson fit).  ``exposure`` (e.g. all threads per month) turns
    the fit into the growth of the *rate* ``count / exposure``; ``times`` (months since the
    first, default ``0, 1, 2, ...``) lets months without exposure be left out.  The annual rate is
    ``exp(12 b) - 1`` with the interval ``exp(12 (b -+ z se)) - 1``.
    """
    import statsmodels.api as sm

    y = np.asarray(counts, dtype=float)
    if y.ndim != 1 or y.size < 3:
        raise ValueError(f"a growth rate needs at least 3 monthly counts, got {y.size}")
    if np.any(y < 0) or np.any(np.isnan(y)):
        raise ValueError("monthly counts must be non-negative numbers")
    if y.sum() == 0:
        raise ValueError("a growth rate of all-zero counts is undefined")
    t = np.arange(y.size, dtype=float) if times is None else np.asarray(times, dtype=float)
    if t.shape != y.shape:
        raise ValueError("times must be as long as the counts")
    design = sm.add_constant(t)
    offset = None
    if exposure is not None:
        e = np.asarray(exposure, dtype=float)
        if e.shape != y.shape or np.any(e <= 0):
            raise ValueError("exposure must be positive and as long as the counts")
        offset = np.log(e)
    poisson = glm_fit(y, design, sm.families.Poisson(), offset)
    dispersion = float(poisson.pearson_chi2 / poisson.df_resid) if poisson.df_resid > 0 else math.nan
    if model == "poisson" or model == "quasipoisson":
        beta = float(poisson.params[1])
        se = float(poisson.bse[1])
        if model == "quasipoisson" and math.isfinite(dispersion):
            se *= math.sqrt(max(1.0, dispersion))
    elif model == "negbin":
        # NB2 with its dispersion from the Cameron-Trivedi auxiliary regression on the Poisson
        # fit (closed form, so it cannot fail to converge when the data are near Poisson).
        mu = np.asarray(poisson.fittedvalues, dtype=float)
        alpha = max(1e-8, float(np.sum((y - mu) ** 2 - y) / np.sum(mu**2)))
        fit = glm_fit(y, design, sm.families.NegativeBinomial(alpha=alpha), offset)
        beta = float(np.asarray(fit.params)[1])
        se = float(np.asarray(fit.bse)[1])
    else:
        raise ValueError(f"unknown growth model {model!r}; use poisson, quasipoisson or negbin")
    z = z_value(confidence)
    doubling = math.log(2) / beta if beta > 0 else math.inf
    return GrowthFit(
        model=model,
        months=int(y.size),
        first_month=first_month,
        last_month=last_month,
        total=int(y.sum()),
        beta_per_month=beta,
        beta_se=se,
        monthly_rate=math.expm1(beta),
        annual_rate=math.expm1(12 * beta),
        annual_ci_low=math.expm1(12 * (beta - z * se)),
        annual_ci_high=math.expm1(12 * (beta + z * se)),
        doubling_months=doubling,
        dispersion=dispersion,
        confidence=confidence,
    )


def glm_fit(y: np.ndarray, design: np.ndarray, family: object, offset: np.ndarray | None) -> object:
    """A statsmodels GLM fit; the perfect-prediction warning of noise-free series is silenced."""
    import warnings

    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Perfect separation")
        return sm.GLM(y, design, family=family, offset=offset).fit()


# -- agreement -----------------------------------------------------------------------------------


def cohen_kappa(rater_a: Sequence[object], rater_b: Sequence[object]) -> float:
    """Cohen's kappa of two raters (scikit-learn); ``nan`` when chance agreement is total
    (both raters gave one and the same value to every unit)."""
    import warnings

    from sklearn.metrics import cohen_kappa_score

    a, b = list(rater_a), list(rater_b)
    if len(a) != len(b):
        raise ValueError(f"the raters rated {len(a)} and {len(b)} units")
    if not a:
        return math.nan
    labels = sorted(set(a) | set(b), key=repr)
    if len(labels) < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(a, b, labels=labels, replace_undefined_by=np.nan))


def krippendorff_alpha(reliability: np.ndarray | Sequence[Sequence[float]], level: str = "nominal") -> float:
    """Krippendorff's alpha (the ``krippendorff`` package) of a raters x units matrix, ``nan``
    marking a missing rating; ``nan`` when there is no variation to agree on."""
    import krippendorff

    data = np.asarray(reliability, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        raise ValueError("Krippendorff's alpha needs a matrix of at least two raters x units")
    values = data[~np.isnan(data)]
    if values.size == 0 or np.unique(values).size < 2:
        return math.nan
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


def percent_agreement(reliability: np.ndarray) -> float:
    """Share of units on which every rater gave the same value (missing ratings ignored)."""
    data = np.asarray(reliability, dtype=float)
    agree = 0
    units = 0
    for column in data.T:
        present = column[~np.isnan(column)]
        if present.size < 2:
            continue
        units += 1
        agree += int(np.all(present == present[0]))
    return agree / units if units else math.nan
