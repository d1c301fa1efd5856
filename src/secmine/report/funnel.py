"""Fig. 1 of the paper, the study funnel: the count at each step, this run beside the paper.

Computed from the stages' metrics (``reports/metrics/{collect,keywords,classify,thematic,external,
sample}.json``) and two per-kind tables the metrics do not break down
(``reports/tables/keywords/keyword_matches.csv``, ``reports/tables/classify/classified_summary.csv``).
A count the run does not have is an empty cell with a note saying why (a snapshot run crawls
nothing, a missing stage output, ...), never a number made up.  The paper's counts come from
:data:`secmine.published.FUNNEL`.

Written by the final ``report`` stage: ``reports/tables/paper/fig1_funnel.csv`` (``step, platform,
this_run, paper, note``) and ``reports/figures/paper/fig1_funnel`` (PNG + SVG).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine.published import FUNNEL, FUNNEL_STEPS, GH_DISCUSSION, GH_ISSUE, HF_DISCUSSION, PAPER

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

TABLE_STEM = "fig1_funnel"
FIGURE_STEM = "fig1_funnel"
METRIC_STAGES: tuple[str, ...] = ("external", "collect", "keywords", "train", "classify", "sample", "thematic", "rq1")
KEYWORD_TABLE = "keywords/keyword_matches.csv"
CLASSIFY_TABLE = "classify/classified_summary.csv"
SOURCE_KIND: dict[str, tuple[str, str]] = {
    HF_DISCUSSION: ("huggingface", "discussion"),
    GH_ISSUE: ("github", "issue"),
    GH_DISCUSSION: ("github", "discussion"),
}


class ReportInputError(ValueError):
    """A metrics file or table the report reads is malformed; the message names file and field."""


def load_metrics(metrics_dir: str | os.PathLike[str], stages: tuple[str, ...] = METRIC_STAGES) -> dict[str, dict]:
    """``{stage: metrics}`` for each ``<stage>.json`` in ``metrics_dir`` (absent files are left out)."""
    out: dict[str, dict] = {}
    for stage in stages:
        path = Path(metrics_dir) / f"{stage}.json"
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ReportInputError(f"{path}, line {exc.lineno}: not JSON ({exc.msg}); rerun the {stage} stage") from None
        if not isinstance(data, dict):
            raise ReportInputError(f"{path}: expected a JSON object, got {type(data).__name__}; rerun the {stage} stage")
        out[stage] = data
    return out


def _read_table(tables_dir: str | os.PathLike[str] | None, name: str) -> pd.DataFrame | None:
    import pandas as pd

    if tables_dir is None:
        return None
    path = Path(tables_dir) / name
    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    for column in ("platform", "kind"):
        if column not in frame.columns:
            raise ReportInputError(f"{path}: missing column {column!r} (found {list(frame.columns)})")
    return frame


def _per_kind(table: pd.DataFrame | None, column: str, platform: str, kind: str | None) -> float:
    if table is None or column not in table.columns:
        return math.nan
    rows = table[(table["platform"] == platform) & ((table["kind"] == kind) if kind else (table["kind"] != "all"))]
    return float(rows[column].sum()) if len(rows) else math.nan


def _get(metrics: Mapping[str, Any], *path: str) -> Any:
    value: Any = metrics
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def funnel_table(
    metrics: Mapping[str, Mapping[str, Any]] | str | os.PathLike[str],
    tables_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """The funnel: one row per (step, platform) the paper reports, with this run's count (NaN
    when the run has none) and a note.  ``metrics`` is :func:`load_metrics`'s dict or the folder."""
    import pandas as pd

    m = load_metrics(metrics) if isinstance(metrics, (str, os.PathLike)) else metrics
    collect, keywords, classify = m.get("collect", {}), m.get("keywords", {}), m.get("classify", {})
    thematic, external = m.get("thematic", {}), m.get("external", {})
    keyword_table = _read_table(tables_dir, KEYWORD_TABLE)
    classify_table = _read_table(tables_dir, CLASSIFY_TABLE)
    source = collect.get("source")
    crawled = source == "live"
    by_kind = collect.get("by_kind") or {}
    origin = collect.get("by_source") or {}
    corpus_note = (
        "corpus = " + " + ".join(f"{k} ({v:,})" for k, v in sorted(origin.items())) + ", bots removed: not a crawl"
        if source == "snapshot" and origin else ""
    )
    values: dict[str, tuple[float, str]] = {}

    def put(key: str, value: Any, note: str = "") -> None:
        number = math.nan if value is None else float(value)
        values[key] = (number, note if number == number else (note or "not in this run's outputs"))

    if crawled:
        put("funnel_hf_models", collect.get("hf_repositories"))
        put("funnel_gh_projects", collect.get("github_repositories_linked"))
    else:
        why = f"collect.source = {source}: no Hugging Face crawl" if source else "no collect metrics"
        put("funnel_hf_models", None, why)
        put("funnel_gh_projects", None, why)
    if by_kind:
        put("funnel_hf_threads", by_kind.get("huggingface:discussion"), corpus_note)
        gh = [v for k, v in by_kind.items() if k.startswith("github:")]
        put("funnel_gh_threads", sum(gh) if gh else None, corpus_note)
    else:
        put("funnel_hf_threads", None, "no collect metrics")
        put("funnel_gh_threads", None, "no collect metrics")
    kw_note = "" if keyword_table is not None else f"no {KEYWORD_TABLE}"
    for key, name in (("funnel_kw_hf", HF_DISCUSSION), ("funnel_kw_gh_discussion", GH_DISCUSSION),
                      ("funnel_kw_gh_issue", GH_ISSUE)):
        put(key, _per_kind(keyword_table, "matched", *SOURCE_KIND[name]), kw_note)
    sec_note = "" if classify_table is not None else f"no {CLASSIFY_TABLE}"
    for key, name in (("funnel_sec_hf", HF_DISCUSSION), ("funnel_sec_gh_discussion", GH_DISCUSSION),
                      ("funnel_sec_gh_issue", GH_ISSUE)):
        put(key, _per_kind(classify_table, "security", *SOURCE_KIND[name]), sec_note)
    put("funnel_sec_total", classify.get("security"), "" if classify else "no classify metrics")
    posts = thematic.get("posts") or {}
    coded_note = "the coded sample the thematic stage counted (the replication package's, unless your own coding)"
    put("funnel_coded_hf", posts.get("hf"), coded_note)
    put("funnel_coded_gh_discussion", posts.get("gh_discussion"), coded_note)
    put("funnel_coded_gh_issue", posts.get("gh_issue"), coded_note)
    put("funnel_coded_total", posts.get("total"), coded_note)
    put("funnel_issue_codes", external.get("issue_codes") or _get(m, "thematic", "issue_codes"), "")
    put("funnel_solution_codes", external.get("solution_codes"), "")
    if keywords.get("matched") is not None and keyword_table is None:
        values["funnel_kw_gh_issue"] = (math.nan, f"keywords.json has only the total ({keywords['matched']:,})")
    rows = []
    for item in FUNNEL:
        number, note = values[item.key]
        if item.key == "funnel_sec_total":
            note = (note + "; " if note else "") + "the paper's total is 445 above its three lists (312,423)"
        rows.append({"step": item.step, "platform": item.platform, "this_run": number, "paper": int(item.value),
                     "note": note})
    table = pd.DataFrame(rows, columns=["step", "platform", "this_run", "paper", "note"])
    table["this_run"] = table["this_run"].round().astype("Int64")
    return table


