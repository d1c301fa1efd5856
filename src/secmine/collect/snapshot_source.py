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
    threads: list[Thread]
    inputs: list[dict[str, Any]] = field(default_factory=list)


def load_snapshot_threads(
    snapshot: str | os.PathLike[str],
    *,
    replication_dir: str | os.PathLike[str] | None = None,
    include_replication: bool = True,
) -> SnapshotInput:
    """Threads of the snapshot, then those of the replication posts (when asked and present).

    ``inputs`` describes each file read (path as given, SHA-256, thread count) for provenance.
    """
    snapshot_path = Path(snapshot)
    threads = list(read_snapshot(snapshot_path, source=f"snapshot:{snapshot_path.name}"))
    inputs: list[dict[str, Any]] = [
        {
            "path": snapshot_path.as_posix(),
            "sha256": sha256_file(snapshot_path),
            "threads": len(threads),
            "kind": "snapshot",
        }
    ]
    if include_replication:
        if replication_dir is None:
            raise ValueError("include_replication is set but no replication_dir was given")
        root = Path(replication_dir)
        posts_file = root / POSTS_RELATIVE
        if not posts_file.is_file():
            raise FileNotFoundError(
                f"{posts_file}: replication posts not found (set collect.include_replication: false to skip them)"
            )
        from secmine.replication import load_posts, posts_as_threads

        posts = load_posts(root)
        extra = posts_as_threads(posts)
        threads.extend(extra)
        inputs.append(
            {
                "path": posts_file.as_posix(),
                "sha256": sha256_file(posts_file),
                "threads": len(extra),
                "kind": "replication",
            }
        )
    return SnapshotInput(threads=threads, inputs=inputs)
