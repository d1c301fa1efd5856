"""The RQ2/RQ3 figures (matplotlib + seaborn), saved as PNG + SVG by :func:`secmine.io.save_figure`.

Each function returns a :class:`matplotlib.figure.Figure` built from
:class:`~secmine.thematic.counting.ThematicCounts`; titles name what is counted and N.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from secmine.io import FIGURE_FORMATS, save_figure
from secmine.thematic.counting import GROUP_LABELS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from secmine.codebook import CodeType
    from secmine.thematic.counting import ThematicCounts

PLATFORM_COLOURS: dict[str, str] = {"hf": "#E8A400", "gh": "#3B4A5C", "total": "#5B8DB8"}
TYPE_TITLES: dict[str, str] = {"issue": "Security issues (RQ2)", "solution": "Solutions (RQ3)"}
ARROW = "\u2192"

# stem -> what the figure shows (the notebook prints these as captions)
FIGURE_CAPTIONS: dict[str, str] = {
    "theme_frequencies": "Issue and solution mentions by theme and platform (bar label: mentions, % of posts)",
    "issue_codes": "Security issue codes: mentions per platform, grouped by theme",
    "solution_codes": "Solution codes: mentions per platform, grouped by theme",
    "cooccurrence_sub_themes": "Issue -> solution co-occurrence within posts, by sub-theme",
    "cooccurrence_codes": "Issue -> solution co-occurrence within posts, by code",
    "lack_of_solutions": "Issues left without a solution, and solution mentions per issue mention, by theme",
}
FIGURE_STEMS: tuple[str, ...] = tuple(FIGURE_CAPTIONS)


def figure_files(figures_dir: str | os.PathLike[str]) -> list[Path]:
    """Every file :func:`write_figures` writes into ``figures_dir``."""
    folder = Path(figures_dir)
    return sorted(folder / f"{stem}.{fmt}" for stem in FIGURE_STEMS for fmt in FIGURE_FORMATS)


def _n_title(counts: ThematicCounts) -> str:
    n = counts.n_posts
    return (
        f"N = {n['total']} coded posts (HF: {n['hf']} discussions; "
        f"GH: {n['gh']} = {n['gh_issue']} issues + {n['gh_discussion']} discussions)"
    )


def _style():  # noqa: ANN202 - a context manager
    import seaborn as sns

    return sns.axes_style("whitegrid", {"axes.edgecolor": "0.6", "grid.color": "0.9"})


def _theme_panel(ax: Axes, table: pd.DataFrame, title: str, groups: tuple[str, ...] = ("hf", "gh")) -> None:
    import numpy as np

    themes = table["theme"].tolist()
    y = np.arange(len(themes))
    height = 0.8 / len(groups)
    xmax = max(1, int(max(table[f"{g}_freq"].max() for g in groups)))
    for i, group in enumerate(groups):
        offsets = y - 0.4 + height * (i + 0.5)
        values = table[f"{group}_freq"].to_numpy()
        ax.barh(offsets, values, height=height * 0.95, color=PLATFORM_COLOURS[group], label=GROUP_LABELS[group])
        for offset, value, pct in zip(offsets, values, table[f"{group}_pct"].to_numpy()):
            label = f"{int(value)} ({pct:.1f}%)" if pct == pct else f"{int(value)}"
            ax.text(value + xmax * 0.01, offset, label, va="center", fontsize=8)
    ax.set_yticks(y, themes)
    ax.invert_yaxis()
    ax.set_xlim(0, xmax * 1.3)
    ax.set_xlabel("mentions (times a code of the theme is assigned)")
    ax.set_title(title, fontsize=11)
    ax.legend(loc="lower right", fontsize=8, title="platform", title_fontsize=8)


def theme_frequencies_figure(counts: ThematicCounts) -> Figure:
    """Issue and solution theme frequencies side by side, HF vs GH, with coverage in labels."""
    import matplotlib.pyplot as plt

    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(14, 4.6), constrained_layout=True)
        for ax, code_type in zip(axes, ("issue", "solution")):
            table = counts.themes[code_type]
            total = int(table["total_freq"].sum())
            _theme_panel(ax, table, f"{TYPE_TITLES[code_type]}: {total} mentions")
        fig.suptitle(
            "Mentions by theme and platform (label: mentions, % of the platform's coded posts covered)\n"
            + _n_title(counts),
            fontsize=12,
        )
    return fig


def code_frequencies_figure(counts: ThematicCounts, code_type: CodeType) -> Figure:
    """Mentions per code, stacked HF + GH, codes grouped by theme (largest first within a theme)."""
    import matplotlib.pyplot as plt
    import numpy as np

    table = counts.codes[code_type].copy()
    table["_theme_order"] = table["theme"].map({t: i for i, t in enumerate(dict.fromkeys(table["theme"]))})
    table["_order"] = np.arange(len(table))
    table = table.sort_values(["_theme_order", "total", "_order"], ascending=[True, False, True]).reset_index(drop=True)
    with _style():
        fig, ax = plt.subplots(figsize=(12, 0.3 * len(table) + 2.2), constrained_layout=True)
        y = np.arange(len(table))
        ax.barh(y, table["hf"], color=PLATFORM_COLOURS["hf"], label="HF")
        ax.barh(y, table["gh"], left=table["hf"], color=PLATFORM_COLOURS["gh"], label="GH")
        xmax = max(1, int(table["total"].max()))
        for yi, total in zip(y, table["total"]):
            ax.text(total + xmax * 0.01, yi, str(int(total)), va="center", fontsize=8)
        ax.set_yticks(y, table["code"], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, xmax * 1.25)
        # theme separators and labels
        bounds = table.groupby("_theme_order").agg(first=("code", lambda s: s.index.min()),
                                                   last=("code", lambda s: s.index.max()),
                                                   theme=("theme", "first"),
                                                   total=("total", "sum"))
        for _, row in bounds.iterrows():
            if row["first"] > 0:
                ax.axhline(row["first"] - 0.5, color="0.5", linewidth=0.8)
            ax.text(xmax * 1.24, (row["first"] + row["last"]) / 2, f"{row['theme']}\n({int(row['total'])})",
                    ha="right", va="center", fontsize=9, fontweight="bold", color="0.3")
        ax.set_xlabel("mentions")
        # below the plot, right: inside it would cover the theme labels at the right edge
        ax.legend(loc="upper right", bbox_to_anchor=(1.0, -0.02), ncols=2, fontsize=8, title="platform",
                  title_fontsize=8, frameon=False)
        ax.set_title(
            f"{TYPE_TITLES[code_type]}: mentions per code ({int(table['total'].sum())} in all)\n{_n_title(counts)}",
            fontsize=11,
        )
    return fig


def cooccurrence_figure(counts: ThematicCounts, level: str = "sub_theme") -> Figure:
    """The issue -> solution heatmap (rows issues, columns solutions), zeros left blank."""
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns

    matrix = counts.cooccurrence_sub_themes if level == "sub_theme" else counts.cooccurrence_codes
    values = matrix.to_numpy()
    annot = np.where(values > 0, values.astype(str), "")
    if level == "sub_theme":
        size, fontsize = (13, 8.5), 9
    else:
        size, fontsize = (19, 15), 7
    top = counts.pairs.iloc[0] if len(counts.pairs) else None
    top_text = (
        f"most frequent code pair: {top['issue_code']} {ARROW} {top['solution_code']} ({int(top['count'])})"
        if top is not None
        else "no issue co-occurs with a solution"
    )
    unit = "issue mention x solution mention pairs" if counts.multiplicity else "posts holding both"
    with _style():
        fig, ax = plt.subplots(figsize=size, constrained_layout=True)
        sns.heatmap(
            matrix,
            annot=annot,
            fmt="",
            cmap="Blues",
            linewidths=0.4,
            linecolor="0.92",
            cbar_kws={"label": unit, "shrink": 0.6},
            annot_kws={"fontsize": fontsize},
            ax=ax,
        )
        _mark_themes(ax, counts, level)
        name = "sub-theme" if level == "sub_theme" else "code"
        ax.set_xlabel(f"solution {name}")
        ax.set_ylabel(f"issue {name}")
        ax.tick_params(axis="x", labelrotation=60, labelsize=fontsize)
        ax.tick_params(axis="y", labelsize=fontsize)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
        ax.set_title(
            f"Issue {ARROW} solution co-occurrence within a post, by {name} ({unit})\n"
            f"{_n_title(counts)}\n{top_text}",
            fontsize=11,
        )
    return fig


THEME_COLOURS: dict[str, str] = {
    "System & Software": "#1F4E79",
    "External Tools & Ecosystem": "#8A5A00",
    "Model": "#6A1B9A",
    "Data": "#2E7D32",
}


def _theme_of(counts: ThematicCounts, code_type: CodeType, level: str) -> dict[str, str]:
    table = counts.codes[code_type] if level == "code" else counts.sub_themes[code_type]
    return dict(zip(table[level], table["theme"]))


def _mark_themes(ax: Axes, counts: ThematicCounts, level: str) -> None:
    """Lines between themes and tick labels coloured by theme (legend below the title)."""
    from matplotlib.patches import Patch

    used: dict[str, str] = {}
    for axis, code_type, line in ((ax.yaxis, "issue", ax.axhline), (ax.xaxis, "solution", ax.axvline)):
        theme_of = _theme_of(counts, code_type, level)  # type: ignore[arg-type]
        labels = [t.get_text() for t in axis.get_ticklabels()]
        themes = [theme_of.get(label, "") for label in labels]
        for position in range(1, len(themes)):
            if themes[position] != themes[position - 1]:
                line(position, color="0.3", linewidth=1.2)
        for tick, theme in zip(axis.get_ticklabels(), themes):
            colour = THEME_COLOURS.get(theme, "0.2")
            tick.set_color(colour)
            used.setdefault(theme, colour)
    handles = [Patch(color=colour, label=theme) for theme, colour in used.items() if theme]
    ax.legend(handles=handles, title="theme (tick colour)", loc="upper left", bbox_to_anchor=(1.12, 1.0),
              fontsize=8, title_fontsize=8, frameon=False)


def lack_of_solutions_figure(counts: ThematicCounts) -> Figure:
    """Left: share of posts carrying a theme's issues with no solution code, per platform.
    Right: solution mentions of the same theme per issue mention of the theme."""
    import matplotlib.pyplot as plt
    import numpy as np

    lack = counts.lack_themes
    themes = list(dict.fromkeys(lack["theme"]))
    groups = ("hf", "gh", "total")
    with _style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.8), constrained_layout=True)
        y = np.arange(len(themes))
        height = 0.8 / len(groups)
        for i, group in enumerate(groups):
            part = lack[lack["platform"] == group].set_index("theme").reindex(themes)
            offsets = y - 0.4 + height * (i + 0.5)
            pct = part["pct_without_solution"].fillna(0).to_numpy()
            left.barh(offsets, pct, height=height * 0.95, color=PLATFORM_COLOURS[group], label=GROUP_LABELS[group])
            for offset, value, k, n in zip(offsets, pct, part["posts_without_solution"], part["posts"]):
                left.text(value + 1, offset, f"{value:.0f}% ({int(k)}/{int(n)})", va="center", fontsize=8)
        left.set_yticks(y, themes)
        left.invert_yaxis()
        left.set_xlim(0, 125)
        left.set_xlabel("% of the posts with an issue of the theme that have no solution code")
        left.set_title("Issues left without any solution", fontsize=11)
        left.legend(loc="lower right", fontsize=8, title="platform", title_fontsize=8)

        balance = counts.balance.set_index("theme").reindex(themes)
        ratio = balance["solutions_per_issue"].fillna(0).to_numpy()
        right.barh(y, ratio, color=PLATFORM_COLOURS["total"])
        for yi, value, s, i_ in zip(y, ratio, balance["solution_mentions"], balance["issue_mentions"]):
            right.text(value + 0.01, yi, f"{value:.2f} ({int(s)} solutions / {int(i_)} issues)", va="center", fontsize=8)
        right.set_yticks(y, themes)
        right.invert_yaxis()
        right.set_xlim(0, max(1.0, float(np.nanmax(ratio)) * 1.6))
        right.set_xlabel("solution mentions of the theme per issue mention of the theme")
        right.set_title("Solutions offered per issue, same theme (all platforms)", fontsize=11)
        fig.suptitle(f"Lack of solutions by issue theme\n{_n_title(counts)}", fontsize=12)
    return fig


def build_figures(counts: ThematicCounts) -> dict[str, Figure]:
    """Every figure of the stage, by stem (see :data:`FIGURE_STEMS`)."""
    figures = {
        "theme_frequencies": theme_frequencies_figure(counts),
        "issue_codes": code_frequencies_figure(counts, "issue"),
        "solution_codes": code_frequencies_figure(counts, "solution"),
        "cooccurrence_sub_themes": cooccurrence_figure(counts, "sub_theme"),
        "cooccurrence_codes": cooccurrence_figure(counts, "code"),
        "lack_of_solutions": lack_of_solutions_figure(counts),
    }
    return {stem: figures[stem] for stem in FIGURE_STEMS}


def write_figures(figures: dict[str, Figure], figures_dir: str | os.PathLike[str]) -> list[Path]:
    """Save every figure as PNG + SVG under ``figures_dir``; return the written paths."""
    written: list[Path] = []
    for stem, fig in figures.items():
        written.extend(save_figure(fig, Path(figures_dir) / stem).values())
    return sorted(written)
