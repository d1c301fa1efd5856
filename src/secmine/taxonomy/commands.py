"""``secmine train-tagger``, ``secmine tag``, ``secmine tag-stage`` and ``secmine coding-sheet-uncertain``.

Options left out take their values from ``params.yaml`` (blocks ``train_tagger`` and ``tag``), then
from the parameter dataclasses' defaults (:class:`secmine.taxonomy.compare.TrainTaggerParams`,
:class:`secmine.taxonomy.prevalence.TagParams`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from secmine import config


def _params(key: str) -> dict[str, Any]:
    try:
        return dict(config.load_params().get(key) or {})
    except FileNotFoundError:
        return {}


def _dataclass(cls: type[Any], block: dict[str, Any], overrides: dict[str, Any]) -> Any:
    from secmine.analysis.data import params_from

    values = {**block, **{k: v for k, v in overrides.items() if v is not None}}
    return params_from(cls, {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})


def train_tagger_command(
    data: Path = typer.Option(
        None,
        help="coded CSV in the replication format (source,id,issue,solution) "
        "[params: train_tagger.coded; default: the replication package's coded posts]",
    ),
    texts: str = typer.Option(
        None,
        help="texts: replication (theme/data.xlsx), a corpus folder/Parquet/JSON lines, "
        "or a CSV with post_id,text [params: train_tagger.texts]",
    ),
    codebook: Path = typer.Option(None, help="YAML codebook or folder with *_theme_summary.csv"),
    model_dir: Path = typer.Option(Path("models/taxonomy"), help="where the chosen tagger is saved"),
    families: str = typer.Option(
        None, help="tagger families, comma-separated: tfidf_logreg, embed_logreg, finetune, zero_shot"
    ),
    n_folds: int = typer.Option(None, help="outer folds"),
    inner_folds: int = typer.Option(None, help="inner folds (threshold choice inside each fold)"),
    seed: int = typer.Option(None, help="seed of folds, models and bootstrap"),
    backbone: str = typer.Option(
        None, help="fine-tuning backbone: minilm, a local folder or a HF checkpoint"
    ),
    epochs: float = typer.Option(None, help="fine-tuning epochs"),
    max_length: int = typer.Option(None, help="fine-tuning max tokens"),
    reports_dir: Path = typer.Option(
        Path("reports"), help="tables/, figures/ and metrics/ go under this folder"
    ),
    params_file: Path = typer.Option(
        None,
        "--params",
        help="override the train_tagger block with this YAML file's "
        "(e.g. params-gpu.yaml, the paper-sized setting)",
    ),
) -> None:
    """Compare the tagger families on grouped, iteratively stratified folds and save the best."""
    from secmine.taxonomy.compare import TrainTaggerParams, run_train_tagger

    block = _params("train_tagger")
    if params_file is not None:
        block.update(dict(config.load_params(params_file).get("train_tagger") or {}))
    params = _dataclass(
        TrainTaggerParams,
        block,
        {
            "coded": str(data) if data is not None else None,
            "texts": texts,
            "codebook": str(codebook) if codebook is not None else None,
            "families": families,
            "n_folds": n_folds,
            "inner_folds": inner_folds,
            "seed": seed,
            "backbone": backbone,
            "epochs": epochs,
            "max_length": max_length,
        },
    )
    result = run_train_tagger(
        params,
        model_dir=model_dir,
        tables_dir=reports_dir / "tables" / "train_tagger",
        figures_dir=reports_dir / "figures" / "train_tagger",
        metrics_path=reports_dir / "metrics" / "train_tagger.json",
        log=typer.echo,
    )
    shown = result.scores[result.scores["type"] == "all"][
        ["family", "level", "micro_f1", "macro_f1", "selected"]
    ]
    typer.echo(shown.to_string(index=False))
    for note in result.notes[-3:]:
        typer.echo(note)


def tag_command(
    model_dir: Path = typer.Option(Path("models/taxonomy"), help="a saved tagger (with tagger_card.json)"),
    input: Path = typer.Option(
        ..., "--input", help="JSON lines (snapshot schema), a corpus folder/Parquet, or a CSV with id,text"
    ),
    output: Path = typer.Option(
        ..., help="CSV (or .parquet): id, type, level, label, probability, predicted"
    ),
    text_column: str = typer.Option("text", help="text column of a CSV input"),
    id_column: str = typer.Option("id", help="id column of a CSV input (row number when absent)"),
    chunk_size: int = typer.Option(256, help="threads per batch of predictions"),
    num_threads: int = typer.Option(None, help="CPU threads"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Tag threads or texts with the saved taxonomy tagger: one row per input row and label."""
    from secmine.taxonomy.tagger import tag_file

    rows = tag_file(
        model_dir,
        input,
        output,
        text_column=text_column,
        id_column=id_column,
        chunk_size=chunk_size,
        num_threads=num_threads,
        progress=progress,
    )
    threads = rows["id"].nunique()
    themes = rows[(rows["level"] == "theme") & (rows["predicted"] == 1)]
    typer.echo(
        f"{output}: {threads} threads x {rows.groupby('id').size().iloc[0] if threads else 0} labels, "
        f"{themes['id'].nunique()} with at least one predicted theme"
    )


