"""The sample drawn for thematic analysis: stratified by source, sized by Cochran's formula.

The paper coded 753 posts: a sample per platform at 95% confidence and a 5% margin of error
(368 of 8,421 HF security discussions).  Here each stratum (by default the paper's three sources:
HF discussions, GH issues, GH discussions) gets :func:`secmine.analysis.stats.cochran_sample_size`
of its security threads, drawn without replacement by a seeded generator that depends only on the
seed, the stratum's name and the sorted ids, so the same inputs give the same sample.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from secmine.analysis import stats
from secmine.analysis.data import AnalysisInputError, load_classified, source_order
from secmine.schema import SOURCE_KEYS, thread_url

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

SAMPLE_COLUMNS = [
    "source",
    "draw",
    "post_id",
    "id",
    "platform",
    "kind",
    "repo",
    "number",
    "url",
    "created_at",
    "probability",
]


@dataclass(frozen=True)
class SampleParams:
    """The ``sample`` parameters (``params.yaml``)."""

    confidence: float = 0.95
    margin: float = 0.05
    proportion: float = 0.5
    seed: int = 20260101
    # comma-separated strata; "+" merges sources into one stratum (the paper: per platform)
    strata: str = "HF Discussion,GH Issue+GH Discussion"
    code_slots: int = 6  # code columns per type in the coding sheet


def parse_strata(strata: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"HF Discussion, GH Issue+GH Discussion"`` -> the strata, each checked against the known
    source names.  ``+`` merges sources into one stratum: the paper sampled per *platform* (368 HF
    discussions; 385 GitHub posts, issues and discussions together)."""
    names = (
        [s.strip() for s in strata.split(",")]
        if isinstance(strata, str)
        else [str(s).strip() for s in strata]
    )
    names = ["+".join(part.strip() for part in n.split("+")) for n in names if n]
    unknown = [part for n in names for part in stratum_sources(n) if part not in SOURCE_KEYS]
    if unknown:
        raise ValueError(f"unknown stratum {unknown[0]!r}; use source names such as {', '.join(SOURCE_KEYS)}")
    if not names:
        raise ValueError("no strata given")
    return list(dict.fromkeys(names))


def stratum_sources(stratum: str) -> list[str]:
    """The sources a stratum holds (``"GH Issue+GH Discussion"`` -> both)."""
    return [part.strip() for part in stratum.split("+") if part.strip()]


def sample_plan(
    security: pd.DataFrame,
    strata: list[str],
    *,
    confidence: float = 0.95,
    margin: float = 0.05,
    proportion: float = 0.5,
) -> pd.DataFrame:
    """Per stratum: the population of security threads and the Cochran sample size (with the
    finite population correction, rounded up), plus a ``total`` row."""
    import pandas as pd

    counts = security["source"].value_counts()
    rows = []
    for name in strata:
        population = int(sum(counts.get(part, 0) for part in stratum_sources(name)))
        rows.append(
            {
                "source": name,
                "population": population,
                "sample_size": stats.cochran_sample_size(population, confidence, margin, proportion),
                "infinite_population_size": stats.cochran_sample_size(None, confidence, margin, proportion),
                "sampling_fraction": round(
                    stats.cochran_sample_size(population, confidence, margin, proportion) / population, 6
                )
                if population
                else float("nan"),
            }
        )
    plan = pd.DataFrame(rows)
    total = {
        "source": "total",
        "population": int(plan["population"].sum()),
        "sample_size": int(plan["sample_size"].sum()),
        "infinite_population_size": float("nan"),
        "sampling_fraction": round(plan["sample_size"].sum() / plan["population"].sum(), 6)
        if plan["population"].sum()
        else float("nan"),
    }
    plan = pd.concat([plan, pd.DataFrame([total])], ignore_index=True)
    plan["confidence"] = confidence
    plan["margin"] = margin
    return plan


def stratum_rng(seed: int, stratum: str) -> np.random.Generator:
    """The generator of one stratum: depends on the seed and the stratum's name only."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(stratum.encode("utf-8"))]))


def draw_sample(security: pd.DataFrame, plan: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Draw each stratum's sample without replacement; ``draw`` is the order of drawing (coders
    work through posts in that random order)."""
    import pandas as pd

    parts = []
    for row in plan[plan["source"] != "total"].itertuples(index=False):
        pool = (
            security[security["source"].isin(stratum_sources(row.source))]
            .sort_values("id", kind="stable")
            .reset_index(drop=True)
        )
        n = int(row.sample_size)
        if n == 0 or pool.empty:
            continue
        chosen = stratum_rng(seed, row.source).choice(len(pool), size=n, replace=False)
        part = pool.iloc[chosen].copy()
        part["draw"] = np.arange(1, n + 1)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    sample = pd.concat(parts, ignore_index=True)
    sample["post_id"] = sample["repo"].astype(str) + "-" + sample["number"].astype(str)
    sample["url"] = [
        thread_url(p, k, r, n)
        for p, k, r, n in zip(sample["platform"], sample["kind"], sample["repo"], sample["number"])
    ]
    duplicated = sample["post_id"].duplicated()
    if duplicated.any():
        # post ids ({repo}-{number}) identify a post within its source; the same id in two
        # strata is fine, twice in one stratum means the corpus holds a duplicate thread
        dup = sample.loc[duplicated & sample.duplicated(["source", "post_id"]), "post_id"]
        if not dup.empty:
            raise AnalysisInputError(f"post id {dup.iloc[0]!r} drawn twice in one stratum")
    order = {name: i for i, name in enumerate(source_order(sample["source"]))}
    sample = sample.assign(_o=sample["source"].map(order)).sort_values(["_o", "draw"]).drop(columns="_o")
    sample["probability"] = sample["probability"].round(6)
    return sample[SAMPLE_COLUMNS].reset_index(drop=True)


