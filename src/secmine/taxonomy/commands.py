"""``secmine coding-sheet-uncertain``: the next coding sheet ordered by the tagger's uncertainty.

The stages ``train-tagger`` and ``tag`` are ``secmine train-tagger|tag`` (:mod:`secmine.cli`);
``secmine tag --model-dir DIR --input FILE --output FILE`` tags any thread file.
"""

from __future__ import annotations

from pathlib import Path

import typer



def coding_sheet_uncertain_command(
    sample: Path = typer.Option(Path("data/processed/sample.csv"), help="the sample stage's sample.csv"),
    tagged: Path = typer.Option(Path("data/processed/tagged.parquet"), help="the tag stage's tagged threads"),
    output: Path = typer.Option(
        Path("scratch/coding/sample_by_uncertainty.csv"), help="the reordered sample"
    ),
    sheet: Path = typer.Option(
        Path("scratch/coding/coding_sheet_by_uncertainty.xlsx"), help="its coding sheet"
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
    app.command("coding-sheet-uncertain", rich_help_panel="Sampling and coding")(coding_sheet_uncertain_command)
