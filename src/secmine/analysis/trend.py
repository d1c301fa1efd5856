"""Fig. 2 of the paper: security reports per year and platform, this run beside the paper.

The run's series counts the dated security threads (classifier label 1) per calendar year on
GitHub (issues, pull requests and discussions) and Hugging Face, from whatever corpus the run has
(the snapshot, a live crawl, or the paper's ids rehydrated with their dates).  Years run up to the
last *complete* one: a year the corpus ends inside (its latest thread is created before that year's
31 December) is left out and :func:`yearly_reports` says so.  The paper's series
(:data:`secmine.published.PAPER_YEARLY_SERIES`) is set beside it, clearly labelled.

Table ``fig2_yearly.csv`` (``year, platform, this_run, paper``; an empty cell is a count the run or
the paper does not have) and figure ``fig2_trend`` (PNG + SVG): two panels at the paper's
proportions (15 x 6 inches), grouped bars with value labels, axes "Year" / "Number of Reports".
Both are written by the ``rq1`` stage (:func:`secmine.analysis.rq1.run_rq1`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from secmine.published import GH, HF, PAPER, PAPER_YEARLY_SERIES

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

TABLE_STEM = "fig2_yearly"
FIGURE_STEM = "fig2_trend"
PAPER_FIGSIZE = (15.0, 6.0)
PLATFORMS: tuple[str, ...] = (GH, HF)
PLATFORM_OF: dict[str, str] = {"github": GH, "huggingface": HF}
COLOURS: dict[str, str] = {GH: "#3B4A5C", HF: "#E8A400"}


@dataclass
class YearlyReports:
    """The Fig. 2 table and what was left out."""

    table: pd.DataFrame  # year, platform, this_run, paper
    last_complete_year: int | None
    notes: list[str] = field(default_factory=list)


def last_complete_year(created: pd.Series) -> int | None:
    """The last calendar year the creation dates cover to its end (None without dates): the year
    of the latest date if that date is 31 December, else the year before."""
    import pandas as pd

    dated = pd.to_datetime(created, utc=True, errors="coerce").dropna()
    if dated.empty:
        return None
    latest = dated.max()
    return int(latest.year) if (latest.month, latest.day) == (12, 31) else int(latest.year) - 1


def run_counts(classified: pd.DataFrame, *, weight: str | None = None) -> pd.DataFrame:
    """Dated security threads per ``platform`` (GitHub / Hugging Face) and ``year``: ``platform,
    year, this_run``.  ``classified`` needs ``platform``, ``label`` and ``created`` (UTC) columns;
    ``weight`` names a column of thread counts when each row stands for that many threads."""
    import pandas as pd

    dated = classified[(classified["label"] == 1) & classified["created"].notna()]
    if dated.empty:
        return pd.DataFrame({"platform": pd.Series(dtype=str), "year": pd.Series(dtype="int64"),
                             "this_run": pd.Series(dtype="int64")})
    frame = pd.DataFrame(
        {
            "platform": dated["platform"].map(lambda p: PLATFORM_OF.get(p, p)).to_numpy(),
            "year": dated["created"].dt.year.astype("int64").to_numpy(),
            "n": dated[weight].to_numpy(dtype="int64") if weight is not None else 1,
        }
    )
    return frame.groupby(["platform", "year"])["n"].sum().astype("int64").rename("this_run").reset_index()


def yearly_reports(
    classified: pd.DataFrame,
    *,
    last_year: int | None = None,
    first_year: int | None = None,
    weight: str | None = None,
) -> YearlyReports:
    """The Fig. 2 table: for each platform, every year from the first with a report (the run's or
    the paper's, or ``first_year``) to the last complete one (or ``last_year``), the run's count
    and the paper's; a year outside a series' span is an empty cell, a year inside it with no
    report is 0.  ``weight``: a column of thread counts when each row stands for that many threads
    (a counted frame)."""
    import numpy as np
    import pandas as pd

    counts = run_counts(classified, weight=weight)
    complete = last_complete_year(classified["created"]) if "created" in classified.columns else None
    end = last_year if last_year is not None else complete
    notes: list[str] = []
    latest = classified["created"].dropna().max() if "created" in classified.columns else None
    if end is not None and not counts.empty and counts["year"].max() > end:
        dropped = sorted(int(y) for y in counts.loc[counts["year"] > end, "year"].unique())
        n = int(counts.loc[counts["year"] > end, "this_run"].sum())
        why = (f"the corpus ends on {latest.date().isoformat()}" if latest is not None and last_year is None
               else f"last_year = {end}")
        notes.append(f"{', '.join(map(str, dropped))} left out ({n:,} security threads): a partial year ({why}).")
    undated_rows = classified[(classified["label"] == 1) & classified["created"].isna()]
    undated = int(undated_rows[weight].sum()) if weight is not None else len(undated_rows)
    if undated:
        notes.append(f"{undated:,} security threads have no creation date (e.g. replication posts) and are not counted.")
    rows = []
    for platform in PLATFORMS:
        run = counts[counts["platform"] == platform].set_index("year")["this_run"]
        if end is not None:
            run = run[run.index <= end]
        paper = PAPER_YEARLY_SERIES.get(platform, {})
        years = set(run.index) | set(paper)
        if not years:
            continue
        start = min(years) if first_year is None else first_year
        stop = max(max(years), start) if end is None else max(end, max(paper, default=end))
        run_span = (int(run.index.min()), int(end if end is not None else run.index.max())) if len(run) else None
        for year in range(start, stop + 1):
            in_run = run_span is not None and run_span[0] <= year <= run_span[1]
            rows.append(
                {
                    "year": year,
                    "platform": platform,
                    "this_run": int(run.get(year, 0)) if in_run else np.nan,
                    "paper": paper.get(year, np.nan),
                }
            )
        if not len(run):
            notes.append(f"{platform}: this run has no dated security thread (marked, not 0).")
    table = pd.DataFrame(rows, columns=["year", "platform", "this_run", "paper"])
    table["this_run"] = table["this_run"].astype("Int64")
    table["paper"] = table["paper"].astype("Int64")
    return YearlyReports(table=table, last_complete_year=end, notes=notes)


def _panel(ax, table: pd.DataFrame, column: str, title: str) -> None:  # noqa: ANN001 - matplotlib Axes
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    part = table[table[column].notna()]
    years = sorted(int(y) for y in part["year"].unique())
    if not years:
        ax.text(0.5, 0.5, "no counts", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(title)
        return
    x = np.arange(len(years))
    platforms = [p for p in PLATFORMS if (part["platform"] == p).any()]
    width = 0.8 / max(1, len(platforms))
    top = float(part[column].max())
    for i, platform in enumerate(platforms):
        series = part[part["platform"] == platform].set_index("year")[column]
        values = [series.get(y) for y in years]
        shown = [(xi, int(v)) for xi, v in zip(x, values) if v is not None and v == v]
        positions = [xi - 0.4 + width * (i + 0.5) for xi, _ in shown]
        heights = [v for _, v in shown]
        bars = ax.bar(positions, heights, width * 0.95, color=COLOURS[platform], label=platform)
        ax.bar_label(bars, labels=[f"{v:,}" for v in heights], padding=2, fontsize=8)
    ax.set_xticks(x, [str(y) for y in years])
    ax.set_xlabel("Year")
    ax.set_ylabel("Number of Reports")
    ax.set_ylim(0, top * 1.12 if top > 0 else 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.legend(frameon=False, loc="upper left")


def trend_figure(reports: YearlyReports) -> Figure:
    """Two panels, this run (left) and the paper's published series (right)."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=PAPER_FIGSIZE)
    end = f" up to {reports.last_complete_year}" if reports.last_complete_year is not None else ""
    _panel(left, reports.table, "this_run", f"This run: security threads per year{end}")
    _panel(right, reports.table, "paper", f"The paper ({PAPER}, Fig. 2): published counts")
    if reports.notes:
        fig.text(0.01, 0.005, "Note: " + " ".join(reports.notes), fontsize=8, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.05 if reports.notes else 0, 1, 1))
    return fig


def write(reports: YearlyReports, fig: Figure, *, tables_dir: str | os.PathLike[str],
          figures_dir: str | os.PathLike[str]) -> list[Path]:
    """``fig2_yearly.csv`` (CSV only) and ``fig2_trend.png/.svg``."""
    from secmine.io import save_figure, write_csv

    written = [write_csv(reports.table, Path(tables_dir) / f"{TABLE_STEM}.csv")]
    written += list(save_figure(fig, Path(figures_dir) / FIGURE_STEM).values())
    return sorted(written)


def output_files(tables_dir: str | os.PathLike[str], figures_dir: str | os.PathLike[str]) -> list[Path]:
    from secmine.io import FIGURE_FORMATS

    return sorted([Path(tables_dir) / f"{TABLE_STEM}.csv",
                   *(Path(figures_dir) / f"{FIGURE_STEM}.{fmt}" for fmt in FIGURE_FORMATS)])


__all__ = ["YearlyReports", "last_complete_year", "output_files", "run_counts", "trend_figure", "write",
           "yearly_reports"]
