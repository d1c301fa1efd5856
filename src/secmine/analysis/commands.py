"""``secmine`` commands of the analysis area: ``rq1``, ``sample``, ``sample-size``,
``coding-sheet``, ``coding-agree``, ``coding-resolve`` and ``topics``.

Defaults come from ``params.yaml`` (keys ``rq1``, ``sample``, ``topics``), so a command run
without options does what the DVC stage does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


# Options several commands share (each command keeps its own defaults).
ClassifiedOption = Annotated[Path, typer.Option(help="Classified corpus (Parquet).")]
OutputOption = Annotated[Path, typer.Option()]
CLASSIFIED = Path("data/processed/classified.parquet")
CORPUS = Path("data/raw/corpus")
REPLICATION = Path("data/external/ai_sec_dev")


def _params(key: str) -> dict[str, Any]:
    from secmine import config

    try:
        return dict(config.load_params().get(key) or {})
    except FileNotFoundError:
        return {}


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a stage function; a bad input (ValueError, missing file) becomes a one-line error and exit 1."""
    try:
        return function(*args, **kwargs)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)


def _echo_notes(notes: list[str]) -> None:
    for note in notes:
        typer.echo(f"note: {note}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``secmine`` app."""

    @app.command("sample-size")
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

        try:
            n = cochran_sample_size(population if population > 0 else None, confidence, margin, proportion)
        except ValueError as exc:
            _fail(exc)
        typer.echo(n)

    @app.command("rq1")
    def rq1(
        classified: ClassifiedOption = CLASSIFIED,
        corpus: Annotated[Path, typer.Option(help="Corpus folder (texts, HF model metadata).")] = CORPUS,
        replication: Annotated[Path, typer.Option(help="Replication package (paper's id lists).")] = REPLICATION,
        tables_dir: OutputOption = Path("reports/tables/rq1"),
        figures_dir: OutputOption = Path("reports/figures/rq1"),
        metrics: OutputOption = Path("reports/metrics/rq1.json"),
    ) -> None:
        """RQ1 tables, figures and metrics from the classified corpus."""
        from secmine.analysis.data import params_from
        from secmine.analysis.rq1 import RQ1Params, run_rq1

        params = params_from(RQ1Params, _params("rq1"))
        result = _call(
            run_rq1,
            classified,
            corpus,
            models_path=corpus / "_hf_models.parquet",
            replication_root=replication,
            tables_dir=tables_dir,
            figures_dir=figures_dir,
            metrics_path=metrics,
            params=params,
        )
        _echo_notes(result.notes)
        typer.echo(
            f"wrote {len(result.tables)} tables to {tables_dir}, "
            f"{len(result.figures)} figures to {figures_dir}"
        )

    @app.command("sample")
    def sample(
        classified: ClassifiedOption = CLASSIFIED,
        corpus: Annotated[Path, typer.Option(help="Corpus folder (texts for the coding sheet).")] = CORPUS,
        codebook: Annotated[
            str | None,
            typer.Option(
                help="Codebook: YAML file or replication/theme folder (default: params sample.codebook)."
            ),
        ] = None,
        out: Annotated[Path, typer.Option(help="Sample CSV.")] = Path("data/processed/sample.csv"),
        sheet: Annotated[Path, typer.Option(help="Coding sheet (XLSX).")] = Path(
            "data/processed/coding_sheet.xlsx"
        ),
        tables_dir: OutputOption = Path("reports/tables/sample"),
        figures_dir: OutputOption = Path("reports/figures/sample"),
        metrics: OutputOption = Path("reports/metrics/sample.json"),
    ) -> None:
        """Draw the stratified sample of security threads and write its coding sheet."""
        from secmine.analysis.data import params_from
        from secmine.analysis.sampling import SampleParams, run_sample

        values = _params("sample")
        slots = int(values.get("code_slots", 6))
        params = params_from(SampleParams, values)
        codebook = codebook or str(values.get("codebook") or "") or None
        result = _call(
            run_sample,
            classified,
            corpus,
            sample_path=out,
            sheet_path=sheet,
            codebook_path=codebook,
            tables_dir=tables_dir,
            figures_dir=figures_dir,
            metrics_path=metrics,
            params=params,
            code_slots=slots,
        )
        typer.echo(result.plan.to_string(index=False))
        _echo_notes(result.notes)
        typer.echo(f"wrote {out} ({len(result.sample)} posts) and {sheet}")

    @app.command("coding-sheet")
    def coding_sheet(
        sample: Annotated[
            Path, typer.Option(help="Sample CSV: source, post_id, url and id (thread id) or text.")
        ] = Path("data/processed/sample.csv"),
        corpus: Annotated[Path, typer.Option(help="Corpus folder, for texts the sample lacks.")] = CORPUS,
        codebook: Annotated[
            str, typer.Option(help="Codebook: YAML file or replication/theme folder.")
        ] = "data/external/ai_sec_dev",
        out: Annotated[
            Path, typer.Option(help="Output XLSX (with --coders: NAME is appended to the stem).")
        ] = Path("reports/coding/coding_sheet.xlsx"),
        coders: Annotated[
            str, typer.Option(help="Comma-separated coder names: one sheet each, name filled in.")
        ] = "",
        slots: Annotated[int, typer.Option(help="Code columns per type.")] = 6,
    ) -> None:
        """Export a sample as an XLSX coding sheet (drop-down codes, instructions, codebook)."""
        from secmine.analysis.coding import CodingError, load_codebook, sample_for_sheet, write_coding_sheet
        from secmine.analysis.data import thread_texts

        try:
            from secmine.inputs import read_csv

            frame = read_csv(sample, what="sample CSV", dtype={"post_id": str, "id": str}, keep_default_na=False)
            texts = None
            if "text" not in frame.columns:
                texts = thread_texts(corpus, frame["id"])
            posts = sample_for_sheet(frame, texts)
            book = load_codebook(codebook)
            names = [c.strip() for c in coders.split(",") if c.strip()]
            targets = [(out.with_name(f"{out.stem}_{name}{out.suffix}"), name) for name in names] or [
                (out, "")
            ]
            for target, name in targets:
                write_coding_sheet(posts, book, target, code_slots=slots, coder=name)
                typer.echo(f"wrote {target} ({len(posts)} posts)")
        except (ValueError, FileNotFoundError, CodingError) as exc:
            _fail(exc)

    @app.command("coding-agree")
    def coding_agree(
        sheets: Annotated[list[Path], typer.Argument(help="Completed coding sheets, one per coder.")],
        codebook: Annotated[
            str, typer.Option(help="Codebook: YAML file or replication/theme folder.")
        ] = "data/external/ai_sec_dev",
        out_dir: Annotated[
            Path, typer.Option(help="Where agreement tables and the disagreement list go.")
        ] = Path("reports/coding"),
    ) -> None:
        """Check completed sheets, report agreement (kappa, alpha) and list the disagreements."""
        from secmine.analysis.coding import agreement_report, load_codebook

        try:
            report = agreement_report(sheets, load_codebook(codebook), out_dir=out_dir)
        except ValueError as exc:
            _fail(exc)
        for warning in report.warnings:
            typer.echo(f"warning: {warning}")
        shown = report.agreement[report.agreement["level"] != "code"]
        typer.echo(shown.to_string(index=False))
        typer.echo(
            f"{len(report.disagreements)} disagreement(s): decide them in {out_dir / 'disagreements.xlsx'}"
        )

    @app.command("coding-resolve")
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
        ] = "data/external/ai_sec_dev",
        out: Annotated[Path, typer.Option(help="Resolved coding in theme/mapped.csv format.")] = Path(
            "reports/coding/mapped.csv"
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

        try:
            book = load_codebook(codebook)
            coded = read_coding_sheets(sheets, book)
            chosen = read_decisions(decisions, book) if decisions is not None else None
            result = resolve(coded, book, decisions=chosen, policy=policy)  # type: ignore[arg-type]
            write_mapped(result.coded, out)
        except ValueError as exc:
            _fail(exc)
        for warning in result.warnings:
            typer.echo(f"warning: {warning}")
        typer.echo(f"wrote {out} ({len(result.coded)} posts, {result.applied} decisions applied)")
        typer.echo(
            f"use it in params.yaml: thematic.coded_sample: {out} (and thematic.texts: the sample CSV)"
        )

    @app.command("topics")
    def topics(
        classified: ClassifiedOption = CLASSIFIED,
        corpus: Annotated[Path, typer.Option(help="Corpus folder (texts).")] = CORPUS,
        replication: Annotated[Path, typer.Option(help="Replication package (coded posts).")] = REPLICATION,
        embeddings: Annotated[Path, typer.Option(help="Embedding cache folder.")] = Path(
            "data/interim/embeddings"
        ),
        doc_topics: Annotated[Path, typer.Option(help="Topic of every document (Parquet).")] = Path(
            "data/processed/topics.parquet"
        ),
        tables_dir: OutputOption = Path("reports/tables/topics"),
        figures_dir: OutputOption = Path("reports/figures/topics"),
        metrics: OutputOption = Path("reports/metrics/topics.json"),
    ) -> None:
        """BERTopic over the security threads, aligned with the manual themes."""
        from secmine.analysis.data import params_from
        from secmine.analysis.topics import TopicsParams, run_topics

        params = params_from(TopicsParams, _params("topics"))
        result = _call(
            run_topics,
            classified,
            corpus,
            embeddings_dir=embeddings,
            replication_root=replication,
            doc_topics_path=doc_topics,
            tables_dir=tables_dir,
            figures_dir=figures_dir,
            metrics_path=metrics,
            params=params,
        )
        _echo_notes(result.notes)
        stats = result.embedding_stats
        typer.echo(
            f"embeddings: {stats.get('from_cache', 0)} from the cache, {stats.get('computed', 0)} computed"
        )
        typer.echo(f"{result.metrics['topics']} topics over {result.metrics['documents']} documents")