def _fmt(value: Any) -> str:
    import pandas as pd

    return "n/a" if value is None or pd.isna(value) else f"{int(value):,}"


def funnel_figure(table: pd.DataFrame) -> Figure:
    """The funnel as the paper draws Fig. 1: the steps left to right, each a box with the paper's
    count and this run's per platform (``n/a``: the run has no such count)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    import textwrap

    steps = [s for s in FUNNEL_STEPS if (table["step"] == s).any()]
    fig, ax = plt.subplots(figsize=(16, 3.4))
    ax.set_xlim(0, len(steps))
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    width = 0.86
    for i, step in enumerate(steps):
        part = table[table["step"] == step]
        box = FancyBboxPatch((i + (1 - width) / 2, 0.14), width, 0.72, boxstyle="round,pad=0.01,rounding_size=0.03",
                             facecolor="#EEF3F8", edgecolor="#3B4A5C", linewidth=1.0)
        ax.add_patch(box)
        ax.text(i + 0.5, 0.82, textwrap.fill(step, 20), ha="center", va="top", fontsize=9, fontweight="bold")
        lines = []
        for row in part.itertuples(index=False):
            lines.append(f"{row.platform}\npaper {_fmt(row.paper)} | run {_fmt(row.this_run)}")
        ax.text(i + 0.5, 0.64, "\n".join(lines), ha="center", va="top", fontsize=7.5, linespacing=1.3)
        if i:
            ax.add_patch(FancyArrowPatch((i - (1 - width) / 2 + 0.005, 0.5), (i + (1 - width) / 2 - 0.005, 0.5),
                                         arrowstyle="-|>", mutation_scale=10, color="#3B4A5C"))
    ax.set_title(f"The study funnel (Fig. 1): the paper's counts ({PAPER}) beside this run's; n/a = not in this run",
                 fontsize=11)
    fig.tight_layout()
    return fig


def write_funnel(
    table: pd.DataFrame,
    fig: Figure,
    *,
    tables_dir: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str],
) -> list[Path]:
    """``fig1_funnel.csv`` and ``fig1_funnel.png/.svg``; returns the paths."""
    from secmine.io import save_figure, write_csv

    written = [write_csv(table, Path(tables_dir) / f"{TABLE_STEM}.csv")]
    written += list(save_figure(fig, Path(figures_dir) / FIGURE_STEM).values())
    return sorted(written)


__all__ = ["ReportInputError", "funnel_figure", "funnel_table", "load_metrics", "write_funnel"]
