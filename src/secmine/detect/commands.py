"""``secmine evaluate`` and ``secmine export``: tools for a saved model.

The stages ``keywords``, ``train`` and ``classify`` are ``secmine keywords|train|classify``
(:mod:`secmine.cli`); ``secmine train --data FILE`` trains on any labelled CSV and
``secmine classify --input FILE --output FILE`` classifies any thread file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer


def evaluate_command(
    model_dir: Path = typer.Option(..., help="a saved model folder (with model_card.json)"),
    data: Path = typer.Option(..., help="labelled CSV (text, label) or the train stage's labelled Parquet"),
    text_column: str = typer.Option("text", help="text column"),
    label_column: str = typer.Option("label", help="label column (0/1)"),
    split: str = typer.Option("all", help="rows of a labelled Parquet with a split column: all, train or test"),
    population: str = typer.Option("card", help="rows to score: card (the population the model was selected "
                                   "and reported on), keyword (keyword matches) or all"),
    bootstrap: int = typer.Option(1000, help="bootstrap resamples for the 95% intervals"),
    seed: int = typer.Option(42, help="bootstrap seed"),
    precision_target: float = typer.Option(None, help="report the recall at this precision (default: the card's)"),
    output: Path = typer.Option(None, help="write the metrics as JSON here"),
) -> None:
    """Score a saved model on labelled data at its stored threshold and calibration: MCC, F1, precision,
    recall, accuracy, g-measure, PR-AUC, ROC-AUC, recall at fixed precision and Brier, with 95% intervals."""
    from secmine import io
    from secmine.detect.labelled import mark_keyword_match, read_labelled_file
    from secmine.detect.metrics import METRICS, SCORE_METRICS, evaluate_scores
    from secmine.detect.predict import apply_card
    from secmine.detect.savedmodel import card_max_chars, load_model

    if population not in ("card", "keyword", "all"):
        raise typer.BadParameter(f"--population {population!r}: use card, keyword or all")
    model, card = load_model(model_dir)
    labelled = read_labelled_file(data, text_column=text_column, label_column=label_column,
                                  max_chars=card_max_chars(card)).frame
    if split != "all":
        if "split" not in labelled.columns:
            raise typer.BadParameter(f"{data} has no split column; use --split all")
        labelled = labelled[labelled["split"] == split]
    if labelled.empty:
        raise typer.BadParameter(f"{data}: no labelled rows to evaluate")
    settings = card.get("settings", {})
    labelled = mark_keyword_match(labelled, keywords=settings.get("keywords"),
                                  word_boundary=bool(settings.get("word_boundary", True)))
    wanted = (card.get("population") or {}).get("selected_calibrated_and_reported_on", "all") \
        if population == "card" else population
    target = float(precision_target if precision_target is not None
                   else (card.get("rare_class_metrics") or {}).get("precision_target", 0.9))
    scores = model.predict_proba(labelled["text"].tolist())
    probability, predicted = apply_card(card, scores)
    y = labelled["label"].to_numpy()
    keyword = labelled["keyword_match"].to_numpy(dtype=bool)
    parts = {"all": np.ones(len(y), dtype=bool)}
    if wanted == "keyword":
        parts = {"keyword": keyword, **parts}
    results = {}
    for name, mask in parts.items():
        if not mask.any():
            continue
        results[name] = evaluate_scores(y[mask], probability[mask], predicted[mask], n_boot=bootstrap, seed=seed,
                                        precision_target=target)
    if wanted not in results:
        raise typer.BadParameter(f"{data}: no keyword-matched rows to evaluate; use --population all")
    metrics: dict[str, Any] = dict(results[wanted])
    metrics.update(family=card["family"], population=wanted, threshold=float(card.get("threshold", 0.5)),
                   calibration=(card.get("calibration") or {}).get("method", "none"))
    if wanted != "all" and "all" in results:
        metrics["all_rows"] = results["all"]
    names = {"recall_at_precision": f"recall@P{target:g}"}
    for part, values in results.items():
        typer.echo(f"-- {part} rows: {values['n']} ({values['positives']} positive) --")
        for name in (*METRICS, *SCORE_METRICS):
            value, lo, hi = values[name], values.get(name + "_lo"), values.get(name + "_hi")
            label = names.get(name, name)
            if value is None:
                typer.echo(f"{label:>13}: n/a (one class only)")
            else:
                typer.echo(f"{label:>13}: {value:.3f}  [{lo:.3f}, {hi:.3f}]")
    typer.echo(f"{'n':>13}: {metrics['n']} ({metrics['positives']} positive), {wanted} rows, threshold "
               f"{metrics['threshold']:.4g} on the raw score, calibration {metrics['calibration']}")
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
    app.command("evaluate", rich_help_panel="Models")(evaluate_command)
    app.command("export", rich_help_panel="Models")(export_command)
