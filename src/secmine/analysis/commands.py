"""The coding round-trip and sample-size tools: ``secmine sample-size``, ``coding-sheet``,
``coding-agree`` and ``coding-resolve`` (the stages ``rq1``, ``sample`` and ``topics`` are
``secmine rq1|sample|topics``, see :mod:`secmine.cli`).

Errors in the sheets (a post coded by one coder only, an unknown post id, a formula cell) are one
line naming the file, the row and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

CORPUS = Path("data/raw/corpus")
CODEBOOK = "data/external/ai_sec_dev"


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``secmine`` app."""

    @app.command("sample-size", rich_help_panel="Sampling and coding")
    def sample_size(
        population: Annotated[
            int, typer.Option("--population", "-N", help="Population size (0 or less: infinite).")
        ],
        confidence: Annotated[float, typer.Option("--confidence", "-c", help="Confidence level.")] = 0.95,
        margin: Annotated[float, typer.Option("--margin", "-e", help="Margin of error.")] = 0.05,
        proportion: Annotated[float, typer.Option("--proportion", "-p", help="Expected proportion.")] = 0.5,
    ) -> None:
        """Cochran's sample size with the finite population correction, rounded up
        (95% confidence, 5% margin, N=8421 gives 368)."""
        from secmine.analysis.stats import cochran_sample_size

        typer.echo(cochran_sample_size(population if population > 0 else None, confidence, margin, proportion))

    @app.command("coding-sheet", rich_help_panel="Sampling and coding")
    def coding_sheet(
        sample: Annotated[
            Path, typer.Option(help="Sample CSV: source, post_id, url and id (thread id) or text.")
        ] = Path("data/processed/sample.csv"),
        corpus: Annotated[Path, typer.Option(help="Corpus folder, for texts the sample lacks.")] = CORPUS,
        codebook: Annotated[
            str, typer.Option(help="Codebook: YAML file or replication/theme folder.")
        ] = CODEBOOK,
        output: Annotated[
            Path, typer.Option(help="Output XLSX (with --coders: NAME is appended to the stem).")
        ] = Path("scratch/coding/coding_sheet.xlsx"),
        coders: Annotated[
            str, typer.Option(help="Comma-separated coder names: one sheet each, name filled in.")
        ] = "",
        slots: Annotated[int, typer.Option(help="Code columns per type.")] = 6,
    ) -> None:
        """Export a sample as an XLSX coding sheet (drop-down codes, instructions, codebook)."""
        from secmine.analysis.coding import load_codebook, sample_for_sheet, write_coding_sheet
        from secmine.analysis.data import thread_texts
        from secmine.inputs import read_csv

        frame = read_csv(sample, what="sample CSV", dtype={"post_id": str, "id": str}, keep_default_na=False)
        texts = None
        if "text" not in frame.columns:
            texts = thread_texts(corpus, frame["id"])
        posts = sample_for_sheet(frame, texts)
        book = load_codebook(codebook)
        names = [c.strip() for c in coders.split(",") if c.strip()]
        targets = [(output.with_name(f"{output.stem}_{name}{output.suffix}"), name) for name in names] or [
            (output, "")
        ]
        for target, name in targets:
            write_coding_sheet(posts, book, target, code_slots=slots, coder=name)
            typer.echo(f"wrote {target} ({len(posts)} posts)")

    @app.command("coding-agree", rich_help_panel="Sampling and coding")
    def coding_agree(
        sheets: Annotated[list[Path], typer.Argument(help="Completed coding sheets, one per coder.")],
        codebook: Annotated[
            str, typer.Option(help="Codebook: YAML file or replication/theme folder.")
        ] = CODEBOOK,
        out: Annotated[
            Path, typer.Option(help="Folder for the agreement tables and the disagreement list.")
        ] = Path("scratch/coding"),
    ) -> None:
        """Check completed sheets, report agreement (kappa, alpha) and list the disagreements."""
        from secmine.analysis.coding import agreement_report, load_codebook

        report = agreement_report(sheets, load_codebook(codebook), out_dir=out)
        for warning in report.warnings:
            typer.echo(f"warning: {warning}")
        shown = report.agreement[report.agreement["level"] != "code"]
        typer.echo(shown.to_string(index=False))
        typer.echo(
            f"{len(report.disagreements)} disagreement(s): decide them in {out / 'disagreements.xlsx'}"
        )

    @app.command("coding-resolve", rich_help_panel="Sampling and coding")
    def coding_resolve(
        sheets: Annotated[list[Path], typer.Argument(help="Completed coding sheets, one per coder.")],
        decisions: Annotated[
            Path | None, typer.Option(help="Decided disagreement sheet (XLSX or CSV).")
        ] = None,
        policy: Annotated[
            str, typer.Option(help="For undecided disagreements: strict, majority, union, intersection.")
        ] = "strict",
        codebook: Annotated[
            str, typer.Option(help="Codebook: YAML file or replication/theme folder.")
        ] = CODEBOOK,
        output: Annotated[Path, typer.Option(help="Resolved coding in theme/mapped.csv format.")] = Path(
            "scratch/coding/mapped.csv"
        ),
    ) -> None:
        """Merge the coders' sheets with the decisions into a mapped.csv for the thematic stage."""
        from secmine.analysis.coding import (
            load_codebook,
            read_coding_sheets,
            read_decisions,
            resolve,
            write_mapped,
        )

        book = load_codebook(codebook)
        coded = read_coding_sheets(sheets, book)
        chosen = read_decisions(decisions, book) if decisions is not None else None
        result = resolve(coded, book, decisions=chosen, policy=policy)  # type: ignore[arg-type]
        write_mapped(result.coded, output)
        for warning in result.warnings:
            typer.echo(f"warning: {warning}")
        typer.echo(f"wrote {output} ({len(result.coded)} posts, {result.applied} decisions applied)")
        typer.echo(
            f"count it: set paths.coded_sample: {output} in dvc.yaml (and paths.texts: the sample CSV), "
            "or run `secmine thematic --coded-sample ...`"
        )

