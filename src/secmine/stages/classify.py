"""Stage ``classify``: the trained model applied to every thread.

A Parquet corpus is streamed: its texts are built one chunk at a time and each chunk is checkpointed
atomically with its scores, so memory does not grow with the corpus and a killed run resumes without
rebuilding the finished chunks' texts (:mod:`secmine.detect.stream`); a
transformer runs on the engine the train stage validated (ONNX Runtime int8 when its test MCC is within
``train.engine_tolerance`` of PyTorch's, else the exact fp32 graph).  The input may be any thread file
(a corpus, JSON lines in the snapshot schema, or a CSV with ``id`` and ``text`` columns); a ``.csv``
output holds ``id, probability, label``, a ``.parquet`` output the classified threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from secmine.stages.contract import StageParams, StagePaths, cache_path, input_path, output_path, stage_run
from secmine.stages.shared import Compute

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.detect.predict import CorpusRun

STAGE = "classify"


@dataclass(frozen=True)
class Params(StageParams):
    stage = STAGE
    chunk_size: int = 2000  # threads per checkpointed chunk
    num_threads: int = 2
    engine: Literal["auto", "torch", "onnx", "onnx-int8"] = "auto"
    exactness_sample: int = 1000  # with int8: threads also run exactly (fp32), agreement in the metrics
    # The committed tables need the same labels on every CPU: `engine: auto` runs the exact fp32 graph
    # (int8 only when forced with `engine: onnx-int8`); see docs/determinism.md.
    deterministic: bool = True
    text_column: str = "text"  # of a CSV input
    id_column: str = "id"  # of a CSV input
    # Where the model runs (secmine.device): cpu (the committed tables), cuda, or auto (cuda when
    # torch sees a GPU); batch sizes of the ONNX engines (params-gpu.yaml sizes them for a GPU).
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    max_batch_size: int = 64
    max_tokens: int = 512
    compute: Compute = Compute()  # the shared `compute` block: local, or a Ray Data pipeline (model actors)


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    model_dir: Path = input_path(made_by="train", help="a saved model (any family)")
    input: Path = input_path(made_by="collect", help="the threads: corpus, JSON lines or CSV")
    keywords: Path | None = input_path(optional=True, made_by="keywords", help="keyword matches of the input")
    output: Path = output_path(help="classified threads (.parquet) or id, probability, label (.csv)")
    tables_dir: Path = output_path()
    figures_dir: Path = output_path()
    metrics: Path = output_path()
    checkpoint_dir: Path = cache_path(help="finished chunks (a killed run resumes)")

    belongs_to: ClassVar[dict[str, str]] = {"keywords": "input"}


@dataclass(frozen=True)
class Result:
    run: CorpusRun  # the written output's summary, histogram and restart figures (not its rows)
    summary: pd.DataFrame


@stage_run
def run(params: Params, paths: Paths) -> Result:
    from secmine.detect.stage import run_classify_stage

    classified, summary = run_classify_stage(
        model_dir=paths.model_dir,
        corpus=paths.input,
        keywords_path=paths.keywords,
        output=paths.output,
        checkpoint_dir=paths.checkpoint_dir,
        tables_dir=paths.tables_dir,
        figures_dir=paths.figures_dir,
        metrics_path=paths.metrics,
        chunk_size=params.chunk_size,
        num_threads=params.num_threads,
        engine=params.engine,
        exactness_sample=params.exactness_sample,
        deterministic=params.deterministic,
        text_column=params.text_column,
        id_column=params.id_column,
        device=params.device,
        max_batch_size=params.max_batch_size,
        max_tokens=params.max_tokens,
        compute=params.compute,
    )
    return Result(run=classified, summary=summary)


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    run = result.run
    reused = f"; {run.chunks_reused} finished chunk(s) reused" if run.chunks_reused else ""
    return f"{run.threads:,} rows, {run.security:,} labelled security{reused}"
