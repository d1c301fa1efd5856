"""``secmine keywords``, ``train``, ``evaluate``, ``export`` and ``classify``.

Options left out take their values from ``params.yaml`` (blocks ``keywords``, ``train``, ``classify``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from secmine import config


def _params(key: str) -> dict[str, Any]:
    try:
        return dict(config.load_params().get(key) or {})
    except FileNotFoundError:
        return {}


def _pick(value: Any, params: dict[str, Any], key: str, default: Any) -> Any:
    return value if value is not None else params.get(key, default)


def keywords_command(
    corpus: Path = typer.Option(None, help="corpus folder/Parquet or JSON-lines snapshot [params: keywords.corpus]"),
    output: Path = typer.Option(None, help="per-thread matches (Parquet) [params: keywords.output]"),
    keyword_set: str = typer.Option(None, "--set", help="named keyword set(s): paper, extended, none"),
    extra: str = typer.Option(None, help="extra keywords, comma-separated"),
    word_boundary: bool = typer.Option(None, "--word-boundary/--substring", help="match whole words only"),
    fields: str = typer.Option(None, help="fields to search, comma-separated: title,body,comments"),
    tables_dir: Path = typer.Option(Path("reports/tables/keywords"), help="table folder"),
    figures_dir: Path = typer.Option(Path("reports/figures/keywords"), help="figure folder"),
    metrics: Path = typer.Option(Path("reports/metrics/keywords.json"), help="metrics JSON"),
) -> None:
    """Match keywords over title, body and comments (pyahocorasick) and report matches per platform and kind."""
    from secmine.detect.keywords import run_keywords

    p = _params("keywords")
    _, summary = run_keywords(
        _pick(corpus, p, "corpus", "data/raw/corpus"),
        _pick(output, p, "output", "data/interim/keywords.parquet"),
        keyword_set=_pick(keyword_set, p, "set", "paper"),
        extra=_pick(extra, p, "extra", "") or "",
        word_boundary=bool(_pick(word_boundary, p, "word_boundary", True)),
        fields=_pick(fields, p, "fields", "title,body,comments"),
        tables_dir=tables_dir,
        figures_dir=figures_dir,
        metrics=metrics,
    )
    typer.echo(summary.to_string(index=False))


def train_command(
    data: Path = typer.Option(None, help="labelled CSV (text and label columns) or the stage's labelled Parquet; "
                              "default: assemble the labelled set from params.yaml sources"),
    model_dir: Path = typer.Option(Path("models/security"), help="where the best model is saved"),
    families: str = typer.Option(None, help="model families, comma-separated [params: train.families]"),
    text_column: str = typer.Option(None, help="text column of --data"),
    label_column: str = typer.Option(None, help="label column of --data (0/1)"),
    id_column: str = typer.Option(None, help="id column of --data (optional; groups rows of one thread)"),
    n_folds: int = typer.Option(None, help="cross-validation folds"),
    test_size: float = typer.Option(None, help="held-out test share"),
    n_trials: int = typer.Option(None, help="Optuna trials per family"),
    transformer_trials: int = typer.Option(None, help="Optuna trials for the transformer"),
    backbone: str = typer.Option(None, help="transformer backbone: minilm, a local folder or a HF checkpoint name"),
    epochs: float = typer.Option(None, help="transformer epochs"),
    max_length: int = typer.Option(None, help="transformer max tokens"),
    seed: int = typer.Option(None, help="random seed"),
    reports_dir: Path = typer.Option(None, help="write comparison tables/figure/metrics here (optional)"),
    params_file: Path = typer.Option(None, "--params", help="take the train block from this YAML file "
                                     "instead of params.yaml (e.g. params-gpu.yaml, the paper's settings)"),
) -> None:
    """Compare the model families on grouped folds and a held-out test split; save the best model."""
    from secmine.detect.keywords import parse_keywords
    from secmine.detect.labelled import read_labelled_file
    from secmine.detect.train import settings_from_params, train_labelled

    p = _params("train")
    if params_file is not None:
        p.update(dict(config.load_params(params_file).get("train") or {}))
    overrides = {"n_folds": n_folds, "test_size": test_size, "n_trials": n_trials,
                 "transformer_trials": transformer_trials, "backbone": backbone, "epochs": epochs,
                 "max_length": max_length, "seed": seed, "families": families, "text_column": text_column,
                 "label_column": label_column, "id_column": id_column}
    p.update({k: v for k, v in overrides.items() if v is not None})
    kp = _params("keywords")
    tables = figures = metrics = None
    if reports_dir is not None:
        tables, figures, metrics = reports_dir / "tables", reports_dir / "figures", reports_dir / "train.json"
    if data is None:
        from secmine.detect.stage import run_train_stage

        run_train_stage(
            corpus=p.get("corpus", "data/raw/corpus"),
            keywords_path=p.get("keywords", "data/interim/keywords.parquet"),
            model_dir=model_dir,
            labelled_out=p.get("labelled", "data/interim/labelled.parquet"),
            predictions_out=p.get("predictions", "data/interim/train_predictions.parquet"),
            tables_dir=tables, figures_dir=figures, metrics_path=metrics,
            train_params=p,
            keyword_set=kp.get("set", "paper"), extra_keywords=kp.get("extra", "") or "",
            word_boundary=bool(kp.get("word_boundary", True)),
        )
        return
    max_chars = int(p.get("max_chars", 4000))
    labelled = read_labelled_file(data, text_column=p.get("text_column", "text"),
                                  label_column=p.get("label_column", "label"), id_column=p.get("id_column", "id"),
                                  max_chars=max_chars)
    settings = settings_from_params(p, keywords=parse_keywords(kp.get("set", "paper"), kp.get("extra", "") or ""),
                                    word_boundary=bool(kp.get("word_boundary", True)))
    comparison = train_labelled(
        labelled, model_dir=model_dir, settings=settings,
        families=p.get("families", "keyword,tfidf_logreg,tfidf_svm,embed_logreg,transformer"),
        test_size=float(p.get("test_size", 0.2)), n_folds=int(p.get("n_folds", 5)),
        n_trials=int(p.get("n_trials", 10)), transformer_trials=int(p.get("transformer_trials", 1)),
        n_boot=int(p.get("bootstrap", 1000)), max_chars=max_chars,
        tables_dir=tables, figures_dir=figures, metrics_path=metrics,
    )
    typer.echo(comparison.display_table().to_string(index=False))


def evaluate_command(
    model_dir: Path = typer.Option(..., help="a saved model folder (with model_card.json)"),
    data: Path = typer.Option(..., help="labelled CSV (text, label) or the train stage's labelled Parquet"),
    text_column: str = typer.Option("text", help="text column"),
    label_column: str = typer.Option("label", help="label column (0/1)"),
    split: str = typer.Option("all", help="rows of a labelled Parquet with a split column: all, train or test"),
    bootstrap: int = typer.Option(1000, help="bootstrap resamples for the 95% intervals"),
    seed: int = typer.Option(42, help="bootstrap seed"),
    output: Path = typer.Option(None, help="write the metrics as JSON here"),
) -> None:
    """Score a saved model on labelled data: MCC, F1, precision, recall, accuracy with 95% intervals."""
    import numpy as np

    from secmine import io
    from secmine.detect.labelled import read_labelled_file
    from secmine.detect.metrics import METRICS, metrics_with_ci
    from secmine.detect.savedmodel import card_max_chars, load_model

    model, card = load_model(model_dir)
    labelled = read_labelled_file(data, text_column=text_column, label_column=label_column,
                                  max_chars=card_max_chars(card)).frame
    if split != "all":
        if "split" not in labelled.columns:
            raise typer.BadParameter(f"{data} has no split column; use --split all")
        labelled = labelled[labelled["split"] == split]
    if labelled.empty:
        raise typer.BadParameter(f"{data}: no labelled rows to evaluate")
    proba = model.predict_proba(labelled["text"].tolist())
    predicted = (proba >= float(card.get("threshold", 0.5))).astype(np.int64)
    metrics = metrics_with_ci(labelled["label"].to_numpy(), predicted, n_boot=bootstrap, seed=seed)
    metrics["family"] = card["family"]
    for name in METRICS:
        typer.echo(f"{name:>9}: {metrics[name]:.3f}  [{metrics[name + '_lo']:.3f}, {metrics[name + '_hi']:.3f}]")
    typer.echo(f"{'n':>9}: {metrics['n']} ({metrics['positives']} positive)")
    if output is not None:
        io.write_json(output, metrics)


def classify_command(
    model_dir: Path = typer.Option(Path("models/security"), help="a saved model folder (with model_card.json)"),
    input: Path = typer.Option(..., "--input", help="JSON lines (snapshot schema), a corpus folder/Parquet, or a CSV"),
    output: Path = typer.Option(..., help=".csv: id, probability, label; .parquet (threads): the classified columns"),
    text_column: str = typer.Option("text", help="text column of a CSV input"),
    id_column: str = typer.Option("id", help="id column of a CSV input (row number when absent)"),
    keywords: Path = typer.Option(None, help="keyword matches of the input (keywords stage) for Parquet output"),
    checkpoint_dir: Path = typer.Option(None, help="resume from / checkpoint finished chunks here"),
    chunk_size: int = typer.Option(2000, help="rows per checkpointed chunk"),
    threshold: float = typer.Option(None, help="label threshold (default: the model card's)"),
    num_threads: int = typer.Option(
        None, help="CPU threads (PyTorch threads; ONNX Runtime: batches run at once, one thread each)"),
    engine: str = typer.Option("auto", help="transformer engine: auto (what training validated), torch, onnx "
                               "(fp32, same logits) or onnx-int8 (quantised)"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Classify threads or texts with a saved model (any family); one output row per input row."""
    from secmine.detect.predict import classify_file

    result = classify_file(
        model_dir, input, output, text_column=text_column, id_column=id_column, keywords_path=keywords,
        checkpoint_dir=checkpoint_dir, chunk_size=chunk_size, threshold=threshold, num_threads=num_threads,
        engine=engine, progress=progress,
    )
    typer.echo(f"{output}: {len(result)} rows, {int(result['label'].sum())} labelled security")


