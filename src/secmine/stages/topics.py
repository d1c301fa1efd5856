"""Stage ``topics``: BERTopic over the security threads, set against the manual themes.

Embeddings of the offline all-MiniLM-L6-v2 are cached by text (a rerun embeds only new texts); UMAP
and HDBSCAN are seeded; the replication package's coded posts are modelled too (a parameter), so
topics can be compared with the themes the authors coded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from secmine.analysis.topics import TopicsParams, TopicsResult
from secmine.stages.contract import (
    StageParams,
    StagePaths,
    cache_path,
    input_path,
    metrics_summary,
    output_path,
    stage_run,
)

STAGE = "topics"


@dataclass(frozen=True)
class Params(StageParams, TopicsParams):
    stage = STAGE


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    classified: Path = input_path(made_by="classify")
    corpus: Path = input_path(made_by="collect")
    replication_dir: Path = input_path(made_by="secmine external-link", help="the coded posts and their themes")
    doc_topics: Path = output_path(help="the topic of every document (Parquet)")
    tables_dir: Path = output_path()
    figures_dir: Path = output_path()
    metrics: Path = output_path()
    embeddings_dir: Path = cache_path(help="embedding cache, keyed by text and model")


Result = TopicsResult


@stage_run
def run(params: Params, paths: Paths) -> Result:
    from secmine.analysis.topics import run_topics

    return run_topics(
        paths.classified,
        paths.corpus,
        embeddings_dir=paths.embeddings_dir,
        replication_root=paths.replication_dir,
        doc_topics_path=paths.doc_topics,
        tables_dir=paths.tables_dir,
        figures_dir=paths.figures_dir,
        metrics_path=paths.metrics,
        params=params,
    )


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    return metrics_summary(result.metrics)
