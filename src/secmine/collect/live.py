"""Live collection: plan a run, crawl (resuming an unfinished run), replay archives, rehydrate.

A run's *plan* (parameters, endpoints, the ``since`` of every stream and the Hugging Face
discussion statuses seen by earlier runs; never tokens) is fixed when the run starts and saved in
its manifest.  :func:`execute` turns a plan into threads and model records; it is the same code
for the live crawl and for the replay, only the transports differ.  The corpus of a live crawl is
always built by replaying the archive, so a crawl and its replay give the same corpus by
construction, and a resumed crawl cannot hold a thread twice or miss one.

One collector works on an archive at a time (:meth:`Archive.lock`); :func:`reset` discards an
unfinished run (``secmine collect-reset``), which is how a DVC user, who cannot pass ``--restart``,
starts over.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from secmine.collect.archive import Archive, ArchiveTransport, ReplaySource, Run, read_records, reset_hint
from secmine.collect.bots import split_names
from secmine.collect.github import DEFAULT_ENDPOINT as GITHUB_ENDPOINT
from secmine.collect.github import KINDS as GITHUB_KINDS
from secmine.collect.github import GitHubClient, GitHubCollector
from secmine.collect.http import (
    Clock,
    CollectError,
    CollectTransport,
    RetryPolicy,
    TokenError,
    TokenPool,
    TransportStats,
    tokens_from_env,
)
from secmine.collect.huggingface import DEFAULT_ENDPOINT as HF_ENDPOINT
from secmine.collect.huggingface import COLLECTOR_HEADER, HubCollector, hub_session
from secmine.schema import Thread, normalise_timestamp, parse_thread_id, thread_id

log = logging.getLogger("secmine.collect")

GITHUB_TOKEN_ENV = "GITHUB_TOKEN"
HF_TOKEN_ENV = "HF_TOKEN"


@dataclass
class LiveConfig:
    """What a live crawl fetches (``collect.*`` in params.yaml; tokens are never part of it)."""

    hf_endpoint: str = HF_ENDPOINT
    github_endpoint: str = GITHUB_ENDPOINT
    hf_scope: list[str] = field(default_factory=lambda: ["model"])
    hf_sort: str | None = "likes"
    hf_limit: int | None = 1000
    hf_min_popularity: int = 1
    hf_discussions_for: str = "linked"
    hf_discussion_type: str = "discussion"
    hf_repos: list[str] = field(default_factory=list)
    link_min_score: float = 0.0
    github_repos: list[str] = field(default_factory=list)
    github_from_links: bool = True
    github_kinds: list[str] = field(default_factory=lambda: list(GITHUB_KINDS))
    page_size: int = 100
    comment_page_size: int = 100
    min_page_size: int = 1
    grow_after: int = 4
    since: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 6

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> LiveConfig:
        """From the ``collect`` block of params.yaml (comma-separated strings for lists)."""
        limit = params.get("hf_limit", 1000)
        config = cls(
            hf_endpoint=str(params.get("hf_endpoint") or HF_ENDPOINT),
            github_endpoint=str(params.get("github_endpoint") or GITHUB_ENDPOINT),
            hf_scope=split_names(params.get("hf_scope", "model")),
            hf_sort=(str(params.get("hf_sort")) if params.get("hf_sort") else None),
            hf_limit=(int(limit) if limit not in (None, "", 0, "0", "all") else None),
            hf_min_popularity=int(params.get("hf_min_popularity", 1)),
            hf_discussions_for=str(params.get("hf_discussions_for") or "linked"),
            hf_discussion_type=str(params.get("hf_discussion_type") or "discussion"),
            hf_repos=split_names(params.get("hf_repos")),
            link_min_score=float(params.get("link_min_score") or 0.0),
            github_repos=split_names(params.get("github_repos")),
            github_from_links=bool(params.get("github_from_links", True)),
            github_kinds=split_names(params.get("github_kinds", ",".join(GITHUB_KINDS))),
            page_size=int(params.get("page_size") or 100),
            comment_page_size=int(params.get("comment_page_size") or params.get("page_size") or 100),
            min_page_size=int(params.get("min_page_size") or 1),
            grow_after=int(params.get("grow_after") or 4),
            since=normalise_timestamp(params.get("since")) if params.get("since") else None,
            timeout_s=float(params.get("timeout_s") or 30.0),
            max_retries=int(params.get("max_retries", 6)),
        )
        config.check()
        return config

    def check(self) -> None:
        for kind in self.github_kinds:
            if kind not in GITHUB_KINDS:
                raise CollectError(f"collect.github_kinds: {kind!r} is not one of {GITHUB_KINDS}")
        if not 1 <= self.page_size <= 100 or not 1 <= self.comment_page_size <= 100:
            raise CollectError("collect.page_size: GitHub pages hold 1 to 100 items")
        if not 1 <= self.min_page_size <= min(self.page_size, self.comment_page_size):
            raise CollectError("collect.min_page_size: between 1 and the page sizes")
        if self.grow_after < 1:
            raise CollectError("collect.grow_after: at least 1 page")

    @property
    def uses_hf(self) -> bool:
        return bool(self.hf_scope or self.hf_repos)

    @property
    def uses_github(self) -> bool:
        return bool(self.github_kinds) and bool(
            self.github_repos or (self.uses_hf and self.github_from_links)
        )


@dataclass
class Credentials:
    """Tokens read from the environment; kept out of every plan, log and file."""

    github: list[str] = field(default_factory=list)
    hf: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        env = environ if environ is not None else os.environ
        hf = tokens_from_env(HF_TOKEN_ENV, env)
        return cls(github=tokens_from_env(GITHUB_TOKEN_ENV, env), hf=hf[0] if hf else None)

    def require(self, config: LiveConfig) -> None:
        """Fail before any request when a needed token is missing."""
        if config.uses_github and not self.github:
            raise TokenError(
                f"a live GitHub crawl needs a token: set {GITHUB_TOKEN_ENV} (several tokens may be given, "
                "separated by commas, to rotate between them). Tokens are read from the environment only."
            )
        if config.uses_hf and not self.hf:
            raise TokenError(
                f"a live Hugging Face crawl needs a token: set {HF_TOKEN_ENV}. Tokens are read from the environment only."
            )

    def require_platforms(self, platforms: set[str]) -> None:
        if "github" in platforms and not self.github:
            raise TokenError(f"fetching GitHub threads needs a token: set {GITHUB_TOKEN_ENV}")
        if "huggingface" in platforms and not self.hf:
            raise TokenError(f"fetching Hugging Face discussions needs a token: set {HF_TOKEN_ENV}")

    @property
    def secrets(self) -> list[str]:
        return [*self.github, *([self.hf] if self.hf else [])]


# -- plans --------------------------------------------------------------------------------------


def crawl_plan(config: LiveConfig, state: Mapping[str, Any]) -> dict[str, Any]:
    """The plan of a new crawl run: the config plus what earlier runs leave to this one."""
    return {
        "kind": "crawl",
        "config": asdict(config),
        "since": dict(state.get("since") or {}) if config.since is None else {},
        "hf_known": dict(state.get("hf_known") or {}),
    }


def rehydrate_plan(config: LiveConfig, ids: Sequence[str], *, batch: int = 25) -> dict[str, Any]:
    return {"kind": "rehydrate", "config": asdict(config), "ids": list(ids), "batch": batch}


def _config(plan: Mapping[str, Any]) -> LiveConfig:
    return LiveConfig(**plan["config"])


def _hub_api(config: LiveConfig, hf_token: str | bool | None) -> Any:
    """The collector's ``HfApi``: its requests carry the collector's mark, so that
    :func:`~secmine.collect.huggingface.hub_session` sends them and refuses any request
    ``huggingface_hub`` makes of its own."""
    from huggingface_hub import HfApi

    return HfApi(
        endpoint=config.hf_endpoint,
        token=hf_token if hf_token else False,
        headers={COLLECTOR_HEADER: "1"},
    )


@dataclass
class Transports:
    github: Any
    hf: Any


def execute(
    plan: Mapping[str, Any],
    transports: Transports,
    *,
    source: str,
    hf_token: str | bool | None = False,
    note: Callable[..., None] = lambda **_: None,
    hf_seen: dict[str, dict[str, Any]] | None = None,
) -> Iterator[dict[str, Any] | Thread]:
    """Run a crawl plan: model records (dicts) and threads, in request order.

    ``hf_seen`` is filled with what the Hub's listings said of each discussion fetched (status and
    number of comments), which later runs compare with (``state.json``'s ``hf_known``).
    """
    config = _config(plan)
    since_map: dict[str, str] = plan.get("since") or {}
    repos: list[str] = list(config.github_repos)
    if config.uses_hf:
        api = _hub_api(config, hf_token)
        hub = HubCollector(
            api=api,
            source=f"{source}:huggingface",
            scope=tuple(config.hf_scope),
            sort=config.hf_sort,
            limit=config.hf_limit,
            min_downloads_or_likes=config.hf_min_popularity,
            discussions_for=config.hf_discussions_for,
            discussion_type=config.hf_discussion_type,
            link_min_score=config.link_min_score,
            repos=tuple(config.hf_repos),
            known=plan.get("hf_known") or {},
            since=config.since,
            note=note,
            seen=hf_seen if hf_seen is not None else {},
        )
        with hub_session(transports.hf):
            for item in hub.crawl():
                if isinstance(item, dict) and config.github_from_links and item.get("github_repo"):
                    repos.append(item["github_repo"])
                yield item
    if not config.github_kinds or not repos:
        return
    seen: set[str] = set()
    unique = []
    for repo in repos:
        if repo.lower() not in seen:
            seen.add(repo.lower())
            unique.append(repo)
    client = GitHubClient.create(transports.github, config.github_endpoint)
    collector = GitHubCollector(
        client,
        source=f"{source}:github",
        page_size=config.page_size,
        comment_page_size=config.comment_page_size,
        min_page_size=config.min_page_size,
        grow_after=config.grow_after,
        note=note,
    )
    for repo in unique:
        for kind in config.github_kinds:
            since = config.since or since_map.get(f"github:{kind}:{repo}")
            yield from collector.threads(repo, kind, since=since)


def execute_rehydrate(
    plan: Mapping[str, Any],
    transports: Transports,
    *,
    source: str,
    hf_token: str | bool | None = False,
    note: Callable[..., None] = lambda **_: None,
) -> Iterator[tuple[str, Thread | None]]:
    """Fetch exactly the threads of a rehydration plan: ``(requested id, thread or None)``."""
    config = _config(plan)
    github: dict[str, list[tuple[str, int]]] = {}
    hub_ids: list[tuple[str, int, str]] = []
    for value in plan["ids"]:
        platform, kind, repo, number = parse_thread_id(value)
        if platform == "github":
            github.setdefault(repo, []).append((kind, number))
        else:
            hub_ids.append((repo, number, value))
    if hub_ids:
        hub = HubCollector(api=_hub_api(config, hf_token), source=f"{source}:huggingface", note=note)
        with hub_session(transports.hf):
            for repo, number, value in hub_ids:
                yield value, hub.rehydrate(repo, number)
    if github:
        client = GitHubClient.create(transports.github, config.github_endpoint)
        collector = GitHubCollector(
            client,
            source=f"{source}:github",
            comment_page_size=config.comment_page_size,
            min_page_size=config.min_page_size,
            grow_after=config.grow_after,
            note=note,
        )
        for repo, items in github.items():
            for (kind, number), thread in collector.rehydrate(repo, items, batch=int(plan.get("batch", 25))):
                yield thread_id("github", kind, repo, number), thread


# -- running ------------------------------------------------------------------------------------


@dataclass
class RunResult:
    run: str
    resumed: bool
    replayed_responses: int
    requests: int
    threads_seen: int
    stats: dict[str, Any]


class _Progress:
    """A tqdm bar with thread counts, requests and the remaining rate-limit budget."""

    def __init__(
        self, desc: str, pools: dict[str, TokenPool], stats: list[TransportStats], enabled: bool = True
    ) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(desc=desc, unit=" threads", disable=not enabled, dynamic_ncols=True, mininterval=0.5)
        self.pools = pools
        self.stats = stats

    def update(self, threads: int = 1, **extra: Any) -> None:
        self.bar.update(threads)
        postfix = {"requests": sum(s.requests for s in self.stats)}
        postfix.update({f"{name} budget": pool.budget() for name, pool in self.pools.items()})
        postfix.update(extra)
        self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        self.bar.close()


def _live_transports(
    run: Run,
    credentials: Credentials,
    config: LiveConfig,
    *,
    clock: Clock,
    inner: Any = None,
) -> tuple[Transports, dict[str, TokenPool], list[CollectTransport], ReplaySource]:
    checkpoint = run.checkpoint
    offset = int(checkpoint.get("offset", 0))
    run.open_for_append(credentials.secrets)
    source = ReplaySource(
        read_records(run.folder / "responses.jsonl.gz.partial", limit=offset),
        where=f"{run.folder}",
        fix=f"discard the unfinished run with {reset_hint(run.folder.parent.parent)}, then rerun",
    )
    policy = RetryPolicy(max_retries=config.max_retries, timeout_s=config.timeout_s)
    gh_pool = TokenPool(credentials.github or [None], clock=clock, inject=True, scheme="bearer")
    hf_pool = TokenPool([credentials.hf], clock=clock, inject=False)
    gh_live = CollectTransport(pool=gh_pool, policy=policy, recorder=run, clock=clock, inner=inner)
    hf_live = CollectTransport(pool=hf_pool, policy=policy, recorder=run, clock=clock, inner=inner)
    transports = Transports(github=ArchiveTransport(source, gh_live), hf=ArchiveTransport(source, hf_live))
    return transports, {"GitHub": gh_pool, "HF": hf_pool}, [gh_live, hf_live], source


def _transport_stats(live: Sequence[CollectTransport]) -> dict[str, Any]:
    """Requests, retries and rate-limit waits of the GitHub and Hugging Face transports."""
    return {
        name: {**asdict(t.stats), "budget_waits": t.pool.waits, "waited_s": round(t.pool.waited, 1)}
        for name, t in zip(("github", "huggingface"), live, strict=True)
    }


def start_or_resume(archive: Archive, plan: dict[str, Any], *, restart: bool = False) -> tuple[Run, bool]:
    """The run to work on: the unfinished one with the same plan, or a new one.

    ``restart`` discards the unfinished run whatever its plan (and what it archived).
    """
    archive.ensure()
    unfinished = archive.unfinished()
    if unfinished is not None:
        if restart:
            archive.discard_unfinished()
        elif unfinished.plan == plan:
            return unfinished, True
        else:
            raise CollectError(
                f"{unfinished.folder}: an unfinished run with other parameters is in the archive; rerun with "
                f"the same parameters to finish it, or discard it with {reset_hint(archive.root)}"
            )
    return archive.new_run(plan), False


def reset(archive_dir: str | os.PathLike[str]) -> str | None:
    """Discard the unfinished run of an archive (``secmine collect-reset``); its name, or None.

    Complete runs and ``state.json`` are kept, so the next crawl starts from what they fetched.
    """
    archive = Archive(Path(archive_dir))
    if not (archive.root / "runs").is_dir():
        return None
    with archive.lock("secmine collect-reset"):
        run = archive.discard_unfinished()
    return run.name if run is not None else None


def _fail_run(run: Run, exc: BaseException, bar: _Progress) -> None:
    """Close the archive and note the failure, never hiding ``exc`` behind a second error."""
    run.close()
    run.mark_failed(exc)
    bar.close()


def crawl(
    archive_dir: str | os.PathLike[str],
    config: LiveConfig,
    *,
    credentials: Credentials | None = None,
    restart: bool = False,
    clock: Clock | None = None,
    inner_transport: Any = None,
    progress: bool = True,
    durable: bool = True,
) -> RunResult:
    """Crawl live into the archive, resuming an unfinished run with the same plan.

    Checks the tokens before any request.  Every response is archived and checkpointed as it
    arrives; on success the run is marked complete and ``state.json`` records what the next run
    may skip (``since`` per stream, statuses of Hugging Face discussions).
    """
    credentials = credentials if credentials is not None else Credentials.from_env()
    credentials.require(config)
    archive = Archive(Path(archive_dir))
    with archive.lock("secmine collect"):
        return _crawl(
            archive,
            config,
            credentials=credentials,
            restart=restart,
            clock=clock,
            inner_transport=inner_transport,
            progress=progress,
            durable=durable,
        )


def _crawl(
    archive: Archive,
    config: LiveConfig,
    *,
    credentials: Credentials,
    restart: bool,
    clock: Clock | None,
    inner_transport: Any,
    progress: bool,
    durable: bool,
) -> RunResult:
    state = archive.state
    plan = crawl_plan(config, state)
    run, resumed = start_or_resume(archive, plan, restart=restart)
    run.durable = durable
    clock = clock or Clock()
    transports, pools, live, source = _live_transports(
        run, credentials, config, clock=clock, inner=inner_transport
    )
    if resumed:
        log.info(
            "resuming %s: replaying %s archived responses first", run.name, run.checkpoint.get("records")
        )
    bar = _Progress(f"collect {run.name}", pools, [t.stats for t in live], enabled=progress)
    since: dict[str, str] = {}
    known: dict[str, dict[str, Any]] = {}
    threads = 0
    try:
        for item in execute(
            plan,
            transports,
            source=f"live:{run.name}",
            hf_token=credentials.hf or False,
            note=run.note,
            hf_seen=known,
        ):
            if isinstance(item, Thread):
                threads += 1
                if item.platform == "github":
                    key = f"github:{item.kind}:{item.repo}"
                    if item.updated_at and item.updated_at > since.get(key, ""):
                        since[key] = item.updated_at
                bar.update(1, replayed=source.served)
    except BaseException as exc:
        _fail_run(run, exc, bar)
        raise
    bar.close()
    stats = _transport_stats(live)
    summary = {"threads": threads, "responses": run.checkpoint.get("records", 0), "transport": stats}
    run.finish(summary)
    new_state = archive.state
    merged_since = dict(new_state.get("since") or {})
    for key, value in since.items():
        if value > merged_since.get(key, ""):
            merged_since[key] = value
    merged_known = dict(new_state.get("hf_known") or {})
    for repo, seen in known.items():
        merged_known[repo] = {**merged_known.get(repo, {}), **seen}
    new_state.update(since=merged_since, hf_known=merged_known, runs=[*new_state.get("runs", []), run.name])
    archive.write_state(new_state)
    for transport in live:
        transport.shutdown()
    return RunResult(
        run=run.name,
        resumed=resumed,
        replayed_responses=source.served,
        requests=sum(t.stats.requests for t in live),
        threads_seen=threads,
        stats=stats,
    )


@dataclass
class Replayed:
    threads: list[Thread]
    models: list[dict[str, Any]]
    runs: list[str]
    responses: int
    missing: list[str] = field(default_factory=list)
    kinds_changed: dict[str, str] = field(default_factory=dict)


class ReplayStream:
    """The threads of every complete run of an archive, rebuilt offline one at a time.

    :meth:`threads` yields them as the archived responses are replayed (memory: one response and
    the collector's state, not the corpus); ``runs`` (the complete runs of ``kind``) is known at
    once, ``responses``, ``models``, ``missing`` and ``kinds_changed`` once :meth:`threads` has
    been consumed.  Runs are replayed in order; a later run's copy of a thread replaces an earlier
    one downstream (:func:`secmine.collect.bots.dedupe` keeps the latest update, then the last
    copy).  Unfinished runs are skipped: finish them with ``secmine collect`` first.
    """

    def __init__(self, archive_dir: str | os.PathLike[str], *, kind: str = "crawl") -> None:
        self.archive = Archive(Path(archive_dir))
        self.kind = kind
        unfinished = self.archive.unfinished()
        if unfinished is not None:
            log.warning(
                "%s is unfinished and is not replayed (rerun `secmine collect` to finish it)", unfinished.folder
            )
        self._runs = [run for run in self.archive.complete_runs() if run.plan.get("kind", "crawl") == kind]
        self.runs: list[str] = [run.name for run in self._runs]
        self.responses = 0
        self.missing: list[str] = []
        self.kinds_changed: dict[str, str] = {}
        self._models: dict[tuple[str, str], dict[str, Any]] = {}
        self.consumed = False

    @property
    def models(self) -> list[dict[str, Any]]:
        return list(self._models.values())

    def threads(self) -> Iterator[Thread]:
        for run in self._runs:
            source = ReplaySource(
                run.records(),
                where=str(run.folder),
                fix=(
                    f"the run was archived by an older secmine: move {run.folder} out of the archive and crawl "
                    "again (`secmine collect --source live`)"
                ),
            )
            transports = Transports(github=ArchiveTransport(source), hf=ArchiveTransport(source))
            if self.kind == "crawl":
                for item in execute(run.plan, transports, source=f"live:{run.name}"):
                    if isinstance(item, Thread):
                        yield item
                    else:
                        self._models[(item["repo_type"], item["repo_id"])] = item
            else:
                for requested, thread in execute_rehydrate(run.plan, transports, source=f"live:{run.name}"):
                    if thread is None:
                        self.missing.append(requested)
                        continue
                    if thread.id != requested:
                        self.kinds_changed[requested] = thread.id
                    yield thread
            source.finish()
            self.responses += source.served
        self.consumed = True


def replay(archive_dir: str | os.PathLike[str], *, kind: str = "crawl") -> Replayed:
    """Every thread and model record of an archive's complete runs, in memory (see
    :class:`ReplayStream`, which the collect stage uses to stream them instead)."""
    stream = ReplayStream(archive_dir, kind=kind)
    threads = list(stream.threads())
    return Replayed(
        threads=threads,
        models=stream.models,
        runs=stream.runs,
        responses=stream.responses,
        missing=stream.missing,
        kinds_changed=stream.kinds_changed,
    )


def rehydrate(
    archive_dir: str | os.PathLike[str],
    ids: Sequence[str],
    config: LiveConfig,
    *,
    credentials: Credentials | None = None,
    batch: int = 25,
    restart: bool = False,
    clock: Clock | None = None,
    progress: bool = True,
    durable: bool = True,
) -> RunResult:
    """Fetch exactly the threads ``ids`` into an archive (a resumable run of kind ``rehydrate``)."""
    credentials = credentials if credentials is not None else Credentials.from_env()
    platforms = {parse_thread_id(i)[0] for i in ids}
    credentials.require_platforms(platforms)
    archive = Archive(Path(archive_dir))
    with archive.lock("secmine rehydrate"):
        return _rehydrate(
            archive, ids, config, credentials=credentials, batch=batch, restart=restart, clock=clock,
            progress=progress, durable=durable,
        )  # fmt: skip


def _rehydrate(
    archive: Archive,
    ids: Sequence[str],
    config: LiveConfig,
    *,
    credentials: Credentials,
    batch: int,
    restart: bool,
    clock: Clock | None,
    progress: bool,
    durable: bool,
) -> RunResult:
    plan = rehydrate_plan(config, ids, batch=batch)
    run, resumed = start_or_resume(archive, plan, restart=restart)
    run.durable = durable
    clock = clock or Clock()
    transports, pools, live, source = _live_transports(run, credentials, config, clock=clock)
    bar = _Progress(f"rehydrate {run.name}", pools, [t.stats for t in live], enabled=progress)
    found = 0
    try:
        for _, thread in execute_rehydrate(
            plan, transports, source=f"live:{run.name}", hf_token=credentials.hf or False, note=run.note
        ):
            found += thread is not None
            bar.update(1, replayed=source.served)
    except BaseException as exc:
        _fail_run(run, exc, bar)
        raise
    bar.close()
    stats = _transport_stats(live)
    run.finish(
        {
            "threads": found,
            "requested": len(ids),
            "responses": run.checkpoint.get("records", 0),
            "transport": stats,
        }
    )
    for transport in live:
        transport.shutdown()
    return RunResult(run.name, resumed, source.served, sum(t.stats.requests for t in live), found, stats)
