"""The offline corpus: a JSON-lines thread snapshot plus the replication package's posts.

``collect.source: snapshot`` (the default) reads ``ai_issues/issues.jsonl.gz`` with
:func:`secmine.snapshot.read_snapshot` and the thematic-analysis posts of the replication package
with :func:`secmine.replication.load_posts` / :func:`~secmine.replication.posts_as_threads`.  A
thread in both keeps the snapshot copy (full text and comments; the replication copy is one text
cut at Excel's cell limit).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secmine.schema import Thread
from secmine.snapshot import read_snapshot

POSTS_RELATIVE = "theme/data.xlsx"


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class SnapshotInput:
    """The threads to read (an iterator: the snapshot is streamed, never held whole) and, once the
    iterator is exhausted, ``inputs``: each file read with its SHA-256 and thread count."""

    threads: Iterator[Thread]
    inputs: list[dict[str, Any]] = field(default_factory=list)


def load_snapshot_threads(
    snapshot: str | os.PathLike[str],
    *,
    replication_dir: str | os.PathLike[str] | None = None,
    include_replication: bool = True,
) -> SnapshotInput:
    """Threads of the snapshot, then those of the replication posts (when asked and present).

    The threads are yielded one by one while the snapshot is read; ``inputs`` describes each file
    read (path as given, SHA-256, thread count) for provenance, complete once ``threads`` is
    exhausted.  Missing files are reported before anything is read.
    """
    snapshot_path = Path(snapshot)
    if not snapshot_path.is_file():
        raise FileNotFoundError(f"{snapshot_path}: snapshot file not found")
    posts_file = None
    if include_replication:
        if replication_dir is None:
            raise ValueError("include_replication is set but no replication_dir was given")
        posts_file = Path(replication_dir) / POSTS_RELATIVE
        if not posts_file.is_file():
            raise FileNotFoundError(
                f"{posts_file}: replication posts not found (set collect.include_replication: false to skip them)"
            )
    inputs: list[dict[str, Any]] = []

    def threads() -> Iterator[Thread]:
        count = 0
        for thread in read_snapshot(snapshot_path, source=f"snapshot:{snapshot_path.name}"):
            count += 1
            yield thread
        inputs.append(
            {"path": snapshot_path.as_posix(), "sha256": sha256_file(snapshot_path), "threads": count, "kind": "snapshot"}
        )
        if posts_file is not None:
            from secmine.replication import load_posts, posts_as_threads

            extra = posts_as_threads(load_posts(posts_file.parents[1]))
            yield from extra
            inputs.append(
                {"path": posts_file.as_posix(), "sha256": sha256_file(posts_file), "threads": len(extra),
                 "kind": "replication"}
            )

    return SnapshotInput(threads=threads(), inputs=inputs)
