"""``secmine collect``, ``secmine replay``, ``secmine rehydrate`` and ``secmine collect-reset``.

Defaults come from the ``collect`` block of params.yaml; options override them.  Tokens are read
from ``GITHUB_TOKEN`` (several, comma-separated, rotate) and ``HF_TOKEN`` only.

Examples::

    secmine collect                                   # the snapshot corpus, offline (the default)
    secmine collect --source live --hf-limit 200      # crawl the Hub and GitHub, then build the corpus
    secmine collect --source live --hf-endpoint http://127.0.0.1:8000 --github-endpoint http://127.0.0.1:8000
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

from secmine import config

DEFAULTS: dict[str, Any] = {
    "source": "snapshot",
    "snapshot": "data/external/ai_issues/issues.jsonl.gz",
    "replication_dir": "data/external/ai_sec_dev",
    "include_replication": True,
    "out": "data/raw/corpus",
    "archive_dir": "data/raw/archive",
    "metrics": "reports/metrics/collect.json",
    "summary": "reports/tables/collect_summary",
    "extra_bots": "",
    "bots_file": "",
}


def collect_params(params_file: Path | None = None) -> dict[str, Any]:
    """The ``collect`` block of params.yaml over the built-in defaults."""
    path = params_file or config.PARAMS_FILE
    block = (config.load_params(path) if path.is_file() else {}).get("collect") or {}
    return {**DEFAULTS, **block}


def _echo_metrics(metrics: dict[str, Any]) -> None:
    shown = {
        k: metrics[k]
        for k in ("source", "threads", "comments", "repositories", "by_kind", "duplicates_dropped", "bots")
        if k in metrics
    }
    typer.echo(json.dumps(shown, indent=2, sort_keys=True))


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per request otherwise


def collect_reset_command(
    archive_dir: Path = typer.Option(None, help="archive folder (default collect.archive_dir)"),
    params_file: Path = typer.Option(None, help="params.yaml to read the default archive folder from"),
) -> None:
    """Discard the archive's unfinished run (what --restart does), e.g. before `dvc repro`."""
    from secmine.collect.http import CollectError
    from secmine.collect.live import reset

    folder = archive_dir or Path(collect_params(params_file)["archive_dir"])
    try:
        name = reset(folder)
    except (CollectError, OSError) as exc:
        _fail(exc)
    if name is None:
        typer.echo(f"{folder}: no unfinished run; nothing to discard")
    else:
        typer.echo(f"{folder}: discarded the unfinished run {name}; complete runs and state.json are kept")


