"""``secmine thematic``: the ``thematic`` stage without Jupyter (same function as the notebook)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from secmine import config

PARAMS_KEY = "thematic"


def _param(params: dict[str, Any], name: str, given: Any, *, path: bool = True) -> Any:
    """The option given on the command line, else params.yaml's value (paths in params.yaml are
    relative to the project root), else None."""
    if given is not None:
        return given
    value = params.get(name)
    if value is None:
        return None
    if path and isinstance(value, str) and value.strip() and value.strip().casefold() not in {
        "replication", "default", "none", "skip", "no",
    }:
        candidate = Path(value)
        return candidate if candidate.is_absolute() else config.PROJECT_ROOT / candidate
    return value


def thematic_command(
    coded: str = typer.Option(
        None, "--coded", help="coded sample CSV (source,id,issue,solution); 'replication' = theme/mapped.csv "
        "(default: params.yaml thematic.coded_sample)"),
    codebook: str = typer.Option(
        None, "--codebook", help="codebook YAML or folder of *_theme_summary.csv; 'replication' = the paper's "
        "taxonomy (default: params.yaml thematic.codebook)"),
    texts: str = typer.Option(
        None, "--texts", help="posts' texts to check the coded ids against: theme/data.xlsx, a CSV/Parquet with "
        "post_id, or 'none' (default: params.yaml thematic.texts)"),
    out_dir: Path = typer.Option(
        None, "--out-dir", help="reports folder: writes tables/, figures/thematic/, metrics/thematic.json "
        "(default: the project's reports/)"),
    multiplicity: bool = typer.Option(
        None, "--multiplicity/--no-multiplicity", help="co-occurrence counts mention pairs (default) or posts"),
    replication_dir: Path = typer.Option(
        None, "--replication-dir", help="the replication package (default: data/external/ai_sec_dev)"),
) -> None:
    """RQ2/RQ3: taxonomy tables, co-occurrence, lack-of-solutions, figures and metrics."""
    from secmine.codebook import CodebookError
    from secmine.replication import ReplicationError
    from secmine.thematic.counting import CountingError
    from secmine.thematic.stage import ThematicInputError, run

    try:
        params = config.load_params().get(PARAMS_KEY, {}) or {}
    except OSError:
        params = {}
    if replication_dir is not None:
        # another replication package: what is not given comes from it, not from params.yaml
        params = {k: v for k, v in params.items() if k not in {"coded_sample", "codebook", "texts"}}
    multiplicity_value = multiplicity if multiplicity is not None else params.get("cooccurrence_multiplicity", True)
    try:
        result = run(
            _param(params, "coded_sample", coded),
            _param(params, "codebook", codebook),
            _param(params, "texts", texts),
            out_dir=out_dir if out_dir is not None else config.REPORTS_DIR,
            multiplicity=multiplicity_value,
            root=replication_dir,
            close_figures=True,
        )
    except (ReplicationError, CodebookError, CountingError, ThematicInputError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for warning in result.warnings.itertuples(index=False):
        typer.echo(f"warning [{warning.kind}]: {warning.message}", err=True)
    m = result.metrics
    typer.echo(
        f"{m['posts']['total']} coded posts, {m['issue_mentions']['total']} issue and "
        f"{m['solution_mentions']['total']} solution mentions; {m['warnings']['total']} warning(s); "
        f"{m['paper_rows_matching']}/{m['paper_rows']} paper values matched; {len(result.written)} files written"
    )


def register(app: typer.Typer) -> None:
    app.command("thematic")(thematic_command)
