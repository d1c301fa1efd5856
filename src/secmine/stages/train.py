"""Stage ``train``: the labelled set, a fair comparison of classifier families, the best model saved.

The labelled set is assembled from ``sources`` (the replication package's coded posts, the snapshot's
security labels, the paper's labelled ids, a seeded sample of threads that match no keyword) — or read
from one labelled file (``data``: a CSV with text and label columns, or the stage's labelled Parquet).
Every family is scored on the same grouped folds and held-out test split; the best by
cross-validated MCC is saved to ``model_dir`` with its card and, for a transformer, its ONNX engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from secmine.stages.contract import StageParams, StagePaths, cache_path, input_path, output_path, stage_run

if TYPE_CHECKING:  # pragma: no cover
    from secmine.detect.labelled import LabelledSet
    from secmine.detect.train import Comparison

STAGE = "train"


@dataclass(frozen=True)
class Params(StageParams):
    stage = STAGE
    sources: str = "replication_coded,security_labels,replication_labels,weak_negatives"
    weak_negatives: int = 300
    text_column: str = "text"
    label_column: str = "label"
    id_column: str = "id"
    max_chars: int = 4000
    seed: int = 42
    test_size: float = 0.2
    n_folds: int = 3
    families: str = "keyword,tfidf_logreg,tfidf_svm,embed_logreg,transformer,llm_zero_shot,llm_few_shot"
    n_trials: int = 10
    transformer_trials: int = 1
    threshold: float = 0.5
    bootstrap: int = 1000
    num_threads: int = 2
    encoder: str = "minilm"
    backbone: str = "minilm"
    max_length: int = 256
    batch_size: int = 8
    epochs: float = 1.0
    max_epochs: int = 2
    learning_rate: float = 2.0e-4
    engine_tolerance: float = 0.01
    llm_base_url: str = ""
    llm_model: str = ""
    llm_shots: int = 4
    # the population the classifier meets, and how it decides (secmine.detect.train.TrainOptions)
    population: Literal["keyword", "all"] = "keyword"
    train_population: Literal["all", "keyword"] = "all"
    split: Literal["random", "time", "project"] = "random"
    hard_weight: float = 2.0
    weak_weight: float = 1.0
    metric: str = "mcc"
    tune_threshold: bool = True
    calibration: Literal["isotonic", "platt", "none"] = "isotonic"
    target_prior: str = ""
    prior_sample: int = 1000
    cv_repeats: int = 0
    few_positives: int = 30
    selection: Literal["strongest_within", "lcb", "mean"] = "strongest_within"
    confidence: float = 0.95
    precision_target: float = 0.9
    label_noise: bool = True
    source_probe: bool = True
    class_weight: Literal["balanced", "none"] = "balanced"
    date_column: str = "created_at"  # of a labelled file (split: time)
    repo_column: str = "repo"  # of a labelled file (split: project)


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    corpus: Path = input_path(made_by="collect")
    keywords: Path = input_path(made_by="keywords", help="keyword matches (and the keywords the keyword family uses)")
    replication_dir: Path = input_path(made_by="secmine external-link")
    security_labels: Path = input_path(made_by="secmine external-link")
    user_csv: Path | None = input_path(optional=True, help='a labelled CSV for the source "user"')
    data: Path | None = input_path(optional=True, help="one labelled file instead of assembling the sources")
    unlabelled: Path | None = input_path(
        optional=True, help="texts of the target population (for target_prior: estimate with a labelled file)"
    )
    model_dir: Path = output_path(help="the best model, its card and engines")
    labelled: Path = output_path(help="the labelled set with splits (Parquet)")
    predictions: Path = output_path(help="fold and test predictions of every family (Parquet)")
    label_review: Path = output_path(help="labelled rows most likely mislabelled, for review (CSV, not committed)")
    tables_dir: Path = output_path()
    figures_dir: Path = output_path()
    metrics: Path = output_path()
    checkpoint_dir: Path = cache_path(help="finished fold fits of the search (a killed run resumes)")

    # With one labelled file, the corpus and the assembled sources are not read.
    def needed_inputs(self, params: StageParams | None = None) -> dict[str, Path]:
        if self.data is not None:
            return {k: v for k, v in self.inputs().items() if k in ("data", "unlabelled")}
        return self.inputs()


@dataclass(frozen=True)
class Result:
    labelled: LabelledSet
    comparison: Comparison


@stage_run
def run(params: Params, paths: Paths) -> Result:
    from secmine.detect.stage import run_train_stage

    keywords = None
    if paths.data is None or paths.keywords.exists():
        from secmine.detect.keywords import read_settings

        keywords = read_settings(paths.keywords)
    labelled, comparison = run_train_stage(
        corpus=paths.corpus,
        keywords_path=paths.keywords,
        model_dir=paths.model_dir,
        labelled_out=paths.labelled,
        predictions_out=paths.predictions,
        tables_dir=paths.tables_dir,
        figures_dir=paths.figures_dir,
        metrics_path=paths.metrics,
        train_params=params.as_dict(),
        keywords=keywords["keywords"] if keywords else None,
        word_boundary=keywords["word_boundary"] if keywords else True,
        replication_root=paths.replication_dir,
        security_labels=paths.security_labels,
        user_csv=paths.user_csv,
        data=paths.data,
        unlabelled=paths.unlabelled,
        review_out=paths.label_review,
        checkpoint_dir=paths.checkpoint_dir,
    )
    return Result(labelled=labelled, comparison=comparison)


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    return result.comparison.display_table().to_string(index=False)