def register(app: typer.Typer) -> None:
    app.command("collect-reset")(collect_reset_command)
    @app.command("collect")
    def collect(
        source: str = typer.Option(None, help="snapshot (offline, default) or live (the APIs)"),
        out: Path = typer.Option(None, help="corpus folder (default collect.out)"),
        archive_dir: Path = typer.Option(None, help="archive of raw responses (default collect.archive_dir)"),
        hf_endpoint: str = typer.Option(None, help="Hugging Face endpoint (default collect.hf_endpoint)"),
        github_endpoint: str = typer.Option(
            None, help="GitHub API base URL (default collect.github_endpoint)"
        ),
        since: str = typer.Option(
            None, help="only threads updated since this ISO date (default: incremental)"
        ),
        hf_limit: int = typer.Option(None, help="at most this many Hugging Face repositories"),
        hf_scope: str = typer.Option(None, help="comma-separated: model, dataset, space ('' for none)"),
        github_repos: str = typer.Option(None, help="extra GitHub repositories, comma-separated owner/name"),
        metrics: Path = typer.Option(None, help="metrics JSON (default collect.metrics)"),
        summary: str = typer.Option(None, help="summary table stem (default collect.summary)"),
        params_file: Path = typer.Option(None, help="params.yaml to read defaults from"),
        restart: bool = typer.Option(
            False, help="discard the unfinished run of the archive (also: secmine collect-reset)"
        ),
        progress: bool = typer.Option(True, help="show progress bars"),
    ) -> None:
        """Build the thread corpus from the snapshot, or crawl Hugging Face and GitHub live."""
        from secmine.collect.http import CollectError
        from secmine.collect.stage import run_collect

        params = collect_params(params_file)
        overrides = {
            "hf_endpoint": hf_endpoint,
            "github_endpoint": github_endpoint,
            "since": since,
            "hf_limit": hf_limit,
            "hf_scope": hf_scope,
            "github_repos": github_repos,
        }
        params.update({k: v for k, v in overrides.items() if v is not None})
        _logging()
        try:
            result = run_collect(
                source or params["source"],
                out=str(out or params["out"]),
                metrics=str(metrics or params["metrics"]) if (metrics or params["metrics"]) else None,
                summary=summary or params["summary"] or None,
                snapshot=params["snapshot"],
                replication_dir=params["replication_dir"],
                include_replication=bool(params["include_replication"]),
                archive_dir=str(archive_dir or params["archive_dir"]),
                extra_bots=params["extra_bots"],
                bots_file=params["bots_file"] or None,
                live=params,
                restart=restart,
                progress=progress,
            )
        except (CollectError, OSError, ValueError) as exc:
            _fail(exc)
        _echo_metrics(result)

    @app.command("replay")
    def replay(
        archive_dir: Path = typer.Option(None, help="archive to replay (default collect.archive_dir)"),
        out: Path = typer.Option(None, help="corpus folder (default collect.out)"),
        metrics: Path = typer.Option(None, help="metrics JSON (default: none)"),
        summary: str = typer.Option(None, help="summary table stem (default: none)"),
        params_file: Path = typer.Option(None, help="params.yaml to read defaults from"),
    ) -> None:
        """Rebuild the corpus from the archived responses, offline."""
        from secmine.collect.http import CollectError
        from secmine.collect.stage import StageOutputs, bot_filter, run_replay

        params = collect_params(params_file)
        outputs = StageOutputs(
            out=str(out or params["out"]), metrics=str(metrics) if metrics else None, summary=summary
        )
        try:
            result = run_replay(
                archive_dir or params["archive_dir"],
                outputs,
                bots=bot_filter(params["extra_bots"], params["bots_file"] or None),
            )
        except (CollectError, OSError, ValueError) as exc:
            _fail(exc)
        _echo_metrics(result)

    @app.command("rehydrate")
    def rehydrate(
        ids: str = typer.Option("labelled", help="labelled, security_only, all, or a file of thread ids"),
        out: Path = typer.Option(Path("data/raw/rehydrated"), help="corpus folder for the fetched threads"),
        archive_dir: Path = typer.Option(Path("data/raw/rehydrate_archive"), help="archive of raw responses"),
        replication_dir: Path = typer.Option(
            None, help="replication package (default collect.replication_dir)"
        ),
        hf_endpoint: str = typer.Option(None, help="Hugging Face endpoint"),
        github_endpoint: str = typer.Option(None, help="GitHub API base URL"),
        batch: int = typer.Option(25, help="GitHub threads per GraphQL query"),
        metrics: Path = typer.Option(None, help="metrics JSON (default: none)"),
        params_file: Path = typer.Option(None, help="params.yaml to read defaults from"),
        restart: bool = typer.Option(False, help="discard the unfinished run of the archive"),
        progress: bool = typer.Option(True, help="show progress bars"),
    ) -> None:
        """Fetch exactly the threads the replication package labels (ids only there) with their text."""
        from secmine.collect.http import CollectError
        from secmine.collect.live import LiveConfig
        from secmine.collect.stage import StageOutputs, bot_filter, labelled_ids, run_rehydrate

        params = collect_params(params_file)
        params.update(
            {k: v for k, v in {"hf_endpoint": hf_endpoint, "github_endpoint": github_endpoint}.items() if v}
        )
        _logging()
        try:
            wanted = labelled_ids(ids, replication_dir or params["replication_dir"])
            outputs = StageOutputs(out=str(out), metrics=str(metrics) if metrics else None, summary=None)
            result = run_rehydrate(
                wanted,
                archive_dir,
                LiveConfig.from_params(params),
                outputs,
                bots=bot_filter(params["extra_bots"], params["bots_file"] or None),
                batch=batch,
                restart=restart,
                progress=progress,
            )
        except (CollectError, OSError, ValueError) as exc:
            _fail(exc)
        typer.echo(
            json.dumps(
                {k: result.get(k) for k in ("threads", "requested", "missing", "by_kind")},
                indent=2,
                sort_keys=True,
            )
        )
