"""Stage ``keywords``: the paper's keyword matching over titles, bodies and comments (pyahocorasick).

Writes one row per corpus thread (which keywords it matches, in which fields) with the settings in
the file's metadata, a summary table per platform and kind, a figure and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from secmine.stages.contract import StageParams, StagePaths, input_path, output_path, stage_run
from secmine.stages.shared import Compute

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

STAGE = "keywords"


@dataclass(frozen=True)
class Params(StageParams):
    stage = STAGE
    set: str = "paper"  # named keyword sets, comma-separated: paper, extended, none
    extra: str = ""  # more keywords, comma-separated
    word_boundary: bool = True  # whole words only
    fields: str = "title,body,comments"
    compute: Compute = Compute()  # the shared `compute` block: local, or a Ray Data pipeline


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    corpus: Path = input_path(made_by="collect", help="the thread corpus")
    matches: Path = output_path(help="per-thread keyword matches (Parquet)")
    tables_dir: Path = output_path()
    figures_dir: Path = output_path()
    metrics: Path = output_path()


@dataclass(frozen=True)
class Result:
    matches: pd.DataFrame
    summary: pd.DataFrame


@stage_run
def run(params: Params, paths: Paths) -> Result:
    from secmine.detect.keywords import run_keywords

    matches, summary = run_keywords(
        paths.corpus,
        paths.matches,
        keyword_set=params.set,
        extra=params.extra,
        word_boundary=params.word_boundary,
        fields=params.fields,
        tables_dir=paths.tables_dir,
        figures_dir=paths.figures_dir,
        metrics=paths.metrics,
        compute=params.compute,
    )
    return Result(matches=matches, summary=summary)


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    return result.summary.to_string(index=False)
