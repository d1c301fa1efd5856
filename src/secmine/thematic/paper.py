"""The paper's published RQ2/RQ3 numbers, set beside the ones computed here.

The values themselves live in :mod:`secmine.published` (``THEMATIC``: the coded sample's size,
the taxonomy's size, RQ2's System & Software and Data theme frequency and coverage, RQ3's most
frequent issue -> solution pair); this module computes the same quantities from a coded sample
and sets them side by side.  On a complete copy of the authors' package every row must match; on
a partial copy (the one in ../shared withholds about 20% of the coded posts) the table shows the
difference honestly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from secmine.published import THEMATIC, TOP_PAIR_ISSUE, TOP_PAIR_SOLUTION, Published, Unit

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.codebook import Codebook
    from secmine.thematic.counting import ThematicCounts

# Kept under their former names: code and tests written against this module keep working.
PaperValue = Published
PAPER_VALUES: tuple[Published, ...] = THEMATIC


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


__all__ = [
    "PAPER_VALUES",
    "TOP_PAIR_ISSUE",
    "TOP_PAIR_SOLUTION",
    "PaperValue",
    "Unit",
    "compare_with_paper",
    "computed_values",
]