def classify_stage_command(
    model_dir: Path = typer.Option(None, help="[params: classify.model_dir]"),
    corpus: Path = typer.Option(None, help="[params: classify.corpus]"),
    output: Path = typer.Option(None, help="[params: classify.output]"),
) -> None:
    """Run the classify stage as dvc.yaml does (params from params.yaml)."""
    from secmine.detect.stage import run_classify_stage

    p = _params("classify")
    run_classify_stage(
        model_dir=_pick(model_dir, p, "model_dir", "models/security"),
        corpus=_pick(corpus, p, "corpus", "data/raw/corpus"),
        keywords_path=p.get("keywords", "data/interim/keywords.parquet"),
        output=_pick(output, p, "output", "data/processed/classified.parquet"),
        checkpoint_dir=p.get("checkpoints", "data/interim/classify_chunks"),
        tables_dir="reports/tables/classify", figures_dir="reports/figures/classify",
        metrics_path="reports/metrics/classify.json",
        chunk_size=int(p.get("chunk_size", 2000)), num_threads=int(p.get("num_threads", 2)),
        engine=str(p.get("engine", "auto")), exactness_sample=int(p.get("exactness_sample", 1000)),
        deterministic=config.as_bool(p.get("deterministic", True)),
    )


def export_command(
    model_dir: Path = typer.Option(Path("models/security"), help="a saved transformer folder"),
    output_dir: Path = typer.Option(None, help="write onnx/ here instead of into the model folder"),
    data: Path = typer.Option(None, help="labelled CSV/Parquet to validate the engines on (records the "
                              "recommended engine in the model card)"),
    text_column: str = typer.Option("text", help="text column of --data"),
    label_column: str = typer.Option("label", help="label column (0/1) of --data"),
    split: str = typer.Option("test", help="rows of a labelled Parquet with a split column: all, train or test"),
    tolerance: float = typer.Option(0.01, help="largest MCC difference to PyTorch an engine may have"),
    num_threads: int = typer.Option(2, help="CPU threads"),
) -> None:
    """Export a saved transformer to ONNX (fp32 and int8) for `secmine classify --engine onnx|onnx-int8`:
    into MODEL_DIR/onnx, or OUTPUT_DIR/onnx when given (nothing is written anywhere else)."""
    from secmine.detect.engine import engines_table, export_model_dir, validate_engines
    from secmine.detect.labelled import read_labelled_file
    from secmine.detect.savedmodel import card_max_chars, card_path, load_model, read_card, write_card

    info = export_model_dir(model_dir, output_dir=output_dir)
    typer.echo(f"{(output_dir or model_dir)}/onnx: {info['graph']} graph, fp32 parity "
               f"{info['parity_max_abs_logit_diff']:.1e}, int8 written")
    if data is None:
        return
    model, card = load_model(model_dir, num_threads=num_threads)
    labelled = read_labelled_file(data, text_column=text_column, label_column=label_column,
                                  max_chars=card_max_chars(card)).frame
    if split != "all" and "split" in labelled.columns:
        labelled = labelled[labelled["split"] == split]
    if labelled.empty:
        raise typer.BadParameter(f"{data}: no labelled rows to validate on")
    texts = labelled["text"].tolist()
    report = validate_engines(model_dir, card, texts, labelled["label"].to_numpy(), model.predict_proba(texts),
                              tolerance=tolerance, num_threads=num_threads, engine_dir=output_dir)
    typer.echo(engines_table(report).to_string(index=False))
    if output_dir is None:
        saved = read_card(model_dir)  # as written (load_model's copy carries this run's thread count)
        saved["engines"] = report
        write_card(model_dir, saved)
        typer.echo(f"recommended engine {report['recommended']!r} recorded in {card_path(model_dir)}")


def register(app: typer.Typer) -> None:
    app.command("keywords")(keywords_command)
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("classify")(classify_command)
    app.command("classify-stage")(classify_stage_command)
    app.command("export")(export_command)
