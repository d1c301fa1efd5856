"""Fig. 3 of the paper: the solution sub-theme x issue sub-theme heatmap, as published and plain.

**As published** (:func:`published_heatmap`), exactly as the authors' ``theme/analysis.ipynb``
computes it: every (issue code, solution code) pair that co-occurs in a post is counted (a post
contributes issue mentions x solution mentions, so a code listed twice counts twice); the count
of each *distinct code pair* is one value; the cell of a (solution sub-theme, issue sub-theme) is
the **mean** of the values of the code pairs that fall in it (pandas ``pivot_table``'s default
aggregation, empty cells 0); each row is then normalised to 100%.  Rows and columns are sorted
alphabetically (``pivot_table``'s order) and the issue labels lose the word "Concerns".

**Plain** (:func:`plain_heatmap`): the same pair counts *summed* per cell, then each row
normalised -- the share of a solution sub-theme's co-occurrences that go with each issue
sub-theme.  The published cell weighs a code pair seen once as much as one seen 69 times, so a
cell with a few rare pairs can outweigh a cell with one frequent pair; :data:`HEATMAP_NOTE` says
so in one sentence.

Both are written by the ``thematic`` stage: tables ``fig3_heatmap_published.csv`` and
``fig3_heatmap_plain.csv`` (first column the solution sub-theme, one column per issue sub-theme,
percent) and figures ``fig3_heatmap`` and ``fig3_heatmap_plain`` (PNG + SVG) at the paper's
proportions (12 x 8 inches, square cells, the ``crest`` colour map, one decimal).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from secmine.thematic.counting import pair_counts, taxonomy_frame

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from secmine.codebook import Codebook

SOLUTION_LABEL = "solution_sub_theme"
HEATMAP_NOTE = (
    "The paper's cells are means over distinct code pairs (a pair seen once weighs as much as one seen "
    "69 times) normalised per row, whereas the plain version divides the co-occurrences summed per cell "
    "by the row's total, so only the plain cells are shares of what was observed."
)
TABLE_STEMS: dict[str, str] = {"published": "fig3_heatmap_published", "plain": "fig3_heatmap_plain"}
FIGURE_STEMS: dict[str, str] = {"published": "fig3_heatmap", "plain": "fig3_heatmap_plain"}
PAPER_FIGSIZE = (12.0, 8.0)

_CONCERNS_RE = re.compile("concerns", re.IGNORECASE)


class HeatmapError(ValueError):
    """The mentions given to the heatmap hold no co-occurring issue and solution."""


def issue_label(sub_theme: str) -> str:
    """An issue sub-theme as Fig. 3 labels it: the word "Concerns" dropped (any case), trimmed."""
    return _CONCERNS_RE.sub("", sub_theme).strip()


def code_pairs(mentions: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """Distinct co-occurring code pairs with their sub-themes: ``issue, solution, count,
    issue_sub_theme, solution_sub_theme`` (``count``: issue mentions x solution mentions summed
    over the posts holding both, as the authors count)."""
    pairs = pair_counts(mentions, multiplicity=True)
    issue_sub = taxonomy_frame(codebook, "issue", "code").set_index("code")["sub_theme"]
    solution_sub = taxonomy_frame(codebook, "solution", "code").set_index("code")["sub_theme"]
    return pairs.assign(
        issue_sub_theme=pairs["issue"].map(issue_sub), solution_sub_theme=pairs["solution"].map(solution_sub)
    )


def _heatmap(pairs: pd.DataFrame, aggfunc: str) -> pd.DataFrame:
    if pairs.empty:
        raise HeatmapError("no issue code co-occurs with a solution code in any post: Fig. 3 is empty")
    labelled = pairs.assign(issue_label=pairs["issue_sub_theme"].map(issue_label))
    table = labelled.pivot_table(
        index="solution_sub_theme", columns="issue_label", values="count", aggfunc=aggfunc, fill_value=0
    )
    table = table.astype(float)
    percent = table.div(table.sum(axis=1), axis=0) * 100.0
    percent.index.name = SOLUTION_LABEL
    percent.columns.name = None
    return percent


def published_heatmap(mentions: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """Fig. 3 as published (see the module docstring): rows solution sub-themes, columns issue
    sub-themes without "Concerns", cells percent of the row (full precision)."""
    return _heatmap(code_pairs(mentions, codebook), "mean")


def plain_heatmap(mentions: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """Row shares of the co-occurrences summed per cell (same rows, columns and pair counts as
    :func:`published_heatmap`)."""
    return _heatmap(code_pairs(mentions, codebook), "sum")


def as_table(heatmap: pd.DataFrame) -> pd.DataFrame:
    """The heatmap as the CSV is written: first column the solution sub-theme."""
    return heatmap.reset_index()


def heatmap_figure(heatmap: pd.DataFrame, *, title: str) -> Figure:
    """The heatmap drawn as the paper draws it: 12 x 8 inches, square annotated cells (one
    decimal), ``crest``, x axis "Issue Sub-Themes" (labels at 45 degrees), y axis "Solution
    Sub-Themes"."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=PAPER_FIGSIZE)
    sns.heatmap(
        heatmap,
        annot=True,
        fmt=".1f",
        cmap="crest",
        linewidths=0.5,
        square=True,
        vmin=0,
        cbar_kws={"label": "% of the row"},
        ax=ax,
    )
    ax.set_xlabel("Issue Sub-Themes")
    ax.set_ylabel("Solution Sub-Themes")
    ax.set_title(title, fontsize=11)
    ax.tick_params(axis="x", labelrotation=45)
    ax.tick_params(axis="y", labelrotation=0)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    fig.tight_layout()
    return fig


