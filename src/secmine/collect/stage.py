"""The ``collect`` stage as functions: the notebook and the command line call these.

:func:`run_collect` builds the corpus from the snapshot (``source="snapshot"``) or from a live
crawl (``source="live"``: crawl into the archive, then replay the archive into the corpus);
:func:`run_replay` rebuilds the corpus from an archive offline; :func:`run_rehydrate` fetches the
replication package's labelled threads.  Each writes the corpus, a metrics JSON and a summary table.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmine.collect.bots import BotFilter
from secmine.schema import THREAD_COLUMNS, Thread

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from secmine.collect.http import Clock
    from secmine.collect.live import Credentials, LiveConfig

log = logging.getLogger("secmine.collect")

SOURCES = ("snapshot", "live")
SOURCE_PRIORITY = ("live", "snapshot", "replication")
CORPUS_FORMAT = 2  # 2: partitioned by platform, kind and hash bucket


@dataclass
class StageOutputs:
    out: str = "data/raw/corpus"
    metrics: str | None = "reports/metrics/collect.json"
    summary: str | None = "reports/tables/collect_summary"


SUMMARY_COLUMNS = [
    "platform",
    "kind",
    "threads",
    "comments",
    "repositories",
    "with_comments",
    "first_created",
    "last_created",
]


def _summary(groups: Sequence[dict[str, Any]], repositories: int) -> pd.DataFrame:
    """The summary table from per-(platform, kind) counts (sorted) and the overall repository count."""
    import pandas as pd

    rows = [
        {
            "platform": g["platform"],
            "kind": g["kind"],
            "threads": int(g["threads"]),
            "comments": int(g["comments"]),
            "repositories": int(g["repositories"]),
            "with_comments": int(g["with_comments"]),
            "first_created": (g["first_created"] or "")[:10],
            "last_created": (g["last_created"] or "")[:10],
        }
        for g in groups
    ]
    if rows:
        rows.append(
            {
                "platform": "all",
                "kind": "all",
                "threads": sum(r["threads"] for r in rows),
                "comments": sum(r["comments"] for r in rows),
                "repositories": int(repositories),
                "with_comments": sum(r["with_comments"] for r in rows),
                "first_created": min((r["first_created"] for r in rows if r["first_created"]), default=""),
                "last_created": max((r["last_created"] for r in rows if r["last_created"]), default=""),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summary_frame(threads: Sequence[Thread]) -> pd.DataFrame:
    """Threads, comments and repositories per platform and kind, with the span of creation dates
    (threads in memory; the stage counts the same while it streams, :class:`CorpusCounter`)."""
    groups: dict[tuple[str, str], list[Thread]] = {}
    for thread in threads:
        groups.setdefault((thread.platform, thread.kind), []).append(thread)
    counts = []
    for (platform, kind), members in sorted(groups.items()):
        created = sorted(t.created_at for t in members if t.created_at)
        counts.append(
            {
                "platform": platform,
                "kind": kind,
                "threads": len(members),
                "comments": sum(len(t.comments) for t in members),
                "repositories": len({t.repo for t in members}),
                "with_comments": sum(1 for t in members if t.comments),
                "first_created": created[0] if created else "",
                "last_created": created[-1] if created else "",
            }
        )
    return _summary(counts, len({(t.platform, t.repo) for t in threads}))


@dataclass
class CorpusStats:
    """Counts over a corpus: threads, comments and repositories per platform and kind, and totals."""

    groups: list[dict[str, Any]]
    threads: int
    comments: int
    repositories: int
    by_platform: dict[str, int]
    by_kind: dict[str, int]
    by_source: dict[str, int]

    def summary(self) -> pd.DataFrame:
        return _summary(self.groups, self.repositories)


class CorpusCounter:
    """The counts of :class:`CorpusStats`, taken record by record as the corpus is written (memory:
    one entry per platform and kind, and the set of repositories)."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], dict[str, Any]] = {}
        self._repos: dict[tuple[str, str], set[str]] = {}
        self._sources: Counter[str] = Counter()

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        key = (record["platform"], record["kind"])
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = {"platform": key[0], "kind": key[1], "threads": 0, "comments": 0,
                                         "with_comments": 0, "first_created": None, "last_created": None}
            self._repos[key] = set()
        comments = len(record.get("comments") or ())
        group["threads"] += 1
        group["comments"] += comments
        group["with_comments"] += int(comments > 0)
        created = record.get("created_at")
        if created:
            if group["first_created"] is None or created < group["first_created"]:
                group["first_created"] = created
            if group["last_created"] is None or created > group["last_created"]:
                group["last_created"] = created
        self._repos[key].add(record["repo"])
        self._sources[str(record.get("source") or "").split(":")[0]] += 1
        return record

    def stats(self) -> CorpusStats:
        groups = [{**self._groups[k], "repositories": len(self._repos[k])} for k in sorted(self._groups)]
        by_platform: dict[str, int] = {}
        for g in groups:
            by_platform[g["platform"]] = by_platform.get(g["platform"], 0) + g["threads"]
        repositories = {(platform, repo) for (platform, _), repos in self._repos.items() for repo in repos}
        return CorpusStats(
            groups=groups,
            threads=sum(g["threads"] for g in groups),
            comments=sum(g["comments"] for g in groups),
            repositories=len(repositories),
            by_platform=dict(sorted(by_platform.items())),
            by_kind=dict(sorted((f"{g['platform']}:{g['kind']}", g["threads"]) for g in groups)),
            by_source=dict(sorted(self._sources.items())),
        )


