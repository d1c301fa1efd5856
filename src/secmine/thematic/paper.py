"""The paper's published RQ2/RQ3 numbers, set beside the ones computed here.

Source: Nguyen, Le and Babar, "Securing the AI Supply Chain: What Can We Learn From
Developer-Reported Security Issues and Solutions of AI Projects?" (ICSE 2026, arXiv 2512.23385):
the abstract (753 posts; 32 issues and 24 solutions in 4 themes), the composition of the
thematic-analysis sample (368 HF discussions, 184 GH discussions, 201 GH issues), RQ2 (System & Software issues appear 945 times
and cover 74.37% of the posts; Data issues 77 times, 9.03%) and RQ3 (the most frequent
issue -> solution pair, outdated vulnerable dependency -> dependency version upgrade, co-occurs
69 times).  Only numbers we could check in the paper's text are listed; none is used as an
expectation anywhere else.

On a complete copy of the authors' package every row must match; on a partial copy (the one
in ../shared withholds about 20% of the coded posts) the table shows the difference honestly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.codebook import Codebook
    from secmine.thematic.counting import ThematicCounts

Unit = Literal["count", "percent", "rank"]

TOP_PAIR_ISSUE = "Outdated third-party dependency/package contains vulnerabilities"
TOP_PAIR_SOLUTION = "Dependency Version Upgrade"


@dataclass(frozen=True)
class PaperValue:
    key: str
    quantity: str
    value: float
    unit: Unit
    where: str  # where in the paper


PAPER_VALUES: tuple[PaperValue, ...] = (
    PaperValue("posts_total", "coded posts", 753, "count", "abstract"),
    PaperValue("posts_hf", "coded posts: HF Discussion", 368, "count", "thematic-analysis sample"),
    PaperValue("posts_gh_discussion", "coded posts: GH Discussion", 184, "count", "thematic-analysis sample"),
    PaperValue("posts_gh_issue", "coded posts: GH Issue", 201, "count", "thematic-analysis sample"),
    PaperValue("issue_codes", "issue codes in the taxonomy", 32, "count", "abstract"),
    PaperValue("solution_codes", "solution codes in the taxonomy", 24, "count", "abstract"),
    PaperValue("issue_themes", "issue themes", 4, "count", "abstract"),
    PaperValue("solution_themes", "solution themes", 4, "count", "abstract"),
    PaperValue("ss_issue_mentions", "System & Software issues: mentions", 945, "count", "RQ2"),
    PaperValue("ss_issue_coverage", "System & Software issues: % of posts", 74.37, "percent", "RQ2"),
    PaperValue("data_issue_mentions", "Data issues: mentions", 77, "count", "RQ2"),
    PaperValue("data_issue_coverage", "Data issues: % of posts", 9.03, "percent", "RQ2"),
    PaperValue(
        "top_pair_count",
        f"co-occurrences: {TOP_PAIR_ISSUE} -> {TOP_PAIR_SOLUTION}",
        69,
        "count",
        "RQ3",
    ),
    PaperValue("top_pair_rank", "rank of that pair among all issue -> solution pairs", 1, "rank", "RQ3"),
)


def computed_values(counts: ThematicCounts, codebook: Codebook) -> dict[str, float | None]:
    """The quantities of :data:`PAPER_VALUES` as computed from ``counts`` (None if undefined)."""
    issues = counts.themes["issue"].set_index("theme")
    pairs = counts.pairs
    match = pairs[(pairs["issue_code"] == TOP_PAIR_ISSUE) & (pairs["solution_code"] == TOP_PAIR_SOLUTION)]

    def theme_value(theme: str, column: str) -> float | None:
        return float(issues.loc[theme, column]) if theme in issues.index else None

    return {
        "posts_total": counts.n_posts["total"],
        "posts_hf": counts.n_posts["hf"],
        "posts_gh_discussion": counts.n_posts["gh_discussion"],
        "posts_gh_issue": counts.n_posts["gh_issue"],
        "issue_codes": len(codebook.of_type("issue")),
        "solution_codes": len(codebook.of_type("solution")),
        "issue_themes": len(codebook.themes("issue")),
        "solution_themes": len(codebook.themes("solution")),
        "ss_issue_mentions": theme_value("System & Software", "total_freq"),
        "ss_issue_coverage": theme_value("System & Software", "total_pct"),
        "data_issue_mentions": theme_value("Data", "total_freq"),
        "data_issue_coverage": theme_value("Data", "total_pct"),
        "top_pair_count": int(match["count"].iloc[0]) if len(match) else 0,
        "top_pair_rank": int(match["rank"].iloc[0]) if len(match) else None,
    }


def compare_with_paper(counts: ThematicCounts, codebook: Codebook) -> pd.DataFrame:
    """The paper's published values beside the computed ones.

    Columns: ``quantity, unit, paper, computed, difference, matches, where``.  Percentages are
    compared after rounding to two decimals (as published); ``difference`` is computed - paper.
    """
    import pandas as pd

    computed = computed_values(counts, codebook)
    rows = []
    for item in PAPER_VALUES:
        value = computed[item.key]
        paper: float | int = round(item.value, 2) if item.unit == "percent" else int(item.value)
        if value is None:
            shown, difference, matches = None, None, False
        elif item.unit == "percent":
            shown = round(float(value), 2)
            difference = round(shown - float(paper), 2)
            matches = shown == paper
        else:
            shown = int(value)
            difference = shown - int(paper)
            matches = difference == 0
        rows.append(
            {
                "quantity": item.quantity,
                "unit": item.unit,
                "paper": paper,
                "computed": shown,
                "difference": difference,
                "matches": bool(matches),
                "where": item.where,
            }
        )
    columns = ["quantity", "unit", "paper", "computed", "difference", "matches", "where"]
    # object columns keep counts as integers and percentages as floats (CSV: 753, 74.37)
    return pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object) for c in columns})
