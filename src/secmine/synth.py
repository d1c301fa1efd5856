"""SYNTHETIC scale corpora: the snapshot replicated K times, for benchmarks and scale tests only.

``secmine synth --factor K --out DIR`` writes ``DIR/issues.jsonl.gz`` (``--plain``: ``issues.jsonl``), a thread snapshot in the
``ai_issues/issues.jsonl.gz`` format that the ``collect`` stage reads (``--snapshot``), then (unless
``--no-corpus``) the corpus built from it by the collect stage's own streaming path
(``DIR/corpus``, the collect stage's layout) and ``DIR/synth.json`` (how it was made).  **The
threads are not real**: every number measured on them is about the pipeline's cost, never about
security in AI projects.

Replica 0 is the snapshot itself, line for line.  Replica ``r >= 1`` of a thread:

* lives in a repository of its own, ``owner/name-s<r>`` (so ids ``gh:kind:owner/name-s<r>#number``
  and URLs are unique; the number is kept);
* is moved back in time by a whole number of days drawn uniformly from ``[0, 365 * years]`` (every
  timestamp of the thread and its comments by the same shift), spreading the corpus over the years;
* gets a comment count from a long-tailed (Zipf, exponent :data:`ZIPF_EXPONENT`) draw capped at
  ``max_comments`` (hundreds): its own comments first, then comments drawn from a fixed pool of the
  snapshot's first :data:`POOL_SIZE` comments, an hour apart.

Titles and bodies are kept, so keyword and classifier rates stay those of the snapshot.  The
snapshot is read once per replica and the output written as it is made (bounded memory: the pool
and one line at a time); a seeded NumPy generator makes the bytes depend only on the inputs, the
factor, the limit and the seed (the gzip header has no timestamp).
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from secmine.errors import SecmineError

ZIPF_EXPONENT = 2.0
POOL_SIZE = 5_000
SNAPSHOT_NAME = "issues.jsonl.gz"
PLAIN_NAME = "issues.jsonl"
CORPUS_NAME = "corpus"
MANIFEST_NAME = "synth.json"
NOTE = "SYNTHETIC: the snapshot replicated for scale benchmarks; not data about real projects"


class SynthError(SecmineError, ValueError):
    """A synthetic-corpus setting or input is unusable."""


@dataclass(frozen=True)
class SynthConfig:
    """How a synthetic snapshot is made (recorded in ``synth.json``)."""

    factor: int = 4  # replicas of the snapshot (1 = the snapshot itself)
    limit: int = 0  # stop after this many threads (0 = factor x the snapshot)
    seed: int = 0
    years: int = 4  # replicas are moved back by up to this many years
    max_comments: int = 300  # the long tail of comment counts is cut here

    def check(self) -> None:
        if self.factor < 1:
            raise SynthError(f"--factor {self.factor}: give a whole number of replicas, 1 or more")
        if self.limit < 0:
            raise SynthError(f"--threads {self.limit}: give 0 (no limit) or a positive count")
        if self.years < 0 or self.max_comments < 0:
            raise SynthError("--years and --max-comments must be 0 or more")


def _count(path: Path) -> int:
    from secmine.inputs import open_lines

    with open_lines(path) as handle:
        return sum(1 for line in handle if line.strip())


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import orjson

    from secmine.inputs import open_lines

    with open_lines(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise SynthError(f"{path}, line {line_no}: not valid JSON ({exc})") from exc
            if not isinstance(record, dict) or not record.get("repo"):
                raise SynthError(f"{path}, line {line_no}, field 'repo': missing; fix or delete the line")
            yield line_no, record


def _shift(stamp: Any, days: int) -> Any:
    if not stamp or not days:
        return stamp
    text = str(stamp)
    if len(text) == 20 and text[-1] == "Z":  # the snapshot's form, 2024-04-04T01:12:57Z
        try:
            return (datetime.fromisoformat(text[:19]) - timedelta(days=days)).isoformat() + "Z"
        except ValueError:
            return stamp
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return stamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    shifted = (moment - timedelta(days=days)).astimezone(UTC)
    return shifted.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rename_url(url: str, repo: str, new_repo: str) -> str:
    if url and f"/{repo}/" in url:
        return url.replace(f"/{repo}/", f"/{new_repo}/", 1)
    if url and url.endswith(f"/{repo}"):
        return url[: -len(repo)] + new_repo
    return url


def replicate(
    record: dict[str, Any],
    replica: int,
    *,
    days: int,
    comments: int,
    pool: list[dict[str, Any]],
    pool_picks: list[int],
) -> dict[str, Any]:
    """Replica ``replica`` (>= 1) of one snapshot record: renamed repository, shifted dates,
    ``comments`` comments (its own first, then ``pool[pool_picks[i]]``)."""
    repo = str(record["repo"])
    new_repo = f"{repo}-s{replica}"
    out = dict(record)
    out["repo"] = new_repo
    out["url"] = _rename_url(str(record.get("url") or ""), repo, new_repo)
    for name in ("created_at", "updated_at", "closed_at"):
        if name in out:
            out[name] = _shift(out[name], days)
    own = list(record.get("comments") or [])[:comments]
    made = [{**c, "created_at": _shift(c.get("created_at"), days)} if isinstance(c, dict) else c for c in own]
    start = out.get("created_at")
    for i, pick in enumerate(pool_picks[: max(0, comments - len(made))]):
        extra = dict(pool[pick])
        extra["created_at"] = _later(start, len(made) + i + 1)
        made.append(extra)
    out["comments"] = made
    return out


def _later(stamp: Any, hours: int) -> Any:
    if not stamp:
        return None
    text = str(stamp)
    if len(text) == 20 and text[-1] == "Z":
        try:
            return (datetime.fromisoformat(text[:19]) + timedelta(hours=hours)).isoformat() + "Z"
        except ValueError:
            return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def synthesize(
    snapshot: str | os.PathLike[str],
    out_file: str | os.PathLike[str],
    config: SynthConfig = SynthConfig(),
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the synthetic snapshot to ``out_file`` (``.gz``: gzip level 1, no timestamp; else
    plain JSON lines), atomically.  Returns counts: threads, comments, per replica."""
    import numpy as np
    import orjson
    from tqdm.auto import tqdm

    from secmine.io import atomic_path

    config.check()
    source = Path(snapshot)
    if not source.is_file():
        raise SynthError(f"{source}: snapshot not found", hint="run `secmine external-link` or pass --snapshot")
    base = _count(source)
    if base == 0:
        raise SynthError(f"{source}: no threads to replicate")
    total = base * config.factor if not config.limit else min(config.limit, base * config.factor)
    replicas = math.ceil(total / base)
    rng = np.random.default_rng(config.seed)
    pool: list[dict[str, Any]] = []
    written = comments = 0
    target = Path(out_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp, open(tmp, "wb") as raw:
        handle: Any = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0)
            if target.name.endswith(".gz")
            else raw
        )
        try:
            bar = tqdm(total=total, desc="synth", unit="thread", disable=not progress, mininterval=5)
            for replica in range(replicas):
                for _, record in _lines(source):
                    if written >= total:
                        break
                    if replica == 0:
                        out = record
                        for comment in record.get("comments") or []:
                            if len(pool) < POOL_SIZE and isinstance(comment, dict):
                                pool.append({"author": comment.get("author"), "body": comment.get("body") or ""})
                    else:
                        days = int(rng.integers(0, 365 * config.years + 1)) if config.years else 0
                        count = min(config.max_comments, int(rng.zipf(ZIPF_EXPONENT)) - 1)
                        extra = max(0, count - len(record.get("comments") or []))
                        picks = rng.integers(0, len(pool), size=extra).tolist() if (extra and pool) else []
                        if not pool:
                            count = min(count, len(record.get("comments") or []))
                        out = replicate(record, replica, days=days, comments=count, pool=pool, pool_picks=picks)
                    comments += len(out.get("comments") or [])
                    handle.write(orjson.dumps(out) + b"\n")
                    written += 1
                    bar.update(1)
            bar.close()
        finally:
            if handle is not raw:
                handle.close()
    return {
        "note": NOTE,
        "snapshot": source.as_posix(),
        "snapshot_threads": base,
        "threads": written,
        "comments": comments,
        "replicas": replicas,
        "config": asdict(config),
    }


