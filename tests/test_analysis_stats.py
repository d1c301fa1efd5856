"""Statistics of the analysis stages against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from secmine.analysis import stats

Z95 = 1.959963984540054


def _wilson_by_hand(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


# -- sample sizes ------------------------------------------------------------------------------


def test_cochran_paper_hf_discussions() -> None:
    # n0 = 1.96^2 * 0.25 / 0.05^2 = 384.146; n = 384.146 / (1 + 383.146 / 8421) = 367.4 -> 368
    assert stats.cochran_sample_size(8421, 0.95, 0.05) == 368


@pytest.mark.parametrize(
    ("population", "confidence", "margin", "expected"),
    [
        (None, 0.95, 0.05, 385),  # n0 = 384.146 -> 385
        (2783, 0.95, 0.05, 338),  # 384.146 / (1 + 383.146 / 2783) = 337.66
        (100, 0.95, 0.05, 80),  # 384.146 / 4.83146 = 79.51
        (10, 0.95, 0.05, 10),  # 9.77 -> 10, never more than the population
        (0, 0.95, 0.05, 0),
        (None, 0.99, 0.03, 1844),  # 2.5758^2 * 0.25 / 0.0009 = 1843.03
    ],
)
def test_cochran_hand_values(population: int | None, confidence: float, margin: float, expected: int) -> None:
    assert stats.cochran_sample_size(population, confidence, margin) == expected


def test_cochran_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        stats.cochran_sample_size(100, 1.5, 0.05)
    with pytest.raises(ValueError):
        stats.cochran_sample_size(100, 0.95, 0.0)
    with pytest.raises(ValueError):
        stats.cochran_sample_size(-1)


# -- proportions -------------------------------------------------------------------------------


def test_wilson_interval_by_hand() -> None:
    low, high = stats.wilson_interval(5, 20)
    assert (low, high) == pytest.approx(_wilson_by_hand(5, 20), abs=1e-9)
    assert (low, high) == pytest.approx((0.111862, 0.468701), abs=1e-6)
    # k = 0 and k = n stay inside [0, 1]
    assert stats.wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert stats.wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))
    with pytest.raises(ValueError):
        stats.wilson_interval(3, 2)


def test_proportion_table_groups_and_total() -> None:
    frame = pd.DataFrame({"source": ["a"] * 20 + ["b"] * 10, "flag": [True] * 5 + [False] * 15 + [True] * 10})
    table = stats.proportion_table(frame, ["source"], "flag").set_index("source")
    assert table.loc["a", "count"] == 5 and table.loc["a", "n"] == 20
    assert table.loc["a", "proportion"] == 0.25
    assert table.loc["a", "ci_low"] == pytest.approx(_wilson_by_hand(5, 20)[0], abs=1e-6)
    assert table.loc["all", "count"] == 15 and table.loc["all", "n"] == 30
    assert table.loc["all", "ci_high"] == pytest.approx(_wilson_by_hand(15, 30)[1], abs=1e-6)


def test_weighted_proportion_table_equals_the_repeated_rows() -> None:
    counted = pd.DataFrame({"source": ["b", "a", "a", "b", "c"], "flag": [True, True, False, False, False],
                            "n": [3, 5, 15, 7, 2]})
    repeated = counted.loc[counted.index.repeat(counted["n"]), ["source", "flag"]].reset_index(drop=True)
    weighted = stats.proportion_table(counted, ["source"], "flag", weight="n", confidence=0.9, digits=4)
    pd.testing.assert_frame_equal(weighted, stats.proportion_table(repeated, ["source"], "flag", confidence=0.9, digits=4))
    assert weighted["source"].tolist() == ["a", "b", "c", "all"] and weighted["n"].tolist() == [20, 10, 2, 32]
    assert weighted.loc[weighted["source"] == "c", "count"].item() == 0


# -- concentration -----------------------------------------------------------------------------


def test_gini_tiny_cases() -> None:
    assert stats.gini([1, 1, 1, 1]) == pytest.approx(0.0)
    assert stats.gini([0, 0, 0, 1]) == pytest.approx(0.75)  # 1 - 1/n
    # mean absolute difference: (1 + 2 + 1) * 2 / (2 * 3^2 * 2) = 8 / 36
    assert stats.gini([3, 1, 2]) == pytest.approx(8 / 36)
    assert stats.gini([0, 0]) == 0.0
    with pytest.raises(ValueError):
        stats.gini([])
    with pytest.raises(ValueError):
        stats.gini([1, -1])


def test_lorenz_curve_points() -> None:
    x, y = stats.lorenz_curve([2, 1, 1])
    assert x.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert y.tolist() == pytest.approx([0, 0.25, 0.5, 1])
    assert stats.top_share([1, 1, 2, 6], 0.25) == pytest.approx(0.6)


# -- growth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["poisson", "quasipoisson", "negbin"])
def test_growth_rate_recovers_exact_exponential(model: str) -> None:
    months = np.arange(36)
    counts = 100 * np.exp(0.05 * months)  # 5% a month = exp(0.6) - 1 = 82.21% a year
    fit = stats.growth_rate(counts, model=model)  # type: ignore[arg-type]
    assert fit.beta_per_month == pytest.approx(0.05, abs=1e-6)
    assert fit.annual_rate == pytest.approx(math.exp(0.6) - 1, abs=1e-5)
    assert fit.annual_ci_low < fit.annual_rate < fit.annual_ci_high
    assert fit.doubling_months == pytest.approx(math.log(2) / 0.05, rel=1e-5)


def test_growth_rate_interval_covers_truth_on_noisy_counts() -> None:
    rng = np.random.default_rng(7)
    beta = 0.04
    counts = rng.poisson(30 * np.exp(beta * np.arange(48)))
    fit = stats.growth_rate(counts, model="quasipoisson")
    truth = math.expm1(12 * beta)
    assert fit.annual_ci_low < truth < fit.annual_ci_high
    # over-dispersed counts widen the quasi-Poisson interval, never narrow it
    noisy = rng.negative_binomial(3, 3 / (3 + 30 * np.exp(beta * np.arange(48))))
    poisson = stats.growth_rate(noisy, model="poisson")
    quasi = stats.growth_rate(noisy, model="quasipoisson")
    assert quasi.dispersion > 1
    assert quasi.annual_ci_high - quasi.annual_ci_low > poisson.annual_ci_high - poisson.annual_ci_low


def test_growth_rate_with_exposure_is_the_growth_of_the_share() -> None:
    months = np.arange(24)
    threads = 1000 * np.exp(0.10 * months)
    security = 0.05 * threads * np.exp(0.02 * months)  # the share itself grows 2% a month
    fit = stats.growth_rate(security, exposure=threads, model="poisson")
    assert fit.beta_per_month == pytest.approx(0.02, abs=1e-6)


def test_growth_rate_rejects_too_little_data() -> None:
    with pytest.raises(ValueError):
        stats.growth_rate([1, 2])
    with pytest.raises(ValueError):
        stats.growth_rate([0, 0, 0, 0])
    with pytest.raises(ValueError):
        stats.growth_rate([1, 2, 3], model="linear")  # type: ignore[arg-type]


# -- agreement ---------------------------------------------------------------------------------


def test_cohen_kappa_small_table_by_hand() -> None:
    # 2x2 table: yes/yes 20, yes/no 5, no/yes 10, no/no 15 (n = 50)
    # po = 35/50 = 0.7; pe = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert stats.cohen_kappa(a, b) == pytest.approx(0.4)
    assert stats.cohen_kappa([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)
    assert math.isnan(stats.cohen_kappa([0, 0, 0], [0, 0, 0]))  # no variation: undefined


def test_krippendorff_alpha_two_coders_by_hand() -> None:
    # coincidences o00 = 4, o11 = 2, o01 = o10 = 1; n0 = 5, n1 = 3, n = 8
    # Do = 2/8, De = 2 * 5 * 3 / (8 * 7) = 30/56, alpha = 1 - 0.25 / (30/56) = 8/15
    assert stats.krippendorff_alpha([[1, 1, 0, 0], [1, 0, 0, 0]]) == pytest.approx(8 / 15)


def test_krippendorff_alpha_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units,
    # missing values, nominal alpha = 0.743
    nan = np.nan
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    assert stats.krippendorff_alpha(data) == pytest.approx(0.743, abs=5e-4)
    # units with two or more values: 11; all coders agree on units 1, 3, 4, 5, 7, 9, 10, 11
    assert stats.percent_agreement(np.array(data, dtype=float)) == pytest.approx(8 / 11)
