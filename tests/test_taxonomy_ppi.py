"""Prediction-powered inference: closed forms, the valid/invalid-sample check, the estimates, the
coverage study and the uncertainty-ordered sheet."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from secmine.analysis.sampling import SampleParams, draw_sample, parse_strata, sample_plan
from secmine.codebook import Codebook
from secmine.io import write_csv, write_table
from secmine.schema import thread_id
from secmine.taxonomy.labels import LabelSpace
from secmine.taxonomy.ordering import order_sheet_by_uncertainty
from secmine.taxonomy.ppi import (
    check_coded_sample,
    coverage_study,
    ppi_intervals,
    ppi_or_wilson,
    prevalence_estimates,
)
from secmine.taxonomy.tagger import long_rows

CODEBOOK = """\
issue:
  Model:
    Output:
      - Harmful output
  Data:
    Exposure:
      - Data leak
solution:
  Model:
    Filters:
      - Content filter
"""
Z = float(norm.ppf(0.975))


@pytest.fixture()
def space(tmp_path: Path) -> LabelSpace:
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK, encoding="utf-8")
    return LabelSpace(Codebook.from_yaml(path))


# -- closed forms ------------------------------------------------------------------------------


def test_ppi_matches_the_closed_form_without_and_with_power_tuning() -> None:
    rng = np.random.default_rng(0)
    n, N = 80, 2000
    Y = (rng.random(n) < 0.3).astype(float)
    f = np.clip(0.3 * Y + 0.35 + rng.normal(0, 0.25, n), 0, 1)
    f_u = np.clip(0.35 + 0.3 * (rng.random(N) < 0.3) + rng.normal(0, 0.25, N), 0, 1)
    # plain PPI: theta = mean(f_u) + mean(Y - f), se^2 = var(f_u) / N + var(Y - f) / n
    theta = f_u.mean() + (Y - f).mean()
    se = np.sqrt(f_u.var() / N + (Y - f).var() / n)
    est, lo, hi = ppi_intervals(Y[:, None], f[:, None], f_u[:, None], power_tuning=False)
    assert np.allclose([est[0], lo[0], hi[0]], [theta, theta - Z * se, theta + Z * se], atol=1e-12)
    # PPI++: lambda = cov(Y, f) / ((1 + n / N) var(f over all rows)), clipped to [0, 1]
    cov = ((Y - Y.mean()) * (f - f.mean())).mean()
    lam = np.clip(cov / ((1 + n / N) * np.var(np.concatenate([f, f_u]), ddof=1)), 0, 1)
    theta = lam * f_u.mean() + (Y - lam * f).mean()
    se = np.sqrt((lam * f_u).var() / N + (Y - lam * f).var() / n)
    est, lo, hi = ppi_intervals(Y[:, None], f[:, None], f_u[:, None], power_tuning=True)
    assert 0 < lam < 1
    assert np.allclose([est[0], lo[0], hi[0]], [theta, theta - Z * se, theta + Z * se], atol=1e-12)


def test_perfect_predictions_leave_only_the_unlabelled_variance() -> None:
    rng = np.random.default_rng(1)
    Y = (rng.random(50) < 0.4).astype(float)
    f_u = (rng.random(5000) < 0.4).astype(float)
    est, lo, hi = ppi_intervals(Y[:, None], Y[:, None], f_u[:, None], power_tuning=False)
    assert np.isclose(est[0], f_u.mean())
    assert np.isclose(hi[0] - lo[0], 2 * Z * f_u.std() / np.sqrt(len(f_u)))
    # the classical interval of 50 posts is ten times wider
    assert (hi[0] - lo[0]) * 5 < 2 * Z * Y.std() / np.sqrt(len(Y))


def test_constant_predictions_give_the_classical_interval_and_rare_labels_fall_back() -> None:
    rng = np.random.default_rng(2)
    Y = (rng.random((60, 2)) < [0.5, 0.03]).astype(float)
    f = np.zeros_like(Y)
    est, lo, hi = ppi_intervals(Y, f, np.zeros((400, 2)))
    assert np.allclose(est, Y.mean(axis=0))
    assert np.isclose(hi[0] - lo[0], 2 * Z * Y[:, 0].std() / np.sqrt(60))
    est, lo, hi, used = ppi_or_wilson(Y, f, np.zeros((400, 2)), min_positives=5)
    assert used.tolist() == [True, False]
    assert lo[1] >= 0 and hi[1] > Y[:, 1].mean()  # Wilson: never an empty interval at 0


# -- the valid/invalid-sample check ------------------------------------------------------------


def classified_frame(hf: int = 220, gh: int = 90) -> pd.DataFrame:
    rows = []
    for platform, kind, count in (("huggingface", "discussion", hf), ("github", "issue", gh)):
        for n in range(1, count + 1):
            repo = f"org/m{n % 7}" if platform == "huggingface" else f"gh/r{n % 5}"
            rows.append(
                {
                    "id": thread_id(platform, kind, repo, n),
                    "platform": platform,
                    "kind": kind,
                    "repo": repo,
                    "number": n,
                    "created_at": f"2024-{1 + n % 12:02d}-01T00:00:00Z",
                    "keyword_match": False,
                    "probability": 0.9,
                    "label": 1,
                }
            )
    from secmine.analysis.data import check_classified

    return check_classified(pd.DataFrame(rows))


PARAMS = SampleParams(margin=0.1, seed=5)


def drawn(classified: pd.DataFrame) -> pd.DataFrame:
    security = classified[classified["label"] == 1]
    strata = parse_strata(PARAMS.strata)
    plan = sample_plan(security, strata, confidence=PARAMS.confidence, margin=PARAMS.margin)
    return draw_sample(security, plan, PARAMS.seed)


def truth(thread: str) -> list[tuple[str, str]]:
    """Deterministic 'hand coding' of a thread: Harmful output on numbers divisible by 3, ..."""
    number = int(thread.rsplit("#", 1)[1])
    codes = []
    if number % 3 == 0:
        codes.append(("issue", "Harmful output"))
    if number % 5 == 0:
        codes.append(("issue", "Data leak"))
    if number % 4 == 0:
        codes.append(("solution", "Content filter"))
    return codes


def write_coding(sample: pd.DataFrame, path: Path) -> Path:
    rows = []
    for source, post_id, ident in zip(sample["source"], sample["post_id"], sample["id"]):
        codes = truth(ident)
        rows.append(
            {
                "source": source,
                "id": post_id,
                "issue": ", ".join(c for t, c in codes if t == "issue"),
                "solution": ", ".join(c for t, c in codes if t == "solution"),
            }
        )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def first_draws(sample: pd.DataFrame, k: int) -> pd.DataFrame:
    return sample[sample["draw"] <= k]


def test_check_accepts_a_prefix_of_the_seeded_draw_and_rejects_the_rest(
    tmp_path: Path, space: LabelSpace, tiny_replication: Path
) -> None:
    classified = classified_frame()
    sample = drawn(classified)
    sample_path = write_csv(sample, tmp_path / "sample.csv")
    common = {
        "sample_path": sample_path,
        "classified": classified,
        "sample_params": PARAMS,
        "replication_root": tiny_replication,
    }

    check = check_coded_sample(write_coding(first_draws(sample, 40), tmp_path / "a.csv"), space, **common)
    assert check.case == "run-sample" and check.valid_for_corpus
    assert set(check.coded["stratum"]) == {"HF Discussion", "GH Issue+GH Discussion"}
    whole = check_coded_sample(write_coding(sample, tmp_path / "whole.csv"), space, **common)
    assert whole.valid_for_corpus and len(whole.coded) == len(sample)

    skipped = sample[(sample["draw"] <= 40) & (sample["draw"] != 7)]
    check = check_coded_sample(write_coding(skipped, tmp_path / "b.csv"), space, **common)
    assert not check.valid_for_corpus and "draw 7 is not coded" in check.reason

    stranger = pd.concat(
        [
            first_draws(sample, 3)[["source", "post_id", "id"]],
            pd.DataFrame(
                {"source": ["HF Discussion"], "post_id": ["org/m0-999"], "id": ["hf:discussion:org/m0#999"]}
            ),
        ]
    )
    check = check_coded_sample(write_coding(stranger, tmp_path / "c.csv"), space, **common)
    assert not check.valid_for_corpus and "not in" in check.reason

    changed = classified[classified["id"] != sample["id"].iloc[0]]  # the corpus changed since the draw
    check = check_coded_sample(tmp_path / "a.csv", space, **{**common, "classified": changed})
    assert not check.valid_for_corpus and "not the seeded draw" in check.reason

    check = check_coded_sample("", space, **common)
    assert check.case == "none" and not check.valid_for_corpus

    paper = check_coded_sample(
        tiny_replication / "theme" / "mapped.csv",
        LabelSpace(Codebook.from_replication(tiny_replication)),
        **common,
    )
    assert paper.case == "paper-sample" and not paper.valid_for_corpus and "paper" in paper.population


def tagged_for(
    classified: pd.DataFrame, space: LabelSpace, quality: float, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A stand-in tagger: probabilities near the truth with noise ``1 - quality``."""
    rng = np.random.default_rng(seed)
    ids = classified["id"].tolist()
    Y = np.array([space.indicators(truth(i)) for i in ids], dtype=float)
    P = space.consistent_proba(np.clip(quality * Y + (1 - quality) * rng.random(Y.shape), 0, 1))
    H = space.decide(P, np.full(len(space), 0.5))
    return long_rows(ids, space, P, H), P, H


