"""Stage ``train-tagger``: a taxonomy tagger learnt from the hand-coded posts.

Multi-label over both taxonomies (issues, solutions) at all three levels (theme, sub-theme, code),
predictions consistent with the codebook's hierarchy; TF-IDF and frozen-MiniLM logistic regression, a
fine-tuned MiniLM and a zero-shot baseline compared on the same grouped, iteratively stratified folds,
per-label thresholds chosen inside the folds; the chosen tagger saved without pickles.  The coded posts
are the replication package's by default (dvc.yaml's ``paths.coded_sample``), or any coding in its format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from secmine.stages.contract import StageParams, StagePaths, cache_path, input_path, output_path, stage_run
from secmine.taxonomy.compare import TrainResult, TrainTaggerParams

STAGE = "train-tagger"


@dataclass(frozen=True)
class Params(StageParams, TrainTaggerParams):
    stage = "train_tagger"


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    coded_sample: Path = input_path(help="coded posts: CSV source, id, issue, solution")
    texts: Path = input_path(help="their texts: theme/data.xlsx, a corpus, or a CSV with post_id,text")
    codebook: Path = input_path(help="a codebook YAML or a folder of *_theme_summary.csv")
    descriptions: Path | None = input_path(optional=True, help="code descriptions for the zero-shot baseline (YAML)")
    replication_dir: Path = input_path(made_by="secmine external-link")
    model_dir: Path = output_path(help="the chosen tagger, its card and out-of-fold predictions")
    tables_dir: Path = output_path()
    figures_dir: Path = output_path()
    metrics: Path = output_path()
    embedding_cache: Path = cache_path(help="MiniLM embeddings of the coded posts, keyed by text")


Result = TrainResult


@stage_run
def run(params: Params, paths: Paths) -> Result:
    from secmine.taxonomy.compare import run_train_tagger

    return run_train_tagger(
        params,
        coded=paths.coded_sample,
        texts=paths.texts,
        codebook=paths.codebook,
        embedding_cache=paths.embedding_cache,
        descriptions=paths.descriptions,
        model_dir=paths.model_dir,
        tables_dir=paths.tables_dir,
        figures_dir=paths.figures_dir,
        metrics_path=paths.metrics,
        replication_root=paths.replication_dir,
    )


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    return result.scores.to_string(index=False) + f"\nchosen: {result.chosen}"