def tag_stage_command(
    model_dir: Path = typer.Option(Path("models/taxonomy"), help="the saved tagger"),
    classified: Path = typer.Option(Path("data/processed/classified.parquet"), help="classify stage output"),
    corpus: Path = typer.Option(Path("data/raw/corpus"), help="the corpus (collect stage)"),
    output: Path = typer.Option(Path("data/processed/tagged.parquet"), help="tagged security threads"),
    sample: Path = typer.Option(Path("data/processed/sample.csv"), help="the sample stage's sample.csv"),
    coded: str = typer.Option(None, help="a resolved coding of sample.csv [params: tag.coded_sample]"),
    reports_dir: Path = typer.Option(
        Path("reports"), help="tables/, figures/ and metrics/ go under this folder"
    ),
) -> None:
    """Tag every security thread; predicted prevalence; sample, plug-in and PPI estimates; coverage study."""
    from secmine.analysis.sampling import SampleParams
    from secmine.taxonomy.prevalence import TagParams, run_tag

    params = _dataclass(TagParams, _params("tag"), {"coded_sample": coded})
    sample_params = _dataclass(SampleParams, _params("sample"), {})
    result = run_tag(
        model_dir,
        classified,
        corpus,
        output=output,
        sample_path=sample,
        sample_params=sample_params,
        tables_dir=reports_dir / "tables" / "tag",
        figures_dir=reports_dir / "figures" / "tag",
        metrics_path=reports_dir / "metrics" / "tag.json",
        params=params,
    )
    for note in result.notes:
        typer.echo(note)


def coding_sheet_uncertain_command(
    sample: Path = typer.Option(Path("data/processed/sample.csv"), help="the sample stage's sample.csv"),
    tagged: Path = typer.Option(Path("data/processed/tagged.parquet"), help="the tag stage's tagged threads"),
    output: Path = typer.Option(
        Path("data/processed/sample_by_uncertainty.csv"), help="the reordered sample"
    ),
    sheet: Path = typer.Option(
        Path("data/processed/coding_sheet_by_uncertainty.xlsx"), help="its coding sheet"
    ),
    corpus: Path = typer.Option(Path("data/raw/corpus"), help="the corpus (texts for the sheet)"),
    model_dir: Path = typer.Option(Path("models/taxonomy"), help="the saved tagger (its codebook)"),
) -> None:
    """Order the next coding sheet by the tagger's uncertainty (marked: not a random sample, not for PPI)."""
    from secmine.taxonomy.ordering import order_sheet_by_uncertainty

    ordered = order_sheet_by_uncertainty(
        sample, tagged, output_sample=output, output_sheet=sheet, corpus_path=corpus, model_dir=model_dir
    )
    typer.echo(
        f"{output}, {sheet}: {len(ordered)} posts, most uncertain first; "
        "NOT a random sample (excluded from PPI)"
    )


def register(app: typer.Typer) -> None:
    app.command("train-tagger")(train_tagger_command)
    app.command("tag")(tag_command)
    app.command("tag-stage")(tag_stage_command)
    app.command("coding-sheet-uncertain")(coding_sheet_uncertain_command)