def build(mentions: pd.DataFrame, codebook: Codebook, *, n_posts: int | None = None) -> tuple[
    dict[str, pd.DataFrame], dict[str, Figure]
]:
    """Both heatmaps as tables (by :data:`TABLE_STEMS` key) and figures (by :data:`FIGURE_STEMS` key)."""
    heatmaps = {"published": published_heatmap(mentions, codebook), "plain": plain_heatmap(mentions, codebook)}
    n = f"\nthis run: N = {n_posts} coded posts" if n_posts is not None else ""
    figures = {
        "published": heatmap_figure(
            heatmaps["published"], title=f"Fig. 3 as the paper computes it: mean per code pair, row = 100%{n}"
        ),
        "plain": heatmap_figure(
            heatmaps["plain"], title=f"Plain: share of the row's summed co-occurrences, row = 100%{n}"
        ),
    }
    return heatmaps, figures


def write(
    heatmaps: dict[str, pd.DataFrame],
    figures: dict[str, Figure],
    *,
    tables_dir: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str],
) -> list[Path]:
    """Write ``fig3_heatmap_published.csv``, ``fig3_heatmap_plain.csv`` (CSV only: the drawn
    figure is the readable form) and the two figures (PNG + SVG); return the paths."""
    from secmine.io import save_figure, write_csv

    written: list[Path] = []
    for key, frame in heatmaps.items():
        written.append(write_csv(as_table(frame.round(6)), Path(tables_dir) / f"{TABLE_STEMS[key]}.csv"))
    for key, fig in figures.items():
        written.extend(save_figure(fig, Path(figures_dir) / FIGURE_STEMS[key]).values())
    return sorted(written)


def output_files(tables_dir: str | os.PathLike[str], figures_dir: str | os.PathLike[str]) -> list[Path]:
    """Every file :func:`write` writes (for the DVC stage's outs, declared file by file)."""
    from secmine.io import FIGURE_FORMATS

    files = [Path(tables_dir) / f"{stem}.csv" for stem in TABLE_STEMS.values()]
    files += [Path(figures_dir) / f"{stem}.{fmt}" for stem in FIGURE_STEMS.values() for fmt in FIGURE_FORMATS]
    return sorted(files)


def compare_with_published(heatmap: pd.DataFrame) -> pd.DataFrame:
    """The computed "as published" cells beside the paper's (:func:`secmine.published.fig3_frame`):
    ``solution_sub_theme, issue_sub_theme, computed, paper, difference, matches`` (one decimal, as
    drawn; a cell missing on either side is NaN and does not match)."""
    import numpy as np
    import pandas as pd

    from secmine.published import fig3_frame

    paper = fig3_frame()
    rows = sorted(set(paper.index) | set(heatmap.index))
    cols = sorted(set(paper.columns) | set(heatmap.columns))
    computed = heatmap.reindex(index=rows, columns=cols).round(1)
    published = paper.reindex(index=rows, columns=cols)
    out = pd.DataFrame(
        {
            SOLUTION_LABEL: np.repeat(rows, len(cols)),
            "issue_sub_theme": cols * len(rows),
            "computed": computed.to_numpy().ravel(),
            "paper": published.to_numpy().ravel(),
        }
    )
    out["difference"] = (out["computed"] - out["paper"]).round(1)
    out["matches"] = out["difference"].abs() < 0.05
    return out
