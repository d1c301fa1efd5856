"""Reader and writer for thread snapshots in JSON lines (``ai_issues/issues.jsonl.gz`` format).

One JSON object a line: ``platform, kind, repo, number, title, body, author, state, created_at,
closed_at, labels, comments [{author, body, created_at}], url`` (``updated_at``, ``source`` and
``repo_type`` optional).  Plain or gzip-compressed.  A bad line raises :class:`SchemaError`
naming the file, the line and the field; so do a truncated or damaged ``.gz`` and bytes that are not
UTF-8.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from secmine.schema import Comment, SchemaError, Thread, normalise_timestamp

REQUIRED_FIELDS = ("platform", "kind", "repo", "number")


def read_snapshot(path: str | os.PathLike[str], *, source: str | None = None) -> Iterator[Thread]:
    """Yield the threads of a JSON-lines snapshot.

    ``source`` is the provenance written into each thread (default: ``snapshot:<file name>``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: snapshot file not found")
    from secmine.inputs import InputError, open_lines

    provenance = source or f"snapshot:{path.name}"
    try:
        with open_lines(path) as lines:
            for line_no, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SchemaError(f"{path}, line {line_no}: not valid JSON ({exc.msg})") from exc
                yield record_to_thread(record, where=f"{path}, line {line_no}", source=provenance)
    except InputError as exc:
        raise SchemaError(str(exc)) from None


def record_to_thread(record: Any, *, where: str, source: str) -> Thread:
    """Convert one snapshot record, with errors that name ``where`` and the field."""
    if not isinstance(record, dict):
        raise SchemaError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for name in REQUIRED_FIELDS:
        if record.get(name) is None or not str(record.get(name)).strip():
            raise SchemaError(f"{where}, field {name!r}: missing")
    number = record["number"]
    if isinstance(number, bool) or not isinstance(number, (int, str)) or not str(number).isdigit():
        raise SchemaError(f"{where}, field 'number': {number!r} is not a non-negative integer")
    comments_raw = record.get("comments") or []
    if not isinstance(comments_raw, list):
        raise SchemaError(f"{where}, field 'comments': expected a list")
    comments = []
    for position, comment in enumerate(comments_raw):
        if not isinstance(comment, dict):
            raise SchemaError(f"{where}, field 'comments[{position}]': expected an object")
        try:
            created = normalise_timestamp(comment.get("created_at"))
        except SchemaError as exc:
            raise SchemaError(f"{where}, field 'comments[{position}].created_at': {exc}") from exc
        comments.append(
            Comment(author=comment.get("author"), body=comment.get("body") or "", created_at=created)
        )
    labels = record.get("labels") or []
    if not isinstance(labels, list):
        raise SchemaError(f"{where}, field 'labels': expected a list of strings")
    stamps = {}
    for name in ("created_at", "updated_at", "closed_at"):
        try:
            stamps[name] = normalise_timestamp(record.get(name))
        except SchemaError as exc:
            raise SchemaError(f"{where}, field {name!r}: {exc}") from exc
    try:
        return Thread(
            platform=str(record["platform"]),
            kind=str(record["kind"]),
            repo=str(record["repo"]),
            number=int(number),
            title=record.get("title") or "",
            body=record.get("body") or "",
            url=record.get("url") or "",
            source=record.get("source") or source,
            author=record.get("author"),
            state=record.get("state"),
            labels=tuple(str(label) for label in labels),
            comments=tuple(comments),
            repo_type=record.get("repo_type"),
            **stamps,
        )
    except SchemaError as exc:
        raise SchemaError(f"{where}, field {exc}") from exc


def write_snapshot(threads: Iterable[Thread], path: str | os.PathLike[str]) -> int:
    """Write threads as (gzip) JSON lines atomically; returns the number written."""
    from secmine.io import atomic_path

    count = 0
    with atomic_path(path) as tmp:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(tmp, "wt", encoding="utf-8") as handle:  # type: ignore[operator]
            for thread in threads:
                record = thread.to_record()
                record.pop("id")
                handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
                count += 1
    return count
