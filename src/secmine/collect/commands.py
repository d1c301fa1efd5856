"""``secmine replay``, ``secmine rehydrate`` and ``secmine collect-reset`` (the ``collect`` stage
itself is ``secmine collect``).

Defaults come from the ``collect`` block of params.yaml and the paths dvc.yaml declares; options
override them.  Tokens are read from ``GITHUB_TOKEN`` (several, comma-separated, rotate) and
``HF_TOKEN`` only.

Examples::

    secmine collect                                   # the snapshot corpus, offline (the default)
    secmine collect --source live --hf-limit 200      # crawl the Hub and GitHub, then build the corpus
    secmine replay                                    # rebuild the corpus from the archive, offline
    secmine rehydrate --ids labelled                  # fetch the paper's labelled threads with text
    secmine collect-reset --archive-dir data/raw/archive   # discard an unfinished run (DVC users)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer


def _echo_metrics(metrics: dict[str, Any]) -> None:
    shown = {
        k: metrics[k]
        for k in ("source", "threads", "comments", "repositories", "by_kind", "duplicates_dropped", "bots")
        if k in metrics
    }
    typer.echo(json.dumps(shown, indent=2, sort_keys=True))


def _collect_settings(params_file: Path | None) -> tuple[Any, Any]:
    from secmine.stages import collect

    return collect.Params.load(params_file), collect.Paths.declared()


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per request otherwise


def collect_reset_command(
    archive_dir: Path = typer.Option(None, help="archive folder (default: the collect stage's, dvc.yaml)"),
) -> None:
    """Discard the archive's unfinished crawl run, e.g. before `dvc repro` with other parameters."""
    from secmine.collect.live import reset
    from secmine.stages import collect

    folder = archive_dir or collect.Paths.declared().archive_dir
    name = reset(folder)
    if name is None:
        typer.echo(f"{folder}: no unfinished run; nothing to discard")
    else:
        typer.echo(f"{folder}: discarded the unfinished run {name}; complete runs and state.json are kept")


def register(app: typer.Typer) -> None:
    app.command("collect-reset", rich_help_panel="Collection")(collect_reset_command)

    @app.command("replay", rich_help_panel="Collection")
    def replay(
        archive_dir: Path = typer.Option(None, help="archive to replay (default: the collect stage's, dvc.yaml)"),
        corpus: Path = typer.Option(Path("scratch/replay/corpus"), help="corpus folder to write"),
        metrics: Path = typer.Option(None, help="metrics JSON (default: none)"),
        params_file: Path = typer.Option(None, "--params", help="read the collect parameters from this file"),
    ) -> None:
        """Rebuild the corpus from the archived responses, offline."""
        from secmine.collect.stage import StageOutputs, bot_filter, run_replay

        params, paths = _collect_settings(params_file)
        outputs = StageOutputs(out=str(corpus), metrics=str(metrics) if metrics else None, summary=None)
        result = run_replay(
            archive_dir or paths.archive_dir,
            outputs,
            bots=bot_filter(params.extra_bots, str(paths.bots_file) if paths.bots_file else None),
        )
        _echo_metrics(result)

    @app.command("rehydrate", rich_help_panel="Collection")
    def rehydrate(
        ids: str = typer.Option("labelled", help="labelled, security_only, all, or a file of thread ids"),
        corpus: Path = typer.Option(Path("scratch/rehydrate/corpus"), help="corpus folder for the fetched threads"),
        archive_dir: Path = typer.Option(Path("scratch/rehydrate/archive"), help="archive of raw responses"),
        replication_dir: Path = typer.Option(None, help="replication package (default: dvc.yaml's)"),
        hf_endpoint: str = typer.Option(None, help="Hugging Face endpoint (default: collect.hf_endpoint)"),
        github_endpoint: str = typer.Option(None, help="GitHub API base URL (default: collect.github_endpoint)"),
        batch: int = typer.Option(25, help="GitHub threads per GraphQL query"),
        metrics: Path = typer.Option(None, help="metrics JSON (default: none)"),
        params_file: Path = typer.Option(None, "--params", help="read the collect parameters from this file"),
        restart: bool = typer.Option(False, help="discard the unfinished run of the archive"),
        progress: bool = typer.Option(True, help="show progress bars"),
    ) -> None:
        """Fetch exactly the threads the replication package labels (ids only there) with their text."""
        from secmine.collect.live import LiveConfig
        from secmine.collect.stage import StageOutputs, bot_filter, labelled_ids, run_rehydrate

        params, paths = _collect_settings(params_file)
        settings = params.as_dict()
        settings.update({k: v for k, v in {"hf_endpoint": hf_endpoint, "github_endpoint": github_endpoint}.items() if v})
        _logging()
        wanted = labelled_ids(ids, replication_dir or paths.replication_dir)
        outputs = StageOutputs(out=str(corpus), metrics=str(metrics) if metrics else None, summary=None)
        result = run_rehydrate(
            wanted,
            archive_dir,
            LiveConfig.from_params(settings),
            outputs,
            bots=bot_filter(params.extra_bots, str(paths.bots_file) if paths.bots_file else None),
            batch=batch,
            restart=restart,
            progress=progress,
        )
        typer.echo(
            json.dumps(
                {k: result.get(k) for k in ("threads", "requested", "missing", "by_kind")},
                indent=2,
                sort_keys=True,
            )
        )