@dataclass
class SampleResult:
    plan: pd.DataFrame
    sample: pd.DataFrame
    figures: dict[str, Figure] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def plot_plan(plan: pd.DataFrame) -> Figure:
    """Population and sample size per stratum: grouped bars on a linear axis, each labelled."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    body = plan[plan["source"] != "total"]
    fig = Figure(figsize=(6.0, 3.5))
    ax = fig.subplots()
    x = np.arange(len(body))
    for offset, column, label, colour in ((-0.2, "population", "security threads", "#4C72B0"),
                                          (0.2, "sample_size", "sample", "#DD8452")):
        values = body[column].to_numpy(int)
        bars = ax.bar(x + offset, values, 0.4, label=label, color=colour)
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=2, fontsize=8)
    ax.set_xticks(x, body["source"])
    top = int(body["population"].max()) if len(body) else 1
    ax.set_ylim(0, max(1, top) * 1.2)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("threads")
    conf = float(plan["confidence"].iloc[0])
    margin = float(plan["margin"].iloc[0])
    ax.set_title(f"Sample per stratum ({conf:.0%} confidence, {margin:.0%} margin)")
    ax.legend(frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


def sample_design(metrics_path: str | os.PathLike[str]) -> SampleParams:
    """The design of a drawn sample, from the sample stage's metrics (``design``)."""
    import json

    from secmine.errors import MissingInputError, SecmineError

    path = Path(metrics_path)
    if not path.is_file():
        raise MissingInputError(path, made_by="sample")
    design = json.loads(path.read_text(encoding="utf-8")).get("design")
    if not isinstance(design, dict):
        raise SecmineError(f"{path}: no sample design (written by an older sample stage)", hint="rerun the sample stage")
    names = {f.name for f in dataclasses.fields(SampleParams)}
    return SampleParams(**{k: v for k, v in design.items() if k in names})


def run_sample(
    classified_path: str | os.PathLike[str],
    corpus_path: str | os.PathLike[str] | None,
    *,
    sample_path: str | os.PathLike[str] = "data/processed/sample.csv",
    sheet_path: str | os.PathLike[str] | None = "data/processed/coding_sheet.xlsx",
    codebook_path: str | os.PathLike[str] | None = None,
    tables_dir: str | os.PathLike[str] = "reports/tables/sample",
    figures_dir: str | os.PathLike[str] = "reports/figures/sample",
    metrics_path: str | os.PathLike[str] | None = "reports/metrics/sample.json",
    params: SampleParams | None = None,
    classified: pd.DataFrame | None = None,
    corpus: pd.DataFrame | None = None,
    write: bool = True,
) -> SampleResult:
    """The ``sample`` stage: plan, draw, write ``sample.csv``, the coding sheet, the sample-size
    table, figure and metrics.

    ``codebook_path``: a codebook YAML file or a replication package folder (default: the
    pipeline's ``data/external/ai_sec_dev``).
    """
    from secmine.analysis.coding import load_codebook, write_coding_sheet
    from secmine.analysis.data import check_classified, thread_texts
    from secmine.io import save_figure, write_csv, write_json, write_table

    params = params or SampleParams()
    frame = (
        check_classified(classified, where="classified frame")
        if classified is not None
        else load_classified(classified_path, labels=(1,))  # only the security threads are sampled
    )
    strata = parse_strata(params.strata)
    security = frame[frame["label"] == 1]
    plan = sample_plan(
        security, strata, confidence=params.confidence, margin=params.margin, proportion=params.proportion
    )
    sample = draw_sample(security, plan, params.seed)
    result = SampleResult(plan=plan, sample=sample)
    empty = plan[(plan["source"] != "total") & (plan["population"] == 0)]["source"].tolist()
    if empty:
        result.notes.append(
            "No security threads in stratum/strata: " + ", ".join(empty) + " (nothing drawn there)."
        )
    other = sorted(set(security["source"]) - {part for name in strata for part in stratum_sources(name)})
    if other:
        result.notes.append(
            "Security threads of sources outside the strata are not sampled: " + ", ".join(other) + "."
        )
    result.figures["sample_sizes"] = plot_plan(plan)
    result.metrics = {
        "seed": params.seed,
        "confidence": params.confidence,
        "margin": params.margin,
        "strata": {
            row.source: {"population": int(row.population), "sample_size": int(row.sample_size)}
            for row in plan.itertuples(index=False)
            if row.source != "total"
        },
        "sample_size": int(len(sample)),
        "notes": result.notes,
        # the design the draw can be repeated from (the tag stage checks a coding against it)
        "design": {f.name: getattr(params, f.name) for f in dataclasses.fields(SampleParams)},
    }
    if write:
        write_csv(sample, sample_path)
        write_table(plan, Path(tables_dir) / "sample_sizes")
        save_figure(result.figures["sample_sizes"], Path(figures_dir) / "sample_sizes")
        if sheet_path is not None:
            texts = (
                thread_texts(corpus if corpus is not None else corpus_path, sample["id"])
                if (corpus is not None or corpus_path is not None)
                else None
            )
            if texts is None:
                raise AnalysisInputError("the coding sheet needs the corpus texts: give a corpus path")
            with_text = sample.merge(texts, on="id", how="left")
            missing = int(with_text["text"].isna().sum())
            if missing:
                result.notes.append(
                    f"{missing} sampled threads have no text in the corpus (empty text in the sheet)."
                )
            codebook = load_codebook(codebook_path)
            write_coding_sheet(with_text, codebook, sheet_path, code_slots=params.code_slots)
            result.metrics["codebook_version"] = codebook.version
        if metrics_path is not None:
            write_json(metrics_path, result.metrics)
    return result