def test_estimates_report_only_what_is_valid(
    tmp_path: Path, space: LabelSpace, tiny_replication: Path
) -> None:
    classified = classified_frame()
    sample = drawn(classified)
    sample_path = write_csv(sample, tmp_path / "sample.csv")
    _, P, H = tagged_for(classified, space, quality=0.8)
    threads = classified[["id", "source"]]
    strata = parse_strata(PARAMS.strata)
    coded = write_coding(first_draws(sample, 60), tmp_path / "coded.csv")
    check = check_coded_sample(
        coded,
        space,
        sample_path=sample_path,
        classified=classified,
        sample_params=PARAMS,
        replication_root=tiny_replication,
    )
    table, validity = prevalence_estimates(threads, P, H, space, check, strata=strata)
    assert set(table["level"]) == {"theme", "sub_theme"}
    hf = table[(table["stratum"] == "HF Discussion") & (table["label"] == "Output")].iloc[0]
    true_share = np.mean(
        [
            ("issue", "Harmful output") in truth(i)
            for i in classified.loc[classified["source"] == "HF Discussion", "id"]
        ]
    )
    assert hf["ppi_lo"] <= true_share <= hf["ppi_hi"]
    assert hf["ppi_hi"] - hf["ppi_lo"] < hf["sample_hi"] - hf["sample_lo"]  # the predictions buy precision
    assert validity.set_index("estimate")["valid"].tolist() == [True, False, True]

    ordered = order_sheet_by_uncertainty(
        sample_path,
        _tagged_parquet(tmp_path, classified, space),
        output_sample=tmp_path / "u.csv",
        output_sheet=tmp_path / "u.xlsx",
        model_dir=None,
        codebook_path=tmp_path / "codebook.yaml",
        texts=pd.DataFrame({"id": classified["id"], "text": "some text"}),
    )
    assert (tmp_path / "u.xlsx").is_file() and not ordered["random_sample"].any()
    design = json.loads((tmp_path / "u.design.json").read_text())
    assert design["random_sample"] is False
    # a coding of the ordered sheet is refused, against either sample file
    coded_u = write_coding(ordered.head(60), tmp_path / "coded_u.csv")
    refused = check_coded_sample(
        coded_u,
        space,
        sample_path=tmp_path / "u.csv",
        classified=classified,
        sample_params=PARAMS,
        replication_root=tiny_replication,
    )
    assert refused.case == "uncertainty-ordered" and not refused.valid_for_corpus
    against_original = check_coded_sample(
        coded_u,
        space,
        sample_path=sample_path,
        classified=classified,
        sample_params=PARAMS,
        replication_root=tiny_replication,
    )
    assert not against_original.valid_for_corpus
    table, validity = prevalence_estimates(threads, P, H, space, refused, strata=strata)
    assert table["ppi_share"].isna().all() and table["sample_share"].isna().all()
    assert table["plugin_share"].notna().all()
    assert not validity["valid"].any()


