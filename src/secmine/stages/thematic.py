"""Stage ``thematic``: RQ2 (the issues) and RQ3 (the solutions) from a coded sample.

The coded sample (``source, id, issue, solution``: the replication package's ``theme/mapped.csv`` by
default, or your own coding from ``secmine coding-resolve``) is matched to the codebook and checked
against the posts' texts; the stage counts code mentions per platform as the paper does, with
coverage, co-occurrence of issues and solutions, the lack of solutions for Model and Data issues, and
the paper's published totals beside the computed ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from secmine.stages.contract import (
    StageParams,
    StagePaths,
    input_path,
    metrics_summary,
    output_files,
    output_path,
    stage_run,
)
from secmine.thematic import heatmap, paper_tables
from secmine.thematic.stage import ThematicResult

_FIG3 = heatmap.output_files("t", "f")

STAGE = "thematic"


@dataclass(frozen=True)
class Params(StageParams):
    stage = STAGE
    # Co-occurrence within a post: true = issue mentions x solution mentions (a code listed twice
    # counts twice, like frequencies); false = number of posts holding both codes.
    cooccurrence_multiplicity: bool = True


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    coded_sample: Path = input_path(made_by="secmine coding-resolve", help="CSV: source, id, issue, solution")
    codebook: Path = input_path(help="a codebook YAML or a folder of *_theme_summary.csv")
    texts: Path | None = input_path(optional=True, help="the posts' texts every coded id is checked against")
    replication_dir: Path = input_path(made_by="secmine external-link")
    tables_dir: Path = output_path()
    figures_dir: Path = output_path()
    metrics: Path = output_path()
    # the paper's Fig. 3 and taxonomy tables (the folders are shared with the rq1 and report stages)
    paper_tables_dir: Path = output_files(
        *(p.name for p in _FIG3 if p.parent.name == "t"), *(p.name for p in paper_tables.output_files("t"))
    )
    paper_figures_dir: Path = output_files(*(p.name for p in _FIG3 if p.parent.name == "f"))

    # The package folder is read only through the coded sample, codebook and texts, each checked
    # itself (any of them may be a file of your own, outside the package).
    def needed_inputs(self, params: StageParams | None = None) -> dict[str, Path]:
        return {k: v for k, v in self.inputs().items() if k != "replication_dir"}


Result = ThematicResult


@stage_run
def run(params: Params, paths: Paths) -> Result:
    from secmine.thematic.stage import run as run_thematic

    return run_thematic(
        paths.coded_sample,
        paths.codebook,
        paths.texts if paths.texts is not None else "none",
        out_dir=None,
        multiplicity=params.cooccurrence_multiplicity,
        root=paths.replication_dir,
        close_figures=True,
        tables_dir=paths.tables_dir,
        figures_dir=paths.figures_dir,
        metrics_path=paths.metrics,
        paper_tables_dir=paths.paper_tables_dir,
        paper_figures_dir=paths.paper_figures_dir,
    )


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    return metrics_summary(result.metrics)
