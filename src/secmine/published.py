"""Every number the paper publishes that a run of this pipeline can check, in one place.

Source: Nguyen, Le and Babar, "Securing the AI Supply Chain: What Can We Learn From
Developer-Reported Security Issues and Solutions of AI Projects?" (ICSE 2026, arXiv 2512.23385v1).
Each value names where in the paper it is printed (``where``).  Figures, tables and the
reproduction scorecard (:mod:`secmine.report.scorecard`) read these values; no other module
types a published number.

Groups (``group``):

* ``funnel`` -- Fig. 1, the study's steps from the Hugging Face crawl to the coded sample;
* ``rq1_yearly`` -- Fig. 2, security reports per year and platform;
* ``classifier`` -- the selected classifier's test scores (distilBERT);
* ``sample`` -- the thematic-analysis sample;
* ``taxonomy`` -- sizes of the taxonomy;
* ``rq2`` / ``rq3`` -- theme frequencies and coverage, the most frequent issue -> solution pair;
* ``fig3`` -- the cells of Fig. 3 (solution sub-theme x issue sub-theme, rows summing to 100).

The Fig. 3 cells are printed in the figure only (an image).  They are kept here as the authors'
notebook ``theme/analysis.ipynb`` (replication package, commit 05055c7) computes them in the cell
that saves the figure, from the 322 issue-code x solution-code pair counts it prints: mean count
per distinct code pair in a cell, each row normalised to 100 (see
:func:`secmine.thematic.heatmap.published_heatmap`), rounded to one decimal as drawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

Unit = Literal["count", "percent", "rank", "score"]
Group = Literal["funnel", "rq1_yearly", "classifier", "sample", "taxonomy", "rq2", "rq3", "fig3"]

PAPER = "arXiv 2512.23385v1"
PAPER_TITLE = (
    "Securing the AI Supply Chain: What Can We Learn From Developer-Reported Security Issues and "
    "Solutions of AI Projects? (ICSE 2026)"
)

# Platform labels used by every table that sets this run beside the paper.
HF = "Hugging Face"
GH = "GitHub"
HF_DISCUSSION = "HF Discussion"
GH_ISSUE = "GH Issue"
GH_DISCUSSION = "GH Discussion"
ALL = "all"


@dataclass(frozen=True)
class Published:
    """One published number: ``key`` (unique), what it is, its value, unit and place in the paper."""

    key: str
    quantity: str
    value: float
    unit: Unit
    where: str
    group: str = ""
    platform: str = ""
    step: str = ""  # funnel step, year (rq1_yearly) or cell (fig3)


def _funnel(key: str, step: str, platform: str, value: int, where: str, quantity: str) -> Published:
    return Published(key, quantity, value, "count", where, "funnel", platform, step)


# -- Fig. 1: the study funnel (Section 3, "Data collection" and "Security discussions identification")
FUNNEL_STEPS: tuple[str, ...] = (
    "Hugging Face models crawled",
    "GitHub projects linked from the models",
    "threads collected (bots removed)",
    "keyword matches",
    "security discussions (classifier)",
    "coded sample",
    "taxonomy codes",
)
FUNNEL: tuple[Published, ...] = (
    _funnel("funnel_hf_models", FUNNEL_STEPS[0], HF, 687_653, "Sec. 3.1 / Fig. 1", "HF models crawled"),
    _funnel("funnel_gh_projects", FUNNEL_STEPS[1], GH, 8_972, "Sec. 3.1 / Fig. 1", "distinct HF-GH project links"),
    _funnel("funnel_hf_threads", FUNNEL_STEPS[2], HF_DISCUSSION, 205_667, "Sec. 3.1 / Fig. 1",
            "HF discussions collected (bots removed)"),
    _funnel("funnel_gh_threads", FUNNEL_STEPS[2], GH, 2_022_955, "Sec. 3.1 / Fig. 1",
            "GH issues, pull requests and discussions collected (bots removed)"),
    _funnel("funnel_kw_hf", FUNNEL_STEPS[3], HF_DISCUSSION, 252, "Sec. 3.2 / Fig. 1", "keyword-matched HF discussions"),
    _funnel("funnel_kw_gh_discussion", FUNNEL_STEPS[3], GH_DISCUSSION, 207, "Sec. 3.2 / Fig. 1",
            "keyword-matched GH discussions"),
    _funnel("funnel_kw_gh_issue", FUNNEL_STEPS[3], GH_ISSUE, 23_755, "Sec. 3.2 / Fig. 1", "keyword-matched GH issues"),
    _funnel("funnel_sec_hf", FUNNEL_STEPS[4], HF_DISCUSSION, 8_421, "Sec. 3.2 / Fig. 1 (inference lists)",
            "security HF discussions"),
    _funnel("funnel_sec_gh_discussion", FUNNEL_STEPS[4], GH_DISCUSSION, 2_783, "Sec. 3.2 / Fig. 1 (inference lists)",
            "security GH discussions"),
    _funnel("funnel_sec_gh_issue", FUNNEL_STEPS[4], GH_ISSUE, 301_219, "Sec. 3.2 / Fig. 1 (inference lists)",
            "security GH issues"),
    _funnel("funnel_sec_total", FUNNEL_STEPS[4], ALL, 312_868, "abstract / Fig. 1", "security discussions in all"),
    _funnel("funnel_coded_hf", FUNNEL_STEPS[5], HF_DISCUSSION, 368, "Sec. 3.3 / Fig. 1", "coded HF discussions"),
    _funnel("funnel_coded_gh_discussion", FUNNEL_STEPS[5], GH_DISCUSSION, 184, "Sec. 3.3 / Fig. 1",
            "coded GH discussions"),
    _funnel("funnel_coded_gh_issue", FUNNEL_STEPS[5], GH_ISSUE, 201, "Sec. 3.3 / Fig. 1", "coded GH issues"),
    _funnel("funnel_coded_total", FUNNEL_STEPS[5], ALL, 753, "abstract / Fig. 1", "coded posts in all"),
    _funnel("funnel_issue_codes", FUNNEL_STEPS[6], "issue codes", 32, "abstract / Fig. 1", "issue codes"),
    _funnel("funnel_solution_codes", FUNNEL_STEPS[6], "solution codes", 24, "abstract / Fig. 1", "solution codes"),
)

# -- Fig. 2: security reports per year (RQ1)
PAPER_YEARLY_SERIES: dict[str, dict[int, int]] = {
    GH: {2019: 18_661, 2020: 26_944, 2021: 28_325, 2022: 35_556, 2023: 73_934, 2024: 83_561},
    HF: {2022: 487, 2023: 2_880, 2024: 4_773},
}
RQ1_YEARLY: tuple[Published, ...] = tuple(
    Published(
        f"yearly_{'gh' if platform == GH else 'hf'}_{year}",
        f"security reports in {year}: {platform}",
        value,
        "count",
        "RQ1 / Fig. 2",
        "rq1_yearly",
        platform,
        str(year),
    )
    for platform, series in PAPER_YEARLY_SERIES.items()
    for year, value in series.items()
)

# -- the classifier (Sec. 3.2, Table of classifier results; abstract)
CLASSIFIER: tuple[Published, ...] = (
    Published("classifier_test_mcc", "selected classifier: test MCC", 0.79, "score", "Sec. 3.2 (distilBERT)", "classifier"),
    Published("classifier_test_f1", "selected classifier: test F1", 0.89, "score", "Sec. 3.2 (distilBERT)", "classifier"),
)

# -- RQ2/RQ3 (the thematic analysis)
TOP_PAIR_ISSUE = "Outdated third-party dependency/package contains vulnerabilities"
TOP_PAIR_SOLUTION = "Dependency Version Upgrade"

THEMATIC: tuple[Published, ...] = (
    Published("posts_total", "coded posts", 753, "count", "abstract", "sample", ALL),
    Published("posts_hf", "coded posts: HF Discussion", 368, "count", "thematic-analysis sample", "sample", HF_DISCUSSION),
    Published("posts_gh_discussion", "coded posts: GH Discussion", 184, "count", "thematic-analysis sample", "sample",
              GH_DISCUSSION),
    Published("posts_gh_issue", "coded posts: GH Issue", 201, "count", "thematic-analysis sample", "sample", GH_ISSUE),
    Published("issue_codes", "issue codes in the taxonomy", 32, "count", "abstract", "taxonomy"),
    Published("solution_codes", "solution codes in the taxonomy", 24, "count", "abstract", "taxonomy"),
    Published("issue_themes", "issue themes", 4, "count", "abstract", "taxonomy"),
    Published("solution_themes", "solution themes", 4, "count", "abstract", "taxonomy"),
    Published("ss_issue_mentions", "System & Software issues: mentions", 945, "count", "RQ2", "rq2"),
    Published("ss_issue_coverage", "System & Software issues: % of posts", 74.37, "percent", "RQ2", "rq2"),
    Published("data_issue_mentions", "Data issues: mentions", 77, "count", "RQ2", "rq2"),
    Published("data_issue_coverage", "Data issues: % of posts", 9.03, "percent", "RQ2", "rq2"),
    Published("top_pair_count", f"co-occurrences: {TOP_PAIR_ISSUE} -> {TOP_PAIR_SOLUTION}", 69, "count", "RQ3", "rq3"),
    Published("top_pair_rank", "rank of that pair among all issue -> solution pairs", 1, "rank", "RQ3", "rq3"),
)

# -- Fig. 3: solution sub-theme (rows) x issue sub-theme (columns, "Concerns" dropped), % of the row
FIG3_ISSUE_LABELS: tuple[str, ...] = (
    "Code Execution Security",
    "Data Exposure",
    "Data Integrity",
    "Deployment and Infrastructure Security",
    "External Service Usage Security",
    "Memory and Resource Security",
    "Model Input and Prompt Security",
    "Model Output and Content Control",
    "Secure Communication",
    "Security of Dependencies",
    "System Runtime Compatibility",
)
FIG3_ROWS: dict[str, tuple[float, ...]] = {
    "Data Security Solutions": (12.9, 22.6, 0.0, 12.9, 0.0, 0.0, 12.9, 0.0, 12.9, 12.9, 12.9),
    "Dependency & Supply Chain Security": (8.9, 4.9, 3.8, 7.6, 4.2, 14.5, 4.7, 6.3, 5.7, 20.0, 19.6),
    "Model Security Solutions": (0.0, 11.7, 3.9, 9.8, 0.0, 7.8, 27.3, 22.6, 3.9, 0.0, 13.0),
    "Platform Identity & Access Management": (6.5, 4.3, 4.3, 14.1, 43.3, 0.0, 8.7, 0.0, 4.3, 5.8, 8.7),
    "Secure Coding & Execution": (27.8, 5.3, 3.0, 8.2, 5.2, 7.2, 13.7, 7.2, 4.8, 9.7, 7.8),
    "Secure Infrastructure & Deployment": (6.4, 2.5, 2.1, 29.2, 6.6, 14.0, 6.6, 8.3, 4.0, 5.0, 15.4),
    "Secure Runtime & Environment Configuration": (2.9, 1.9, 1.9, 20.3, 3.2, 32.5, 1.9, 6.8, 10.4, 3.9, 14.1),
    "Security Governance & Assurance": (16.2, 11.0, 4.4, 13.2, 19.9, 4.4, 6.6, 6.6, 4.4, 13.2, 0.0),
}
FIG3: tuple[Published, ...] = tuple(
    Published(
        f"fig3::{row}::{column}",
        f"Fig. 3 cell: {row} / {column}",
        value,
        "percent",
        "Fig. 3 (cells as theme/analysis.ipynb computes them)",
        "fig3",
        "",
        f"{row} | {column}",
    )
    for row, values in FIG3_ROWS.items()
    for column, value in zip(FIG3_ISSUE_LABELS, values)
)

ALL_VALUES: tuple[Published, ...] = FUNNEL + RQ1_YEARLY + CLASSIFIER + THEMATIC + FIG3
BY_KEY: dict[str, Published] = {item.key: item for item in ALL_VALUES}
if len(BY_KEY) != len(ALL_VALUES):  # pragma: no cover - a typing error in this file
    raise AssertionError("published values: duplicated key")


def value(key: str) -> float:
    """The published value of ``key`` (KeyError naming the key when unknown)."""
    try:
        return BY_KEY[key].value
    except KeyError:
        raise KeyError(f"no published value {key!r}; known groups: {sorted({v.group for v in ALL_VALUES})}") from None


def group(name: str) -> tuple[Published, ...]:
    """The published values of one group, in the order above."""
    found = tuple(item for item in ALL_VALUES if item.group == name)
    if not found:
        raise KeyError(f"no published group {name!r}")
    return found


def fig3_frame() -> pd.DataFrame:
    """Fig. 3 as published: rows solution sub-themes, columns issue sub-themes (percent of the row)."""
    import pandas as pd

    frame = pd.DataFrame(FIG3_ROWS, index=list(FIG3_ISSUE_LABELS)).T
    frame.index.name = "solution_sub_theme"
    frame.columns.name = "issue_sub_theme"
    return frame


def yearly_frame() -> pd.DataFrame:
    """The paper's Fig. 2 series: ``platform, year, paper``."""
    import pandas as pd

    rows = [{"platform": p, "year": y, "paper": v} for p, series in PAPER_YEARLY_SERIES.items() for y, v in series.items()]
    return pd.DataFrame(rows)


def as_frame(items: Iterable[Published] | None = None) -> pd.DataFrame:
    """Published values as a table: ``key, group, step, platform, quantity, value, unit, where``."""
    import pandas as pd

    rows = [
        {"key": i.key, "group": i.group, "step": i.step, "platform": i.platform, "quantity": i.quantity,
         "value": i.value, "unit": i.unit, "where": i.where}
        for i in (ALL_VALUES if items is None else items)
    ]
    return pd.DataFrame(rows, columns=["key", "group", "step", "platform", "quantity", "value", "unit", "where"])


__all__ = [
    "ALL_VALUES",
    "BY_KEY",
    "CLASSIFIER",
    "FIG3",
    "FIG3_ISSUE_LABELS",
    "FIG3_ROWS",
    "FUNNEL",
    "FUNNEL_STEPS",
    "PAPER_YEARLY_SERIES",
    "Published",
    "RQ1_YEARLY",
    "THEMATIC",
    "TOP_PAIR_ISSUE",
    "TOP_PAIR_SOLUTION",
    "as_frame",
    "fig3_frame",
    "group",
    "value",
    "yearly_frame",
]