def _tagged_parquet(tmp_path: Path, classified: pd.DataFrame, space: LabelSpace) -> Path:
    rows, _, _ = tagged_for(classified, space, quality=0.5, seed=3)
    path = tmp_path / "tagged.parquet"
    rows.to_parquet(path)
    return path


# -- the coverage study ------------------------------------------------------------------------


def test_coverage_study_holds_and_reruns_byte_identical(tmp_path: Path, space: LabelSpace) -> None:
    rng = np.random.default_rng(4)
    N = 500
    Y = np.array([space.indicators(truth(f"x#{i}")) for i in rng.integers(1, 10_000, N)], dtype=float)
    f = space.consistent_proba(np.clip(0.7 * Y + 0.3 * rng.random(Y.shape), 0, 1))
    outputs = []
    for run in range(2):
        result = coverage_study(Y, f, space, n_values=(50, 100, 450), repeats=200, seed=9, min_remainder=100)
        write_table(result.headline, tmp_path / f"run{run}" / "ppi_coverage")
        write_table(result.detail, tmp_path / f"run{run}" / "ppi_coverage_labels")
        outputs.append(
            {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / f"run{run}").iterdir()}
        )
    assert outputs[0] == outputs[1]
    assert result.headline["n"].tolist() == [50, 100]
    assert any("450" in note for note in result.notes)
    assert (result.headline["coverage_ppi"] >= 0.9).all()
    assert (result.headline["width_ratio"] < 1).all()  # good predictions narrow the intervals
    assert (result.sample_size["n_ppi"] < 753).all()
