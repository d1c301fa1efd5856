"""Stage ``rq1``: how much security reporting there is in AI projects, where, and how it grows.

From the classified corpus: security threads per source with Wilson intervals, keyword matching
against the classifier, monthly and yearly counts with a fitted growth rate, concentration across
projects, CVE/CWE identifiers, Hugging Face model metadata (live crawls), and the paper's own
per-project distribution from the replication package's id lists.  Tables show ids and links, never
thread text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from secmine.analysis import trend
from secmine.analysis.rq1 import RQ1Params, RQ1Result
from secmine.stages.contract import (
    StageParams,
    StagePaths,
    input_path,
    metrics_summary,
    output_files,
    output_path,
    stage_run,
)

STAGE = "rq1"


@dataclass(frozen=True)
class Params(StageParams, RQ1Params):
    stage = STAGE


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    classified: Path = input_path(made_by="classify")
    corpus: Path = input_path(made_by="collect", help="texts (CVE/CWE ids) and Hugging Face model metadata")
    replication_dir: Path = input_path(made_by="secmine external-link", help="the paper's security id lists")
    tables_dir: Path = output_path()
    figures_dir: Path = output_path()
    metrics: Path = output_path()
    # the paper's Fig. 2 (the folders are shared with the thematic and report stages)
    paper_tables_dir: Path = output_files(*(p.name for p in trend.output_files("t", "f") if p.parent.name == "t"))
    paper_figures_dir: Path = output_files(*(p.name for p in trend.output_files("t", "f") if p.parent.name == "f"))


Result = RQ1Result


@stage_run
def run(params: Params, paths: Paths) -> Result:
    from secmine.analysis.rq1 import run_rq1

    return run_rq1(
        paths.classified,
        paths.corpus,
        models_path=paths.corpus / "_hf_models.parquet",
        replication_root=paths.replication_dir,
        tables_dir=paths.tables_dir,
        figures_dir=paths.figures_dir,
        metrics_path=paths.metrics,
        paper_tables_dir=paths.paper_tables_dir,
        paper_figures_dir=paths.paper_figures_dir,
        params=params,
    )


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    return metrics_summary(result.metrics)
