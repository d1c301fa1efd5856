"""The stratified sample: Cochran sizes per stratum, seeded and order-independent draws, and the
sample stage's files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from secmine.analysis import sampling
from secmine.analysis.data import check_classified
from secmine.analysis.sampling import SampleParams, run_sample
from secmine.schema import thread_id


def _classified(hf: int = 8421, gh_issue: int = 120, gh_disc: int = 0) -> pd.DataFrame:
    rows = []
    for platform, kind, count in (
        ("huggingface", "discussion", hf),
        ("github", "issue", gh_issue),
        ("github", "discussion", gh_disc),
    ):
        for n in range(1, count + 1):
            repo = f"org/m{n % 37}"
            rows.append(
                {
                    "id": thread_id(platform, kind, repo, n),
                    "platform": platform,
                    "kind": kind,
                    "repo": repo,
                    "number": n,
                    "created_at": "2024-01-01T00:00:00Z",
                    "keyword_match": False,
                    "probability": 0.9,
                    "label": 1,
                }
            )
    # non-security threads are never sampled
    rows.append(
        {
            "id": "gh:issue:o/x#1",
            "platform": "github",
            "kind": "issue",
            "repo": "o/x",
            "number": 1,
            "created_at": None,
            "keyword_match": True,
            "probability": 0.1,
            "label": 0,
        }
    )
    return pd.DataFrame(rows)


def test_plan_uses_cochran_per_stratum() -> None:
    frame = check_classified(_classified())
    plan = sampling.sample_plan(
        frame[frame["label"] == 1], sampling.parse_strata("HF Discussion,GH Issue,GH Discussion")
    )
    sizes = dict(zip(plan["source"], plan["sample_size"]))
    # 8,421 HF security discussions -> 368 (the paper); 120 -> 384.146/(1 + 383.146/120) = 91.6 -> 92
    assert sizes == {"HF Discussion": 368, "GH Issue": 92, "GH Discussion": 0, "total": 460}
    assert dict(zip(plan["source"], plan["population"]))["total"] == 8541


def test_draw_is_seeded_and_independent_of_input_order() -> None:
    frame = check_classified(_classified(hf=500, gh_issue=60))
    security = frame[frame["label"] == 1]
    plan = sampling.sample_plan(security, ["HF Discussion", "GH Issue"])
    first = sampling.draw_sample(security, plan, seed=7)
    again = sampling.draw_sample(security.sample(frac=1, random_state=1), plan, seed=7)
    other = sampling.draw_sample(security, plan, seed=8)
    pd.testing.assert_frame_equal(first, again)
    assert set(first["id"]) != set(other["id"])
    # 500 -> 384.146 / (1 + 383.146/500) = 217.5 -> 218; 60 -> 384.146 / 7.3858 = 52.01 -> 53
    assert first.groupby("source").size().to_dict() == {"GH Issue": 53, "HF Discussion": 218}
    assert not first["id"].duplicated().any()
    assert first["source"].iloc[0] == "HF Discussion" and first["draw"].iloc[0] == 1
    assert first["url"].iloc[0].startswith("https://huggingface.co/org/")
    # a stratum's draw does not depend on which other strata are drawn
    alone = sampling.draw_sample(security, plan[plan["source"] != "GH Issue"], seed=7)
    assert list(alone["id"]) == list(first[first["source"] == "HF Discussion"]["id"])


def test_unknown_stratum_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown stratum 'Reddit'"):
        sampling.parse_strata("HF Discussion, Reddit")


def test_sample_stage_writes_csv_sheet_and_table(tmp_path: Path, fixtures_dir: Path) -> None:
    classified = _classified(hf=40, gh_issue=30, gh_disc=5)
    corpus = pd.DataFrame(
        {
            "id": classified["id"],
            "platform": classified["platform"],
            "kind": classified["kind"],
            "repo": classified["repo"],
            "number": classified["number"],
            "title": [f"title {i}" for i in range(len(classified))],
            "body": "body text",
            "comments": [[{"author": "a", "body": "a comment", "created_at": None}]] * len(classified),
            "created_at": classified["created_at"],
            "url": "",
        }
    )
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        result = run_sample(
            "unused",
            None,
            classified=classified,
            corpus=corpus,
            sample_path=out / "sample.csv",
            sheet_path=out / "sheet.xlsx",
            codebook_path=fixtures_dir / "analysis" / "codebook.yaml",
            tables_dir=out / "tables",
            figures_dir=out / "figures",
            metrics_path=out / "sample.json",
            params=SampleParams(seed=11, strata="HF Discussion,GH Issue,GH Discussion", code_slots=2),
        )
        digests.append(
            {
                p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*"))
                if p.is_file()
            }
        )
    assert digests[0] == digests[1]
    assert {
        "sample.csv",
        "sheet.xlsx",
        "sample_sizes.csv",
        "sample_sizes.md",
        "sample_sizes.png",
        "sample.json",
    } <= set(digests[0])
    sample = pd.read_csv(tmp_path / "a" / "sample.csv")
    # 40 -> 384.146 / (1 + 383.146/40) = 36.36 -> 37; 30 -> 27.8 -> 28; 5 -> 4.95 -> 5
    assert sample.groupby("source").size().to_dict() == {
        "HF Discussion": 37,
        "GH Issue": 28,
        "GH Discussion": 5,
    }
    assert "text" not in sample.columns and "body" not in sample.columns
    assert result.metrics["strata"]["GH Issue"] == {"population": 30, "sample_size": 28}
    sheet = openpyxl.load_workbook(tmp_path / "a" / "sheet.xlsx")["coding"]
    assert sheet.max_row == 1 + len(sample)
    assert sheet["A2"].value == sample["post_id"].iloc[0]
    assert sheet["E2"].value.startswith("title ") and sheet["E2"].value.endswith("a comment")


@pytest.mark.shared
def test_sample_with_the_replication_codebook(tmp_path: Path, external_root: Path) -> None:
    classified = _classified(hf=12, gh_issue=0)
    corpus = pd.DataFrame(
        {"id": classified["id"], "title": "t", "body": "b", "comments": [[]] * len(classified)}
    )
    run_sample(
        "unused",
        None,
        classified=classified,
        corpus=corpus,
        sample_path=tmp_path / "s.csv",
        sheet_path=tmp_path / "s.xlsx",
        codebook_path=external_root / "ai_sec_dev",
        tables_dir=tmp_path / "t",
        figures_dir=tmp_path / "f",
        metrics_path=None,
    )
    lists = openpyxl.load_workbook(tmp_path / "s.xlsx")["lists"]
    issue_codes = [c.value for c in lists["A"][1:] if c.value]
    solution_codes = [c.value for c in lists["B"][1:] if c.value]
    assert len(issue_codes) == 32 and len(solution_codes) == 24  # the paper's taxonomy


def test_merged_stratum_samples_a_platform_as_one_population() -> None:
    import pandas as pd

    from secmine.analysis.sampling import draw_sample, parse_strata, sample_plan

    assert parse_strata("HF Discussion, GH Issue + GH Discussion") == ["HF Discussion", "GH Issue+GH Discussion"]
    with pytest.raises(ValueError, match="unknown stratum 'GH Wiki'"):
        parse_strata("GH Issue+GH Wiki")
    rows = [("gh", "issue", i) for i in range(3000)] + [("gh", "discussion", i) for i in range(1000)]
    security = pd.DataFrame(
        {
            "id": [f"gh:{k}:o/r#{n}" for _, k, n in rows],
            "platform": "github",
            "kind": [k for _, k, _ in rows],
            "source": ["GH Issue" if k == "issue" else "GH Discussion" for _, k, _ in rows],
            "repo": "o/r",
            "number": [n for _, _, n in rows],
            "created_at": "2024-01-01T00:00:00Z",
            "probability": 0.9,
        }
    )
    plan = sample_plan(security, ["GH Issue+GH Discussion"])
    # n0 = 1.96^2 * 0.25 / 0.05^2 = 384.16; with N = 4000: 384.16 / (1 + 383.16 / 4000) = 350.58 -> 351
    assert plan.loc[0, "population"] == 4000 and plan.loc[0, "sample_size"] == 351
    sample = draw_sample(security, plan, seed=1)
    assert len(sample) == 351 and set(sample["source"]) == {"GH Issue", "GH Discussion"}
