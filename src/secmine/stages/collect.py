"""Stage ``collect``: the thread corpus every later stage reads.

``source: snapshot`` (the default, offline): the GitHub issue snapshot plus the posts of the
replication package.  ``source: live``: crawl the Hugging Face Hub and GitHub into the archive
(resumable, incremental, rate-limit aware; tokens only from ``HF_TOKEN``/``GITHUB_TOKEN``), then
build the corpus by replaying the archive.  Bots are removed and duplicate threads dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from secmine.stages.contract import StageParams, StagePaths, cache_path, input_path, output_path, stage_run

STAGE = "collect"


@dataclass(frozen=True)
class Params(StageParams):
    stage = STAGE
    source: Literal["snapshot", "live"] = "snapshot"
    include_replication: bool = True
    extra_bots: str = ""
    hf_endpoint: str = "https://huggingface.co"
    github_endpoint: str = "https://api.github.com"
    hf_scope: str = "model"
    hf_sort: str = "likes"
    hf_limit: int = 1000
    hf_min_popularity: int = 1
    hf_discussions_for: Literal["linked", "all", "none"] = "linked"
    hf_discussion_type: Literal["discussion", "pull_request", "all"] = "discussion"
    hf_repos: str = ""
    link_min_score: float = 0.0
    github_repos: str = ""
    github_from_links: bool = True
    github_kinds: str = "issue,pull_request,discussion"
    page_size: int = 100
    comment_page_size: int = 100
    since: str = ""
    timeout_s: float = 30.0
    max_retries: int = 6


@dataclass(frozen=True)
class Paths(StagePaths):
    stage = STAGE
    snapshot: Path = input_path(made_by="secmine external-link", help="the thread snapshot (JSON lines)")
    replication_dir: Path = input_path(made_by="secmine external-link", help="the replication package (its posts)")
    bots_file: Path | None = input_path(optional=True, help="more bot logins, one a line")
    corpus: Path = output_path(help="the corpus: Parquet partitioned by platform, kind and hash bucket")
    tables_dir: Path = output_path(help="the summary table")
    metrics: Path = output_path(help="counts (DVC metrics)")
    archive_dir: Path = cache_path(help="every raw response of live crawls (resumable)")

    # A live crawl reads neither the snapshot nor the replication package; a snapshot corpus without
    # the replication posts does not read the package.
    def needed_inputs(self, params: StageParams | None = None) -> dict[str, Path]:
        inputs = self.inputs()
        if isinstance(params, Params):
            if params.source == "live":
                inputs = {k: v for k, v in inputs.items() if k not in ("snapshot", "replication_dir")}
            elif not params.include_replication:
                inputs.pop("replication_dir", None)
        return inputs


Result = dict[str, Any]


@stage_run
def run(params: Params, paths: Paths) -> Result:
    """Build the corpus; returns the stage metrics (threads, comments, bots removed, ...)."""
    from secmine.collect.stage import run_collect

    live = {k: v for k, v in params.as_dict().items() if k not in ("source", "include_replication", "extra_bots")}
    return run_collect(
        params.source,
        out=str(paths.corpus),
        metrics=str(paths.metrics),
        summary=str(paths.tables_dir / "collect_summary"),
        snapshot=str(paths.snapshot),
        replication_dir=str(paths.replication_dir),
        include_replication=params.include_replication,
        archive_dir=str(paths.archive_dir),
        extra_bots=params.extra_bots,
        bots_file=str(paths.bots_file) if paths.bots_file is not None else None,
        live=live,
        progress=params.source == "live",
    )


def summary(result: Result) -> str:
    """What the command line prints after a run."""
    import json

    shown = {k: result[k] for k in ("source", "threads", "comments", "repositories", "by_kind",
                                    "duplicates_dropped") if k in result}
    return json.dumps(shown, indent=2, sort_keys=True)
