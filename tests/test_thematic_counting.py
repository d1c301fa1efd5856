"""Counting on a hand-made coded sample (tests/fixtures/thematic/), every number worked out by hand.

The sample (coded.csv, 8 posts; codebook.yaml: ACE = Arbitrary code execution, UD = Unsafe
deserialization, DC = Dependency compatibility, DL = Data leakage; IV = Input validation,
SFF = Secure file format, DU = Dependency upgrade, DA = Data anonymization):

    row  source         id              issues         solutions
    2    HF Discussion  org/model-a-1   ACE, UD        SFF
    3    HF Discussion  org/model-b-2   UD, UD (twice) SFF, IV
    4    HF Discussion  org/model-c-3   DL             -
    5    GH Issue       owner/repo-10   DC, ACE        DU
    6    GH Issue       owner/repo-11   DC             DU, DU (twice)
    7    GH Discussion  owner/repo-20   DL, ACE        DA
    8    GH Discussion  owner/repo-21   -              IV
    9    GH Discussion  owner/repo-22   ACE            - (" , " = empty entries)

Posts: hf 3, gh_issue 2, gh_discussion 3, gh 5, total 8.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from secmine.thematic import counting, paper
from secmine.thematic.stage import load_inputs

FIXTURE = Path(__file__).parent / "fixtures" / "thematic"

ACE, UD, DC, DL = "Arbitrary code execution", "Unsafe deserialization", "Dependency compatibility", "Data leakage"
IV, SFF, DU, DA = "Input validation", "Secure file format", "Dependency upgrade", "Data anonymization"
SS, ETE, DATA = "System & Software", "External Tools & Ecosystem", "Data"


@pytest.fixture(scope="module")
def sample():
    return load_inputs(FIXTURE / "coded.csv", FIXTURE / "codebook.yaml", FIXTURE / "texts.csv")


@pytest.fixture(scope="module")
def counts(sample):
    return counting.count_sample(sample, multiplicity=True)


def _row(frame: pd.DataFrame, column: str, value: str) -> pd.Series:
    rows = frame[frame[column] == value]
    assert len(rows) == 1, f"{value!r} should appear once in column {column!r}"
    return rows.iloc[0]


def test_posts_per_platform(counts) -> None:
    assert counts.n_posts == {"hf": 3, "gh": 5, "gh_issue": 2, "gh_discussion": 3, "total": 8}


def test_code_frequencies_count_every_mention_including_repeats(counts) -> None:
    issues = counts.codes["issue"].set_index("code")
    assert list(counts.codes["issue"].columns) == ["theme", "sub_theme", "code", "hf", "gh", "total"]
    # ACE: rows 2 (hf), 5, 7, 9 (gh)
    assert issues.loc[ACE, ["hf", "gh", "total"]].tolist() == [1, 3, 4]
    # UD: row 2 once + row 3 twice (the repeat counts, as in the paper)
    assert issues.loc[UD, ["hf", "gh", "total"]].tolist() == [3, 0, 3]
    assert issues.loc[DC, ["hf", "gh", "total"]].tolist() == [0, 2, 2]
    assert issues.loc[DL, ["hf", "gh", "total"]].tolist() == [1, 1, 2]
    solutions = counts.codes["solution"].set_index("code")
    assert solutions.loc[IV, ["hf", "gh", "total"]].tolist() == [1, 1, 2]
    assert solutions.loc[SFF, ["hf", "gh", "total"]].tolist() == [2, 0, 2]
    # DU: row 5 once + row 6 twice
    assert solutions.loc[DU, ["hf", "gh", "total"]].tolist() == [0, 3, 3]
    assert solutions.loc[DA, ["hf", "gh", "total"]].tolist() == [0, 1, 1]
    # codebook order, every code listed
    assert counts.codes["issue"]["code"].tolist() == [ACE, UD, DC, DL]
    assert counts.codes["solution"]["code"].tolist() == [IV, SFF, DU, DA]


def test_per_source_breakdown(counts) -> None:
    table = counts.codes_by_source["issue"].set_index("code")
    assert list(counts.codes_by_source["issue"].columns) == [
        "theme", "sub_theme", "code", "hf_discussion", "gh_issue", "gh_discussion", "total"]
    # ACE: row 2 (HF), row 5 (GH Issue), rows 7, 9 (GH Discussion)
    assert table.loc[ACE, ["hf_discussion", "gh_issue", "gh_discussion", "total"]].tolist() == [1, 1, 2, 4]
    assert table.loc[DC, ["hf_discussion", "gh_issue", "gh_discussion", "total"]].tolist() == [0, 2, 0, 2]


def test_sub_theme_frequency_is_the_sum_of_its_codes_and_coverage_counts_posts(counts) -> None:
    subs = counts.sub_themes["issue"]
    ce = _row(subs, "sub_theme", "Code Execution")
    # frequency: ACE 4 + UD 3 = 7 (hf 1 + 3 = 4, gh 3 + 0 = 3)
    assert (ce["hf_freq"], ce["gh_freq"], ce["total_freq"]) == (4, 3, 7)
    # coverage: posts with ACE or UD: rows 2, 3 (hf) and 5, 7, 9 (gh) -> 5 of 8
    assert (ce["hf_posts"], ce["gh_posts"], ce["total_posts"]) == (2, 3, 5)
    assert ce["total_pct"] == pytest.approx(62.5)
    assert ce["hf_pct"] == pytest.approx(200 / 3)
    assert ce["gh_pct"] == pytest.approx(60.0)
    rc = _row(subs, "sub_theme", "Runtime Compatibility")
    assert (rc["total_freq"], rc["total_posts"], rc["gh_issue_posts"], rc["gh_issue_pct"]) == (2, 2, 2, 100.0)


def test_theme_frequency_and_coverage_with_all_posts_as_denominator(counts) -> None:
    themes = counts.themes["issue"]
    assert themes["theme"].tolist() == [SS, DATA]
    ss = _row(themes, "theme", SS)
    # frequency 4 + 3 + 2 = 9; posts rows 2, 3, 5, 6, 7, 9 = 6 of 8 (row 8 has no issue, still counted)
    assert (ss["hf_freq"], ss["gh_freq"], ss["total_freq"]) == (4, 5, 9)
    assert (ss["hf_posts"], ss["gh_posts"], ss["total_posts"]) == (2, 4, 6)
    assert ss["total_pct"] == pytest.approx(75.0)
    assert ss["hf_pct"] == pytest.approx(200 / 3)
    assert ss["gh_pct"] == pytest.approx(80.0)
    assert (ss["gh_issue_posts"], ss["gh_issue_pct"]) == (2, 100.0)
    assert (ss["gh_discussion_posts"], ss["gh_discussion_pct"]) == (2, pytest.approx(200 / 3))
    data = _row(themes, "theme", DATA)
    assert (data["total_freq"], data["total_posts"], data["total_pct"]) == (2, 2, 25.0)
    assert data["hf_pct"] == pytest.approx(100 / 3)
    assert data["gh_pct"] == pytest.approx(20.0)
    solution_themes = counts.themes["solution"].set_index("theme")
    assert solution_themes["total_freq"].to_dict() == {SS: 4, ETE: 3, DATA: 1}
    assert solution_themes["total_posts"].to_dict() == {SS: 3, ETE: 2, DATA: 1}
    assert solution_themes.loc[SS, "total_pct"] == pytest.approx(37.5)


def test_posts_without_codes(counts) -> None:
    assert counts.posts_without["issue"] == {"hf": 0, "gh": 1, "gh_issue": 0, "gh_discussion": 1, "total": 1}
    # rows 4 (hf) and 9 (gh discussion, only empty entries)
    assert counts.posts_without["solution"] == {"hf": 1, "gh": 1, "gh_issue": 0, "gh_discussion": 1, "total": 2}


def test_cooccurrence_counts_mention_pairs(counts) -> None:
    m = counts.cooccurrence_codes
    assert m.index.tolist() == [ACE, UD, DC, DL]
    assert m.columns.tolist() == [IV, SFF, DU, DA]
    # row 2: ACE x SFF, UD x SFF; row 3: UD(2) x SFF, UD(2) x IV; row 5: DC x DU, ACE x DU;
    # row 6: DC x DU(2); row 7: DL x DA, ACE x DA; rows 4, 8, 9 hold no pair
    expected = {
        ACE: {IV: 0, SFF: 1, DU: 1, DA: 1},
        UD: {IV: 2, SFF: 3, DU: 0, DA: 0},
        DC: {IV: 0, SFF: 0, DU: 3, DA: 0},
        DL: {IV: 0, SFF: 0, DU: 0, DA: 1},
    }
    assert m.to_dict(orient="index") == expected
    subs = counts.cooccurrence_sub_themes
    assert subs.loc["Code Execution", "Secure Coding"] == 6  # 1 + 3 + 2
    assert subs.loc["Code Execution", "Supply Chain"] == 1
    assert subs.loc["Runtime Compatibility", "Supply Chain"] == 3
    assert subs.loc["Data Exposure", "Data Security"] == 1
    assert int(subs.to_numpy().sum()) == int(m.to_numpy().sum()) == 12


def test_cooccurrence_without_multiplicity_counts_posts(sample) -> None:
    counts = counting.count_sample(sample, multiplicity=False)
    m = counts.cooccurrence_codes
    assert m.loc[UD, SFF] == 2 and m.loc[UD, IV] == 1 and m.loc[DC, DU] == 2
    assert int(m.to_numpy().sum()) == 9


def test_pairs_ranked_with_ties_in_codebook_order(counts) -> None:
    pairs = counts.pairs
    top = pairs.head(3)[["rank", "issue_code", "solution_code", "count", "posts"]].values.tolist()
    # UD -> SFF and DC -> DU tie at 3 (2 posts each): UD comes first in the codebook
    assert top == [[1, UD, SFF, 3, 2], [2, DC, DU, 3, 2], [3, UD, IV, 2, 1]]
    assert len(pairs) == 7
    assert _row(pairs, "issue_code", DL)["issue_theme"] == DATA


def test_lack_of_solutions_per_code(counts) -> None:
    lack = counts.lack_codes.set_index("code")
    # ACE: posts 2, 5, 7, 9; row 9 has no solution; solutions with it: SFF + DU + DA = 3 per 4 mentions
    assert lack.loc[ACE, ["issue_mentions", "posts", "posts_without_solution", "cooccurring_solution_mentions"]
                    ].tolist() == [4, 4, 1, 3]
    assert lack.loc[ACE, "pct_without_solution"] == pytest.approx(25.0)
    assert lack.loc[ACE, "solutions_per_issue"] == pytest.approx(0.75)
    # UD: 3 mentions in rows 2, 3, both solved; 1 (row 2) + 2 x 2 (row 3) = 5 solution pairs
    assert lack.loc[UD, ["issue_mentions", "posts", "posts_without_solution"]].tolist() == [3, 2, 0]
    assert lack.loc[UD, "solutions_per_issue"] == pytest.approx(5 / 3)
    # DL: rows 4 (no solution) and 7 (DA)
    assert lack.loc[DL, ["posts", "posts_without_solution"]].tolist() == [2, 1]
    assert lack.loc[DL, "pct_without_solution"] == pytest.approx(50.0)
    assert lack.loc[DL, "solutions_per_issue"] == pytest.approx(0.5)


def test_lack_of_solutions_per_theme_and_platform(counts) -> None:
    lack = counts.lack_themes.set_index(["theme", "platform"])
    # System & Software: 9 mentions in 6 posts, only row 9 without solution; 3 + 5 + 3 = 11 pairs
    ss = lack.loc[(SS, "total")]
    assert (ss["issue_mentions"], ss["posts"], ss["posts_without_solution"]) == (9, 6, 1)
    assert ss["pct_without_solution"] == pytest.approx(100 / 6)
    assert ss["solutions_per_issue"] == pytest.approx(11 / 9)
    assert lack.loc[(SS, "hf"), "pct_without_solution"] == 0.0
    assert lack.loc[(SS, "gh"), "pct_without_solution"] == pytest.approx(25.0)
    assert lack.loc[(DATA, "hf"), "pct_without_solution"] == 100.0  # row 4
    assert lack.loc[(DATA, "gh"), "pct_without_solution"] == 0.0  # row 7
    assert lack.loc[(DATA, "total"), "pct_without_solution"] == pytest.approx(50.0)


def test_lack_of_solutions_without_multiplicity_is_per_post(sample) -> None:
    lack = counting.lack_of_solutions(sample.posts, sample.mentions, sample.codebook, level="code",
                                      multiplicity=False).set_index("code")
    # UD: posts 2 and 3; pairs by post: UD-SFF in 2 posts, UD-IV in 1 -> 3 per 2 posts
    assert lack.loc[UD, "solutions_per_issue"] == pytest.approx(1.5)


def test_theme_balance(counts) -> None:
    balance = counts.balance.set_index("theme")
    assert balance.index.tolist() == [SS, ETE, DATA]  # the paper's theme order
    assert balance.loc[SS, ["issue_mentions", "issue_posts", "solution_mentions", "solution_posts"]
                       ].tolist() == [9, 6, 4, 3]
    assert balance.loc[SS, "solutions_per_issue"] == pytest.approx(4 / 9)
    assert balance.loc[ETE, "issue_mentions"] == 0 and math.isnan(balance.loc[ETE, "solutions_per_issue"])
    assert balance.loc[DATA, "solutions_per_issue"] == pytest.approx(0.5)


def test_warnings_list_repeats_missing_texts_and_source_mismatch(sample) -> None:
    warnings = "\n".join(sample.warnings)
    assert len(sample.warnings) == 5, warnings
    assert "row 3 (org/model-b-2): issue code(s) listed more than once" in warnings
    assert "row 6 (owner/repo-11): solution code(s) listed more than once" in warnings
    assert "row 8 (owner/repo-21): no issue code" in warnings
    assert "row 9: post 'owner/repo-22' has no text" in warnings
    assert "row 8, field 'source': 'owner/repo-21' is 'GH Discussion' here but 'GH Issue' in the texts" in warnings


def test_compare_with_paper_marks_matches_and_differences(counts, sample, monkeypatch) -> None:
    table = paper.compare_with_paper(counts, sample.codebook).set_index("quantity")
    assert table.loc["coded posts", "computed"] == 8
    assert table.loc["coded posts", "difference"] == 8 - 753
    assert not table.loc["coded posts", "matches"]
    # a paper whose numbers are this sample's: every row matches
    fake = (
        paper.PaperValue("posts_total", "coded posts", 8, "count", "test"),
        paper.PaperValue("ss_issue_mentions", "SS mentions", 9, "count", "test"),
        paper.PaperValue("ss_issue_coverage", "SS coverage", 75.0, "percent", "test"),
        paper.PaperValue("data_issue_coverage", "Data coverage", 25.0, "percent", "test"),
        paper.PaperValue("top_pair_count", "top pair", 0, "count", "test"),  # the paper's pair is absent here
    )
    monkeypatch.setattr(paper, "PAPER_VALUES", fake)
    table = paper.compare_with_paper(counts, sample.codebook)
    assert table["matches"].tolist() == [True] * 5
    assert table["computed"].tolist() == [8, 9, 75.0, 25.0, 0]
