"""Fig. 2 (yearly reports beside the paper's), renamed repositories, rates over unselected threads."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from secmine.analysis import renames, rq1, trend
from secmine.analysis.data import check_classified
from secmine.analysis.rq1 import RQ1Params, run_rq1
from secmine.schema import thread_id
from test_analysis_rq1 import small_classified, small_corpus


def _classified(rows: list[tuple[str, str, str, int, str | None, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [{"id": thread_id(p, k, r, n), "platform": p, "kind": k, "repo": r, "number": n, "created_at": c,
          "keyword_match": False, "probability": 0.9 if y else 0.1, "label": y} for p, k, r, n, c, y in rows]
    )
    return check_classified(frame)


def test_yearly_reports_leave_out_the_partial_year_and_mark_what_the_run_lacks() -> None:
    rows = [("github", "issue", "o/a", i, f"{2022 + i % 3}-05-01T00:00:00Z", 1) for i in range(9)]
    rows += [("github", "issue", "o/a", 100, "2024-06-30T00:00:00Z", 0)]  # the corpus ends mid-2024
    rows += [("github", "discussion", "o/a", 7, None, 1)]
    reports = trend.yearly_reports(_classified(rows))
    assert reports.last_complete_year == 2023
    table = reports.table.set_index(["platform", "year"])
    assert table.loc[("GitHub", 2022), "this_run"] == 3 and table.loc[("GitHub", 2023), "this_run"] == 3
    assert pd.isna(table.loc[("GitHub", 2024), "this_run"])  # partial year: not counted
    assert table.loc[("GitHub", 2024), "paper"] == 83561
    assert pd.isna(table.loc[("GitHub", 2019), "this_run"]) and table.loc[("GitHub", 2019), "paper"] == 18661
    assert pd.isna(table.loc[("Hugging Face", 2023), "this_run"]) and table.loc[("Hugging Face", 2023), "paper"] == 2880
    notes = " ".join(reports.notes)
    assert "2024 left out (3 security threads): a partial year (the corpus ends on 2024-06-30)" in notes
    assert "Hugging Face: this run has no dated security thread" in notes
    assert "1 security threads have no creation date" in notes
    assert list(reports.table.columns) == ["year", "platform", "this_run", "paper"]


def test_weighted_yearly_reports_equal_one_row_per_thread() -> None:
    """A counted frame (each row stands for ``n`` threads) gives the table and notes of its rows
    repeated: the partial year, the undated threads and the last complete year included."""
    rows = [("github", "issue", "o/a", i, f"{2022 + i % 3}-05-01T00:00:00Z", i % 2) for i in range(6)]
    rows += [("github", "issue", "o/a", 100, "2024-06-30T00:00:00Z", 0), ("github", "discussion", "o/a", 7, None, 1),
             ("huggingface", "discussion", "org/m", 1, "2023-03-01T00:00:00Z", 1)]
    counted = _classified(rows)
    counted["n"] = counted["number"].map({0: 4, 1: 2, 2: 1, 3: 3, 4: 5, 5: 7, 100: 2, 7: 3}).where(
        counted["platform"] == "github", 6)
    repeated = counted.loc[counted.index.repeat(counted["n"])].drop(columns="n").reset_index(drop=True)
    weighted, plain = trend.yearly_reports(counted, weight="n"), trend.yearly_reports(repeated)
    pd.testing.assert_frame_equal(weighted.table, plain.table)
    assert weighted.notes == plain.notes and weighted.last_complete_year == plain.last_complete_year == 2023
    notes = " ".join(weighted.notes)
    assert "2024 left out (7 security threads)" in notes and "3 security threads have no creation date" in notes
    table = weighted.table.set_index(["platform", "year"])["this_run"]
    assert (table[("GitHub", 2022)], table[("GitHub", 2023)], table[("Hugging Face", 2023)]) == (3, 2, 6)


def test_a_year_ending_on_31_december_is_complete() -> None:
    created = pd.Series(["2023-01-01T00:00:00Z", "2023-12-31T23:00:00Z"])
    assert trend.last_complete_year(created) == 2023
    assert trend.last_complete_year(pd.Series([None], dtype=object)) is None


def test_trend_figure_has_the_papers_axes_labels_and_proportions(tmp_path: Path) -> None:
    rows = [("github", "issue", "o/a", i, "2023-05-01T00:00:00Z", 1) for i in range(4)]
    rows += [("huggingface", "discussion", "org/m", 1, "2024-12-31T00:00:00Z", 1)]
    reports = trend.yearly_reports(_classified(rows))
    fig = trend.trend_figure(reports)
    assert tuple(fig.get_size_inches()) == trend.PAPER_FIGSIZE
    left, right = fig.axes
    for ax in (left, right):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("Year", "Number of Reports")
    assert "This run" in left.get_title() and "paper" in right.get_title()
    value_labels = {t.get_text() for t in right.texts}
    assert {"83,561", "4,773"} <= value_labels
    assert {"4", "1"} <= {t.get_text() for t in left.texts}
    written = trend.write(reports, fig, tables_dir=tmp_path / "t", figures_dir=tmp_path / "f")
    assert written == trend.output_files(tmp_path / "t", tmp_path / "f")
    plt.close(fig)


def test_renamed_repositories_are_found_by_shared_numbers_case_and_known_list() -> None:
    frame = pd.DataFrame(
        [("github", "discussion", "old-org/tool", n) for n in range(1, 11)]
        + [("github", "discussion", "new-org/tool", n) for n in range(1, 13)]  # same numbers: a move
        + [("github", "discussion", "other/tool", n) for n in (50, 51)]  # same name, other numbers: kept
        + [("github", "issue", "Owner/Repo", 1), ("github", "issue", "owner/repo", 1), ("github", "issue", "owner/repo", 2)]
        + [("huggingface", "discussion", "a/model", 1), ("huggingface", "discussion", "b/model", 1)],  # copies
        columns=["platform", "kind", "repo", "number"],
    )
    merged, report = renames.merge_renamed(frame, known={})
    found = {(r.old, r.new, r.reason) for r in report.renames}
    assert found == {("old-org/tool", "new-org/tool", "shared numbers"), ("Owner/Repo", "owner/repo", "case")}
    assert report.repositories_merged == 2 and report.threads_dropped == 11
    assert set(merged["repo"]) == {"new-org/tool", "other/tool", "owner/repo", "a/model", "b/model"}
    # a known rename wins even without shared numbers, and chains resolve
    _, report = renames.merge_renamed(frame, known={"other/tool": "new-org/tool"})
    assert ("other/tool", "new-org/tool") in {(r.old, r.new) for r in report.renames}
    assert "2 repositories" in renames.merge_renamed(frame, known={})[1].summary()


def test_a_low_overlap_is_not_a_rename() -> None:
    frame = pd.DataFrame(
        [("github", "issue", "a/x", n) for n in range(1, 21)] + [("github", "issue", "b/x", n) for n in range(18, 40)],
        columns=["platform", "kind", "repo", "number"],
    )
    assert renames.find_renames(frame, known={}) == []


@pytest.mark.shared
def test_jax_is_found_in_the_papers_list_without_the_known_list(replication_root: Path) -> None:
    from secmine.replication import load_security_only

    ids = load_security_only(replication_root)
    report = renames.merge_renamed(ids, known={})[1]
    jax = [r for r in report.renames if {r.old, r.new} == {"google/jax", "jax-ml/jax"}]
    assert len(jax) == 1 and jax[0].shared == 129 and jax[0].reason == "shared numbers"
    assert not any(r.platform == "huggingface" and r.reason == "shared numbers" for r in report.renames)


def test_rates_only_over_threads_not_selected_as_security_posts(tmp_path: Path) -> None:
    classified = small_classified()
    corpus = small_corpus(classified)
    # HF discussions and the GH discussion are replication posts (selected as security posts)
    corpus["source"] = ["replication:theme/data.xlsx" if k == "discussion" else "snapshot:issues.jsonl.gz"
                        for k in corpus["kind"]]
    result = run_rq1("unused", None, classified=classified, corpus=corpus, tables_dir=tmp_path / "tables",
                     figures_dir=tmp_path / "figures", metrics_path=tmp_path / "rq1.json",
                     params=RQ1Params(min_growth_months=3, top_n=5))
    table = result.tables["security_by_source"].set_index("source")
    assert (table.loc["HF Discussion", "threads"], table.loc["HF Discussion", "selected"]) == (6, 6)
    assert np.isnan(table.loc["HF Discussion", "proportion"])
    assert table.loc["HF Discussion", "rate_basis"] == rq1.RATE_BASIS_NONE
    assert table.loc["GH Issue", "proportion"] == pytest.approx(5 / 15, abs=1e-6)
    assert (table.loc["all", "rate_threads"], table.loc["all", "rate_security"]) == (15, 5)
    assert result.metrics["security_share"] == pytest.approx(5 / 15, abs=1e-6)
    assert result.metrics["by_source"]["HF Discussion"]["share"] is None
    # concentration and the Lorenz curve: only GitHub issues remain
    assert set(result.tables["concentration"]["platform"]) == {"GitHub"}
    assert any("selected as security posts" in note for note in result.notes)
    fig = result.figures["security_by_source"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["GH Issue"]
    assert any("No rate for HF Discussion (6 threads), GH Discussion (1 threads)" in t.get_text() for t in fig.texts)
    assert (tmp_path / "paper" / "fig2_yearly.csv").is_file() and (tmp_path / "paper" / "fig2_trend.png").is_file()
    plt.close("all")


def test_count_axes_are_linear_with_whole_number_ticks(tmp_path: Path) -> None:
    classified = small_classified()
    result = run_rq1("unused", None, classified=classified, corpus=small_corpus(classified), write=False,
                     params=RQ1Params(min_growth_months=3, top_n=5))
    for name in ("keyword_vs_classifier", "growth", "top_cve", "top_projects"):
        for ax in result.figures[name].axes:
            assert ax.get_yscale() == "linear" and ax.get_xscale() == "linear", name
    for name in ("top_cve", "top_cwe", "top_projects"):
        ticks = result.figures[name].axes[0].get_xticks()
        assert all(float(t).is_integer() for t in ticks), (name, ticks)
    plt.close("all")