def run_synth(
    snapshot: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: SynthConfig = SynthConfig(),
    *,
    corpus: bool = True,
    plain: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """``secmine synth``: the synthetic snapshot in ``out_dir`` (``issues.jsonl.gz``, or with
    ``plain`` an uncompressed ``issues.jsonl``: faster to write and read, about 4x the disk), and
    (``corpus``) the corpus the collect stage builds from it (without the replication posts), with
    ``synth.json``."""
    from secmine.io import write_json

    folder = Path(out_dir)
    name = PLAIN_NAME if plain else SNAPSHOT_NAME
    stats = synthesize(snapshot, folder / name, config, progress=progress)
    stats["file"] = name
    if corpus:
        from secmine.collect.stage import StageOutputs, run_snapshot

        outputs = StageOutputs(out=str(folder / CORPUS_NAME), metrics=str(folder / "collect.json"), summary=None)
        metrics = run_snapshot(folder / name, outputs, include_replication=False, progress=progress)
        stats["corpus_threads"] = metrics["threads"]
    write_json(folder / MANIFEST_NAME, stats)
    return stats


def register(app: Any) -> None:
    """Add ``secmine synth`` to the command line."""

    @app.command("synth", rich_help_panel="Benchmarks")
    def synth(
        factor: Annotated[int, typer.Option(help="replicas of the snapshot (1 = the snapshot itself)")] = 4,
        out: Annotated[Path | None, typer.Option(help="output folder (default scratch/synth/x<factor>)")] = None,
        threads: Annotated[int, typer.Option(help="stop at this many threads (e.g. 2200000 with --factor 109)")] = 0,
        seed: Annotated[int, typer.Option(help="seed of the dates and comment counts")] = 0,
        years: Annotated[int, typer.Option(help="replicas move back in time by up to this many years")] = 4,
        max_comments: Annotated[int, typer.Option(help="cap of the long-tailed comment counts")] = 300,
        snapshot: Annotated[Path, typer.Option(help="snapshot to replicate")] = Path(
            "data/external/ai_issues/issues.jsonl.gz"
        ),
        corpus: Annotated[bool, typer.Option(help="also build the corpus from it (the collect stage's path)")] = True,
        plain: Annotated[bool, typer.Option(help="write issues.jsonl uncompressed (faster; ~4x the disk)")] = False,
        progress: Annotated[bool, typer.Option(help="show progress")] = True,
    ) -> None:
        """SYNTHETIC corpus for scale benchmarks: the snapshot replicated with unique ids and URLs,
        dates spread over the years and long-tailed comment counts (not real data)."""
        config = SynthConfig(factor=factor, limit=threads, seed=seed, years=years, max_comments=max_comments)
        folder = out or Path("scratch/synth") / f"x{factor}"
        stats = run_synth(snapshot, folder, config, corpus=corpus, plain=plain, progress=progress)
        typer.echo(json.dumps({k: v for k, v in stats.items() if k != "config"}, indent=2, sort_keys=True))
