"""``secmine evaluate`` and ``secmine export``: tools for a saved model.

The stages ``keywords``, ``train`` and ``classify`` are ``secmine keywords|train|classify``
(:mod:`secmine.cli`); ``secmine train --data FILE`` trains on any labelled CSV and
``secmine classify --input FILE --output FILE`` classifies any thread file.
"""

from __future__ import annotations

from pathlib import Path

import typer


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
    from secmine.detect.predict import card_max_chars, load_model

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
    """Export a saved transformer to ONNX (fp32 and int8) for `secmine classify --engine onnx|onnx-int8`."""
    from secmine import io
    from secmine.detect.engine import engines_table, export_model_dir, validate_engines
    from secmine.detect.labelled import read_labelled_file
    from secmine.detect.predict import MODEL_CARD, card_max_chars, load_model

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
        card["engines"] = report
        io.write_json(Path(model_dir) / MODEL_CARD, card)
        typer.echo(f"recommended engine {report['recommended']!r} recorded in {Path(model_dir) / MODEL_CARD}")


def register(app: typer.Typer) -> None:
    app.command("evaluate", rich_help_panel="Models")(evaluate_command)
    app.command("export", rich_help_panel="Models")(export_command)
