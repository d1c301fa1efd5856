"""The reproduction scorecard: every published number the run can check, computed beside published.

Each row of :data:`secmine.published.ALL_VALUES` is looked up in the run's outputs (the funnel
table, ``fig2_yearly.csv``, ``train.json``, ``rq2_paper_comparison.csv``,
``fig3_heatmap_published.csv``) and judged by one stated rule (:data:`TOLERANCE_RULE`):

* a count or a rank passes when it equals the published one;
* a percentage passes when it is within half a unit of the last published decimal (0.005 for the
  RQ2 coverages printed with two decimals, 0.05 for the Fig. 3 cells printed with one);
* a classifier score (MCC, F1) passes when it is within 0.05 of the published one (a CPU-sized
  model on this run's labelled set is not the paper's distilBERT on its 10-fold setup).

A value the run does not have is ``not computed`` (neither pass nor fail).  Counts that depend on
the coded sample cannot pass on a partial replication package; :func:`package_share` says how much
of it is present and the page prints that share beside the scorecard.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine.published import ALL_VALUES, BY_KEY, FUNNEL, RQ1_YEARLY, Published

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

TOLERANCE_RULE = (
    "counts and ranks: equal; percentages: within half a unit of the last published decimal (0.005 at two "
    "decimals, 0.05 at one); classifier scores (MCC, F1): within 0.05"
)
SCORE_TOLERANCE = 0.05
PASS, FAIL, MISSING = "pass", "fail", "not computed"
COLUMNS = ["key", "group", "quantity", "platform", "published", "computed", "difference", "tolerance", "status",
           "where", "note"]


def tolerance(item: Published) -> float:
    """The allowed |computed - published| for ``item`` (see :data:`TOLERANCE_RULE`)."""
    if item.unit in ("count", "rank"):
        return 0.0
    if item.unit == "score":
        return SCORE_TOLERANCE
    if item.group == "fig3":  # drawn with one decimal
        return 0.05
    text = f"{item.value:.10g}"
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10 ** (-max(decimals, 2))  # RQ2 prints percentages with two decimals


def judge(item: Published, computed: float | None) -> tuple[float | None, str]:
    """``(difference, status)`` for ``item`` given the computed value (None: not computed)."""
    if _missing(computed):
        return None, MISSING
    difference = float(computed) - float(item.value)
    allowed = tolerance(item)
    return round(difference, 6), PASS if abs(difference) <= allowed + 1e-9 else FAIL


def _missing(value: Any) -> bool:
    import pandas as pd

    try:
        return value is None or bool(pd.isna(value)) or str(value) == ""
    except (TypeError, ValueError):
        return False


def computed_values(
    *,
    funnel: pd.DataFrame | None = None,
    yearly: pd.DataFrame | None = None,
    train_metrics: Mapping[str, Any] | None = None,
    thematic_comparison: pd.DataFrame | None = None,
    fig3: pd.DataFrame | None = None,
) -> dict[str, float]:
    """The run's value for each published key it can compute, from the run's outputs."""
    out: dict[str, float] = {}
    if funnel is not None:
        index = {(i.step, i.platform): i.key for i in FUNNEL}
        for row in funnel.itertuples(index=False):
            key = index.get((row.step, row.platform))
            if key is not None and not _missing(row.this_run):
                try:
                    out[key] = float(row.this_run)
                except (TypeError, ValueError):
                    continue
    if yearly is not None:
        index = {(i.platform, int(i.step)): i.key for i in RQ1_YEARLY}
        for row in yearly.itertuples(index=False):
            key = index.get((row.platform, int(row.year)))
            value = row.this_run
            if key is not None and not _missing(value):
                out[key] = float(value)
    if train_metrics:
        test = train_metrics.get("test") or {}
        if test.get("mcc") is not None:
            out["classifier_test_mcc"] = float(test["mcc"])
        if test.get("f1") is not None:
            out["classifier_test_f1"] = float(test["f1"])
    if thematic_comparison is not None:
        by_quantity = {i.quantity: i.key for i in ALL_VALUES if i.group in ("sample", "taxonomy", "rq2", "rq3")}
        for row in thematic_comparison.itertuples(index=False):
            key = by_quantity.get(str(row.quantity))
            if key is not None and not _missing(row.computed):
                out[key] = float(row.computed)
    if fig3 is not None:
        frame = fig3.set_index(fig3.columns[0]) if fig3.index.name is None else fig3
        for row_label, row in frame.iterrows():
            for column, value in row.items():
                key = f"fig3::{row_label}::{column}"
                if key in BY_KEY and not _missing(value):
                    out[key] = round(float(value), 1)
    return out


def scorecard(values: Mapping[str, float], *, notes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per published value (:data:`secmine.published.ALL_VALUES` order): computed,
    difference, tolerance and status (``pass`` / ``fail`` / ``not computed``)."""
    import pandas as pd

    notes = notes or {}
    rows = []
    for item in ALL_VALUES:
        computed = values.get(item.key)
        difference, status = judge(item, computed)
        rows.append({
            "key": item.key, "group": item.group, "quantity": item.quantity, "platform": item.platform,
            "published": item.value, "computed": computed, "difference": difference, "tolerance": tolerance(item),
            "status": status, "where": item.where, "note": notes.get(item.key, notes.get(item.group, "")),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(card: pd.DataFrame) -> pd.DataFrame:
    """Per group: values, computed, passed, failed."""
    grouped = card.groupby("group", sort=False)["status"]
    out = grouped.agg(
        published="size",
        computed=lambda s: int((s != MISSING).sum()),
        passed=lambda s: int((s == PASS).sum()),
        failed=lambda s: int((s == FAIL).sum()),
    ).reset_index()
    return out


def package_share(manifest: Mapping[str, Any] | str | os.PathLike[str]) -> pd.DataFrame:
    """How much of the replication package the run had, from ``data/external/manifest.json``:
    coded posts (per source and in all) and security id lists, present / published / share."""
    import json

    import pandas as pd

    from secmine.published import value

    data = json.loads(Path(manifest).read_text(encoding="utf-8")) if isinstance(manifest, (str, os.PathLike)) else manifest
    counts = data.get("counts", {}) if isinstance(data, Mapping) else {}
    posts = counts.get("posts_by_source", {}) or {}
    ids = counts.get("security_only_ids", {}) or {}
    rows = [
        ("coded posts", "HF Discussion", posts.get("HF Discussion"), value("posts_hf")),
        ("coded posts", "GH Discussion", posts.get("GH Discussion"), value("posts_gh_discussion")),
        ("coded posts", "GH Issue", posts.get("GH Issue"), value("posts_gh_issue")),
        ("coded posts", "all", counts.get("coded_posts"), value("posts_total")),
        ("security id lists", "HF Discussion", ids.get("huggingface/discussion"), value("funnel_sec_hf")),
        ("security id lists", "GH Discussion", ids.get("github/discussion"), value("funnel_sec_gh_discussion")),
        ("security id lists", "GH Issue", ids.get("github/issue"), value("funnel_sec_gh_issue")),
    ]
    frame = pd.DataFrame(rows, columns=["part", "source", "present", "published"])
    frame["present"] = pd.to_numeric(frame["present"], errors="coerce").fillna(0).astype("int64")
    frame["published"] = frame["published"].astype("int64")
    frame["share_pct"] = (frame["present"] * 100.0 / frame["published"]).round(2)
    return frame


def scorecard_from_outputs(
    *,
    metrics_dir: str | os.PathLike[str],
    tables_dir: str | os.PathLike[str],
    funnel: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The scorecard from the files the pipeline writes under ``reports/``."""
    import pandas as pd

    from secmine.report.funnel import funnel_table, load_metrics

    metrics = load_metrics(metrics_dir)
    tables = Path(tables_dir)

    def read(name: str) -> pd.DataFrame | None:
        path = tables / name
        return pd.read_csv(path) if path.is_file() else None

    values = computed_values(
        funnel=funnel if funnel is not None else funnel_table(metrics, tables),
        yearly=read("paper/fig2_yearly.csv"),
        train_metrics=metrics.get("train"),
        thematic_comparison=read("rq2_paper_comparison.csv"),
        fig3=read("paper/fig3_heatmap_published.csv"),
    )
    notes = {
        "sample": "depends on the coded sample: passes only on a complete replication package",
        "rq2": "depends on the coded sample: passes only on a complete replication package",
        "rq3": "depends on the coded sample: passes only on a complete replication package",
        "fig3": "depends on the coded sample: passes only on a complete replication package",
        "rq1_yearly": "depends on the corpus: the paper's crawl, not a snapshot",
        "funnel": "depends on the corpus: the paper's crawl, not a snapshot",
        "classifier": "a CPU-sized model on this run's labelled set",
    }
    return scorecard(values, notes=notes)


__all__ = ["FAIL", "MISSING", "PASS", "TOLERANCE_RULE", "computed_values", "judge", "package_share", "scorecard",
           "scorecard_from_outputs", "summary", "tolerance"]
