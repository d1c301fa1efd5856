"""Fig. 3: the authors' aggregation (mean per distinct code pair, rows normalised) and the plain one."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from secmine import published
from secmine.codebook import Codebook
from secmine.thematic import heatmap, paper_tables, stage

FIXTURE = Path(__file__).parent / "fixtures" / "thematic"


@pytest.fixture(scope="module")
def codebook() -> Codebook:
    return Codebook.from_yaml(FIXTURE / "codebook.yaml")


def _mentions(codebook: Codebook, posts: dict[str, tuple[list[str], list[str]]]) -> pd.DataFrame:
    rows = []
    for post, (issues, solutions) in posts.items():
        for code_type, names in (("issue", issues), ("solution", solutions)):
            for name in names:
                code = codebook.match(code_type, name)
                rows.append({"post_id": post, "source": "GH Issue", "type": code_type, "code": code.name,
                             "sub_theme": code.sub_theme, "theme": code.theme})
    return pd.DataFrame(rows)


def test_issue_labels_drop_concerns() -> None:
    assert heatmap.issue_label("Code Execution Security Concerns") == "Code Execution Security"
    assert heatmap.issue_label("Data Exposure concerns ") == "Data Exposure"


def test_published_cell_is_the_mean_over_code_pairs_and_plain_the_share_of_the_sum(codebook: Codebook) -> None:
    # Secure Coding x Code Execution: one code pair seen 3 times (ACE, IV);
    # Secure Coding x Runtime Compatibility: two code pairs seen once each (DC, IV) and (DC, SFF).
    mentions = _mentions(codebook, {
        "p1": (["Arbitrary code execution"], ["Input validation"]),
        "p2": (["Arbitrary code execution"], ["Input validation"]),
        "p3": (["Arbitrary code execution"], ["Input validation"]),
        "p4": (["Dependency compatibility"], ["Input validation", "Secure file format"]),
    })
    published_cells = heatmap.published_heatmap(mentions, codebook)
    plain_cells = heatmap.plain_heatmap(mentions, codebook)
    assert list(published_cells.columns) == ["Code Execution", "Runtime Compatibility"]
    assert published_cells.loc["Secure Coding"].tolist() == [75.0, 25.0]  # means 3 and 1
    assert plain_cells.loc["Secure Coding"].tolist() == [60.0, 40.0]  # sums 3 and 2


def test_a_code_listed_twice_counts_twice_as_the_authors_count(codebook: Codebook) -> None:
    mentions = _mentions(codebook, {
        "p1": (["Unsafe deserialization", "Unsafe deserialization"], ["Secure file format"]),
        "p2": (["Dependency compatibility"], ["Dependency upgrade"]),
        "p3": (["Arbitrary code execution"], ["Dependency upgrade"]),
    })
    pairs = heatmap.code_pairs(mentions, codebook).set_index(["issue", "solution"])["count"]
    assert pairs[("Unsafe deserialization", "Secure file format")] == 2
    cells = heatmap.published_heatmap(mentions, codebook)
    assert cells.loc["Supply Chain"].tolist() == [50.0, 50.0]
    assert cells.loc["Secure Coding"].tolist() == [100.0, 0.0]
    assert (cells.sum(axis=1).round(9) == 100).all()


def test_no_cooccurrence_is_a_clear_error(codebook: Codebook) -> None:
    mentions = _mentions(codebook, {"p1": (["Data leakage"], []), "p2": ([], ["Input validation"])})
    with pytest.raises(heatmap.HeatmapError, match="no issue code co-occurs"):
        heatmap.published_heatmap(mentions, codebook)


def test_compare_with_published_matches_the_papers_cells_to_one_decimal() -> None:
    paper = published.fig3_frame()
    check = heatmap.compare_with_published(paper + 0.04)  # rounds back to the published decimal
    assert check["matches"].all() and len(check) == 88
    moved = paper.copy()
    moved.iloc[0, 1] += 0.3
    check = heatmap.compare_with_published(moved)
    assert (~check["matches"]).sum() == 1
    assert check.loc[~check["matches"], "difference"].item() == pytest.approx(0.3)


def test_figures_have_the_papers_axes_and_proportions(codebook: Codebook, tmp_path: Path) -> None:
    mentions = _mentions(codebook, {"p1": (["Arbitrary code execution"], ["Input validation"]),
                                    "p2": (["Data leakage"], ["Data anonymization"])})
    tables, figures = heatmap.build(mentions, codebook, n_posts=2)
    fig = figures["published"]
    assert tuple(fig.get_size_inches()) == heatmap.PAPER_FIGSIZE
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Issue Sub-Themes", "Solution Sub-Themes")
    assert {t.get_text() for t in ax.texts} >= {"100.0", "0.0"}
    written = heatmap.write(tables, figures, tables_dir=tmp_path / "t", figures_dir=tmp_path / "f")
    assert written == heatmap.output_files(tmp_path / "t", tmp_path / "f")
    table = pd.read_csv(tmp_path / "t" / "fig3_heatmap_published.csv")
    assert table.columns[0] == "solution_sub_theme"
    plt.close("all")


def test_taxonomy_table_rows_and_coverage(codebook: Codebook) -> None:
    result = stage.run(FIXTURE / "coded.csv", FIXTURE / "codebook.yaml", FIXTURE / "texts.csv", out_dir=None,
                       close_figures=True)
    table = result.taxonomy["rq2_taxonomy"]
    assert table["level"].tolist()[:4] == ["theme", "sub_theme", "code", "code"]
    row = table[(table["level"] == "sub_theme") & (table["sub_theme"] == "Code Execution")].iloc[0]
    # HF: a-1 (ACE, UD) and b-2 (UD twice) -> 4 mentions in 2 of 3 posts; GH: 3 ACE in 3 of 5 posts
    assert (row["hf_freq"], round(row["hf_pct"], 2)) == (4, 66.67)
    assert (row["gh_freq"], row["gh_pct"]) == (3, 60.0)
    assert (row["total_freq"], row["total_pct"]) == (7, 62.5)
    latex = paper_tables.to_latex(table, "issue", n_posts={"hf": 3, "gh": 5, "total": 8})
    assert latex.startswith("\\begin{table*}[t]") and "\\toprule" in latex and "\\bottomrule" in latex
    assert "@{}p{0.52\\textwidth}rrrrrr@{}" in latex and "Freq. & Cov. (\\%)" in latex
    assert "System \\& Software" in latex and "_" not in latex.replace("\\_", "")
    markdown = paper_tables.to_markdown(table)
    assert markdown.splitlines()[1] == "|:---|" + "---:|" * 6
    assert "| **System & Software** | 4 | 66.67 | 5 | 80.00 | 9 | 75.00 |" in markdown


def test_long_taxonomy_tables_split_by_theme(codebook: Codebook) -> None:
    result = stage.run(FIXTURE / "coded.csv", FIXTURE / "codebook.yaml", FIXTURE / "texts.csv", out_dir=None,
                       close_figures=True)
    table = result.taxonomy["rq2_taxonomy"]  # System & Software: 6 rows, Data: 3 rows
    latex = paper_tables.to_latex(table, "issue", max_rows=6)
    assert latex.count("\\begin{table*}") == 2 and "part 2 of 2" in latex
    assert paper_tables.to_latex(table, "issue").count("\\begin{table*}") == 1
