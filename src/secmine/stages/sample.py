"""Stage ``sample``: Cochran sample sizes per stratum, the seeded sample, the XLSX coding sheet.

The sample is drawn from the threads the classifier marked security, per stratum (the paper: per
platform), with the finite population correction; the coding sheet offers the codebook's codes as
drop-downs, ready for the coding round-trip (``secmine coding-sheet``/``coding-agree``/``coding-resolve``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from secmine.analysis.sampling import SampleParams, SampleResult
from secmine.stages.contract import (
    StageParams,
    StagePaths,
    input_path,
    metrics_summary,
    output_path,
    stage_run,
)

STAGE = "sample"


@dataclass(frozen=True)
class Params(StageParams, SampleParams):
    stage = STAGE


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    classified: Path = input_path(made_by="classify")
    corpus: Path = input_path(made_by="collect", help="the sampled threads' texts for the coding sheet")
    codebook: Path = input_path(made_by="secmine external-link", help="a codebook YAML or a folder of *_theme_summary.csv")
    sample: Path = output_path(help="the drawn sample (CSV)")
    coding_sheet: Path = output_path(help="the coding sheet (XLSX)")
    tables_dir: Path = output_path()
    figures_dir: Path = output_path()
    metrics: Path = output_path()


Result = SampleResult


@stage_run
def run(params: Params, paths: Paths) -> Result:
    from secmine.analysis.sampling import run_sample

    return run_sample(
        paths.classified,
        paths.corpus,
        sample_path=paths.sample,
        sheet_path=paths.coding_sheet,
        codebook_path=paths.codebook,
        tables_dir=paths.tables_dir,
        figures_dir=paths.figures_dir,
        metrics_path=paths.metrics,
        params=params,
    )


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    return metrics_summary(result.metrics)
