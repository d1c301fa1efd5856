"""Stage ``tag``: the taxonomy over every security thread, with intervals that stay valid.

The tagger of ``train-tagger`` tags every thread the classifier marked security; tables and figures
of predicted prevalence per platform, over time and per repository; for every theme and sub-theme, per
platform, the share three ways: the coded random sample alone (Wilson), the tagger's plug-in share, and
prediction-powered inference (PPI, ppi-python) combining a coded random sample of this run's threads
with the predictions on all of them — reported only where the coding is a random sample of the threads
estimated (the stage checks, and says why); and a coverage study of the intervals on the coded posts.

``secmine tag --model-dir DIR --input FILE --output FILE`` tags any thread file (as ``secmine classify``
takes; a CSV with ``id,text`` works): one row per thread and label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from secmine.stages.contract import (
    StageParams,
    StagePaths,
    input_path,
    metrics_summary,
    output_path,
    stage_run,
)
from secmine.taxonomy.prevalence import TagParams, TagResult

STAGE = "tag"


@dataclass(frozen=True)
class Params(StageParams, TagParams):
    stage = STAGE


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    model_dir: Path = input_path(made_by="train-tagger", help="the saved tagger")
    input: Path = input_path(made_by="collect", help="the threads: corpus, JSON lines or CSV with id,text")
    classified: Path | None = input_path(optional=True, made_by="classify", help="which threads are security")
    sample: Path | None = input_path(optional=True, made_by="sample", help="the sample stage's draw")
    sample_metrics: Path | None = input_path(optional=True, made_by="sample", help="its design")
    coded_sample: Path | None = input_path(optional=True, help="a resolved coding of that sample ('' = not yet)")
    replication_dir: Path = input_path(made_by="secmine external-link")
    output: Path = output_path(help="tagged threads (.parquet) or one row per thread and label (.csv)")
    tables_dir: Path = output_path()
    figures_dir: Path = output_path()
    metrics: Path = output_path()

    # `secmine tag --input FILE` tags that file alone: the corpus's classification, sample and coding
    # belong to the corpus.
    belongs_to: ClassVar[dict[str, str]] = {
        "classified": "input", "sample": "input", "sample_metrics": "input", "coded_sample": "input"
    }


Result = TagResult


@stage_run
def run(params: Params, paths: Paths) -> Result:
    if paths.classified is None:
        return _tag_input(params, paths)
    from secmine.analysis.sampling import SampleParams, sample_design
    from secmine.taxonomy.prevalence import run_tag

    return run_tag(
        paths.model_dir,
        paths.classified,
        paths.input,
        output=paths.output,
        sample_path=paths.sample,
        sample_params=sample_design(paths.sample_metrics) if paths.sample_metrics is not None else SampleParams(),
        coded_sample=paths.coded_sample,
        replication_root=paths.replication_dir,
        tables_dir=paths.tables_dir,
        figures_dir=paths.figures_dir,
        metrics_path=paths.metrics,
        params=params,
    )


def _tag_input(params: Params, paths: Paths) -> Result:
    """Tag every row of the input (no classification, so no prevalence over security threads)."""
    import matplotlib.pyplot as plt

    from secmine import io
    from secmine.taxonomy.prevalence import input_prevalence
    from secmine.taxonomy.tagger import tag_file

    rows = tag_file(paths.model_dir, paths.input, paths.output, text_column=params.text_column,
                    id_column=params.id_column, chunk_size=params.chunk_size, num_threads=params.num_threads)
    table, fig, metrics = input_prevalence(rows)
    io.write_table(table, paths.tables_dir / "input_prevalence", float_format="{:.4f}")
    io.save_figure(fig, paths.figures_dir / "input_prevalence")
    plt.close(fig)
    io.write_json(paths.metrics, metrics)
    return TagResult(tagged=rows, tables={"input_prevalence": table}, metrics=metrics)


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    return metrics_summary(result.metrics)