def source_rank(source: str) -> int:
    """Rank of a thread's source among copies of one id (higher wins): :data:`SOURCE_PRIORITY`."""
    position = next((i for i, p in enumerate(SOURCE_PRIORITY) if source.startswith(p)), len(SOURCE_PRIORITY))
    return -position


def finalize(
    threads: Iterable[Thread],
    outputs: StageOutputs,
    *,
    bots: BotFilter,
    manifest: dict[str, Any] | Callable[[], dict[str, Any]],
    models: Sequence[dict[str, Any]] | Callable[[], Sequence[dict[str, Any]] | None] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """De-duplicate, drop bots, write the corpus, the summary table and the metrics; return metrics.

    ``manifest`` and ``models`` may be callables, called once ``threads`` is consumed (a replayed
    archive knows its response count and model records only then).

    Streams: threads go to a :class:`~secmine.collect.corpus.Spool` as they come, an external merge
    sort orders and de-duplicates them (the copy kept is :func:`secmine.collect.bots.dedupe`'s),
    bots are removed batch by batch on the way into the partitions, and the counts are taken on the
    way (:class:`CorpusCounter`) — memory does not grow with the corpus.
    """
    import shutil

    from tqdm.auto import tqdm

    from secmine.collect.corpus import PartitionWriter, Spool, write_sidecars
    from secmine.io import atomic_dir, write_json, write_table

    with atomic_dir(outputs.out) as staging:
        spool = Spool(staging / ".spool")
        for thread in tqdm(threads, desc="corpus", unit="thread", disable=not progress, mininterval=5):
            spool.add(thread.to_record(), rank=source_rank(thread.source))
        writer = PartitionWriter(staging)
        counter = CorpusCounter()
        for batch in spool.winners():
            writer.write(counter.add(kept) for kept in map(bots.clean_record, batch) if kept is not None)
        writer.close()
        shutil.rmtree(spool.folder, ignore_errors=True)
        if callable(manifest):
            manifest = manifest()
        if callable(models):
            models = models()
        bots.stats.duplicates_dropped += spool.duplicates
        stats = counter.stats()
        top_bots = sorted(bots.stats.by_login.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        metrics: dict[str, Any] = {
            "source": manifest.get("source"),
            "threads": stats.threads,
            "comments": stats.comments,
            "repositories": stats.repositories,
            "by_platform": stats.by_platform,
            "by_kind": stats.by_kind,
            "by_source": stats.by_source,
            "duplicates_dropped": bots.stats.duplicates_dropped,
            "bots": {
                "threads_dropped": bots.stats.threads_dropped,
                "comments_dropped": bots.stats.comments_dropped,
                "accounts": len(bots.stats.by_login),
                "top": {login: count for login, count in top_bots},
            },
        }
        if models is not None:
            metrics["hf_repositories"] = len(models)
            metrics["hf_linked"] = sum(1 for m in models if m.get("github_repo"))
            metrics["github_repositories_linked"] = len(
                {m["github_repo"].lower() for m in models if m.get("github_repo")}
            )
        for key in ("runs", "responses", "missing", "requested"):
            if key in manifest:
                value = manifest[key]
                metrics[key] = len(value) if isinstance(value, list) and key == "missing" else value
        corpus_manifest = {
            **manifest,
            "format": CORPUS_FORMAT,
            "columns": list(THREAD_COLUMNS),
            "counts": metrics,
        }
        write_sidecars(staging, models=models, manifest=corpus_manifest)
    if outputs.summary:
        write_table(stats.summary(), outputs.summary, caption="Threads collected per platform and kind")
    if outputs.metrics:
        write_json(outputs.metrics, metrics)
    return metrics


def bot_filter(extra_bots: str | Sequence[str] | None = None, bots_file: str | None = None) -> BotFilter:
    return BotFilter.from_params(extra=extra_bots, bots_file=bots_file or None)


def run_snapshot(
    snapshot: str | os.PathLike[str],
    outputs: StageOutputs,
    *,
    replication_dir: str | os.PathLike[str] | None = None,
    include_replication: bool = True,
    bots: BotFilter | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The corpus from the snapshot and the replication posts, offline and deterministic; the
    snapshot is streamed (bounded memory whatever its size)."""
    from secmine.collect.snapshot_source import load_snapshot_threads

    loaded = load_snapshot_threads(
        snapshot, replication_dir=replication_dir, include_replication=include_replication
    )
    manifest = {"source": "snapshot", "inputs": loaded.inputs}
    return finalize(
        loaded.threads, outputs, bots=bots or BotFilter(), manifest=manifest, models=[], progress=progress
    )


def run_replay(
    archive_dir: str | os.PathLike[str], outputs: StageOutputs, *, bots: BotFilter | None = None
) -> dict[str, Any]:
    """The corpus rebuilt offline from every complete crawl run of an archive."""
    from secmine.collect.live import ReplayStream

    replayed = ReplayStream(archive_dir)  # streamed: the archive is never held in memory
    if not replayed.runs:
        from secmine.collect.http import CollectError

        raise CollectError(f"{archive_dir}: no complete crawl run to replay")

    def manifest() -> dict[str, Any]:
        return {
            "source": "live",
            "archive": Path(archive_dir).as_posix(),
            "runs": replayed.runs,
            "responses": replayed.responses,
        }

    return finalize(
        replayed.threads(), outputs, bots=bots or BotFilter(), manifest=manifest, models=lambda: replayed.models
    )


def run_live(
    archive_dir: str | os.PathLike[str],
    config: LiveConfig,
    outputs: StageOutputs,
    *,
    bots: BotFilter | None = None,
    credentials: Credentials | None = None,
    restart: bool = False,
    clock: Clock | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Crawl (or resume) into the archive, then build the corpus by replaying the archive."""
    from secmine.collect.live import crawl

    result = crawl(
        archive_dir, config, credentials=credentials, restart=restart, clock=clock, progress=progress
    )
    log.info(
        "%s: %s requests, %s responses replayed, %s threads",
        result.run,
        result.requests,
        result.replayed_responses,
        result.threads_seen,
    )
    return run_replay(archive_dir, outputs, bots=bots)


def run_collect(
    source: str = "snapshot",
    *,
    out: str = "data/raw/corpus",
    metrics: str | None = "reports/metrics/collect.json",
    summary: str | None = "reports/tables/collect_summary",
    snapshot: str = "data/external/ai_issues/issues.jsonl.gz",
    replication_dir: str | None = "data/external/ai_sec_dev",
    include_replication: bool = True,
    archive_dir: str = "data/raw/archive",
    extra_bots: str | Sequence[str] | None = None,
    bots_file: str | None = None,
    live: Mapping[str, Any] | None = None,
    restart: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """The ``collect`` stage.  ``live`` holds the live-crawl parameters (``collect.*`` keys)."""
    if source not in SOURCES:
        raise ValueError(f"collect.source: {source!r} is not one of {SOURCES}")
    outputs = StageOutputs(out=out, metrics=metrics, summary=summary)
    bots = bot_filter(extra_bots, bots_file)
    from secmine.collect.archive import Archive

    Archive(Path(archive_dir)).ensure()
    if source == "snapshot":
        return run_snapshot(
            snapshot,
            outputs,
            replication_dir=replication_dir,
            include_replication=include_replication,
            bots=bots,
        )
    from secmine.collect.live import LiveConfig

    config = LiveConfig.from_params(live or {})
    return run_live(archive_dir, config, outputs, bots=bots, restart=restart, progress=progress)


def labelled_ids(which: str, replication_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Thread ids to rehydrate: ``labelled`` (train + test), ``security_only``, ``all``, or a CSV/TXT
    file with a ``thread_id`` column (or one id a line)."""
    from secmine.replication import load_labelled, load_security_only

    ids: list[str] = []
    if which in ("labelled", "all"):
        ids += list(load_labelled(replication_dir)["thread_id"])
    if which in ("security_only", "all"):
        ids += list(load_security_only(replication_dir)["thread_id"])
    if which not in ("labelled", "security_only", "all"):
        path = Path(which)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: id list not found (or use labelled, security_only, all)")
        if path.suffix == ".csv":
            from secmine.inputs import read_csv

            frame = read_csv(path, required=("thread_id",), what="id list", dtype=str, keep_default_na=False)
            for position, value in enumerate(frame["thread_id"]):
                if not str(value).strip():
                    raise ValueError(f"{path}, row {position + 2}, field 'thread_id': empty; give a thread id "
                                     "(gh:kind:owner/name#number) or delete the row")
            ids = [str(v).strip() for v in frame["thread_id"]]
        else:
            from secmine.inputs import check_utf8

            data = path.read_bytes()
            check_utf8(path, data, what="id list")
            ids = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
    from secmine.schema import parse_thread_id

    for value in ids:
        parse_thread_id(value)  # raises, naming the bad id
    return list(dict.fromkeys(ids))


def run_rehydrate(
    ids: Sequence[str],
    archive_dir: str | os.PathLike[str],
    config: LiveConfig,
    outputs: StageOutputs,
    *,
    bots: BotFilter | None = None,
    credentials: Credentials | None = None,
    batch: int = 25,
    restart: bool = False,
    clock: Clock | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fetch exactly ``ids`` into an archive, then write them as a corpus (with what was missing)."""
    from secmine.collect.live import ReplayStream, rehydrate

    rehydrate(
        archive_dir,
        ids,
        config,
        credentials=credentials,
        batch=batch,
        restart=restart,
        clock=clock,
        progress=progress,
    )
    replayed = ReplayStream(archive_dir, kind="rehydrate")

    def manifest() -> dict[str, Any]:
        return {
            "source": "rehydrate",
            "archive": Path(archive_dir).as_posix(),
            "runs": replayed.runs,
            "requested": len(ids),
            "missing": sorted(set(replayed.missing)),
            "kind_changed": dict(sorted(replayed.kinds_changed.items())),
        }

    return finalize(replayed.threads(), outputs, bots=bots or BotFilter(), manifest=manifest, models=None)
