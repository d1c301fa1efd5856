"""The archive of raw API responses: runs, per-page checkpoints, offline replay.

Layout of an archive folder (``collect.archive_dir``, default ``data/raw/archive``)::

    state.json                         what later runs start from: ``since`` per stream, HF statuses
    runs/0001/manifest.json            the run's plan (parameters, endpoints, since; never tokens), status
    runs/0001/checkpoint.json          how many responses are safely archived (rewritten after each page)
    runs/0001/responses.jsonl.gz       every final response, in request order (a finished run)
    runs/0002/responses.jsonl.gz.partial   the same while a run is unfinished

Each response is one JSON line (method, URL, request body, status, the useful response headers
and the body) compressed as its own gzip member and appended with ``fsync``; only then does the
checkpoint move.  Failed attempts are never archived, and neither is a page whose fetch fails: the
checkpoint only ever counts complete responses, and bytes past it (a page cut off by a kill) are
truncated away when the run resumes.  ``Authorization`` headers are not archived at all and every
known token is masked in what is written.

**Replay** serves the archived responses, in order, to the same collectors through
:class:`ArchiveTransport`, which checks each request against the archive.  Collectors are
deterministic given the responses, so replaying a run rebuilds exactly what the live run saw.
**Resume** is replay followed by live requests: a restarted run replays its archived pages
(no network), then continues with the first page that was not archived.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx2

from secmine.collect.http import ARCHIVED_HEADERS, CollectError, safe_url

ARCHIVE_FORMAT = 1
RESPONSES = "responses.jsonl.gz"
PARTIAL = RESPONSES + ".partial"
MANIFEST = "manifest.json"
CHECKPOINT = "checkpoint.json"
STATE = "state.json"


class ReplayError(CollectError):
    """The archive does not match the requests a collector makes (or ran out)."""


def _write_json_atomic(path: Path, obj: Any, *, durable: bool = False) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    data = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_key(method: str, url: str, body: bytes | None) -> tuple[str, str, str]:
    digest = hashlib.sha256(body or b"").hexdigest()[:16]
    return method.upper(), safe_url(url), digest


def _body_for_archive(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


class Run:
    """One collection run in an archive folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.number = int(folder.name)
        self._handle: Any = None
        self._secrets: list[str] = []
        self._records = 0
        self._offset = 0
        self._position: dict[str, Any] = {}
        self.durable = True

    # -- metadata ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"run-{self.number:04d}"

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))

    def _update_manifest(self, **changes: Any) -> None:
        manifest = self.manifest
        manifest.update(changes)
        _write_json_atomic(self.folder / MANIFEST, manifest, durable=True)

    @property
    def plan(self) -> dict[str, Any]:
        return self.manifest["plan"]

    @property
    def complete(self) -> bool:
        return self.manifest.get("status") == "complete" and (self.folder / RESPONSES).is_file()

    @property
    def checkpoint(self) -> dict[str, Any]:
        path = self.folder / CHECKPOINT
        if not path.is_file():
            return {"records": 0, "offset": 0, "position": {}}
        return json.loads(path.read_text(encoding="utf-8"))

    @property
    def responses_path(self) -> Path:
        return self.folder / (RESPONSES if (self.folder / RESPONSES).is_file() else PARTIAL)

    # -- writing -----------------------------------------------------------------------------

    def open_for_append(self, secrets: Iterable[str] = ()) -> None:
        """Open the partial archive for new responses, cutting off anything past the checkpoint."""
        if self.complete:
            raise CollectError(f"{self.folder}: run is complete; start a new run")
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        checkpoint = self.checkpoint
        self._records = int(checkpoint.get("records", 0))
        self._offset = int(checkpoint.get("offset", 0))
        self._position = dict(checkpoint.get("position") or {})
        path = self.folder / PARTIAL
        if not path.exists():
            path.touch()
        size = path.stat().st_size
        if size < self._offset:
            raise CollectError(f"{path}: {size} bytes on disk but the checkpoint counts {self._offset}")
        self._handle = open(path, "r+b")
        self._handle.truncate(self._offset)
        self._handle.seek(self._offset)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def note(self, **position: Any) -> None:
        """Where the crawl is (stream, cursor), saved with the next checkpoint."""
        self._position.update(position)

    def record(self, request: httpx2.Request, response: httpx2.Response) -> None:
        """Append one final response and move the checkpoint past it."""
        if self._handle is None:
            raise CollectError(f"{self.folder}: archive not open for writing")
        body = request.content if request.content else None
        method, url, digest = request_key(request.method, str(request.url), body)
        entry: dict[str, Any] = {
            "n": self._records,
            "method": method,
            "url": url,
            "request_sha": digest,
            "request": _body_for_archive(body),
            "status": response.status_code,
            "headers": {k: response.headers[k] for k in ARCHIVED_HEADERS if k in response.headers},
        }
        content = response.content
        if "json" in response.headers.get("content-type", "").lower():
            try:
                entry["json"] = json.loads(content) if content else None
            except ValueError:
                entry["text"] = content.decode("utf-8", errors="replace")
        else:
            try:
                entry["text"] = content.decode("utf-8")
            except UnicodeDecodeError:
                entry["base64"] = base64.b64encode(content).decode("ascii")
        line = self._scrub(json.dumps(entry, ensure_ascii=False, sort_keys=True)) + "\n"
        member = gzip.compress(line.encode("utf-8"), compresslevel=6, mtime=0)
        self._handle.write(member)
        self._handle.flush()
        if self.durable:
            os.fsync(self._handle.fileno())
        self._offset += len(member)
        self._records += 1
        self._save_checkpoint()

    def _save_checkpoint(self) -> None:
        _write_json_atomic(
            self.folder / CHECKPOINT,
            {"records": self._records, "offset": self._offset, "position": self._position},
            durable=self.durable,
        )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def finish(self, summary: dict[str, Any]) -> None:
        """Mark the run complete: the partial archive becomes ``responses.jsonl.gz``."""
        self.close()
        os.replace(self.folder / PARTIAL, self.folder / RESPONSES)
        self._update_manifest(status="complete", finished_at=_now(), summary=summary)

    def mark(self, status: str, error: str | None = None) -> None:
        self._update_manifest(status=status, error=error)

    # -- reading -----------------------------------------------------------------------------

    def records(self) -> Iterator[dict[str, Any]]:
        """The archived responses in order (an unfinished run: up to its checkpoint)."""
        path = self.responses_path
        limit = None if path.name == RESPONSES else int(self.checkpoint.get("offset", 0))
        yield from read_records(path, limit=limit)


class _Bounded:
    """A read-only view of the first ``limit`` bytes of a binary file."""

    def __init__(self, handle: Any, limit: int | None) -> None:
        self.handle = handle
        self.left = limit

    def read(self, size: int = -1) -> bytes:
        if self.left is None:
            return self.handle.read(size)
        if size < 0 or size > self.left:
            size = self.left
        data = self.handle.read(size)
        self.left -= len(data)
        return data


def read_records(path: Path, *, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Decode a file of gzip members holding JSON lines, up to byte ``limit``."""
    with open(path, "rb") as raw:
        with gzip.GzipFile(fileobj=_Bounded(raw, limit), mode="rb") as handle:  # type: ignore[arg-type]
            try:
                for number, line in enumerate(handle):
                    if line.strip():
                        try:
                            yield json.loads(line)
                        except ValueError as exc:
                            raise ReplayError(f"{path}: record {number} is not valid JSON ({exc})") from exc
            except EOFError as exc:
                raise ReplayError(f"{path}: archive ends inside a record") from exc


def response_from_record(record: dict[str, Any], request: httpx2.Request) -> httpx2.Response:
    headers = dict(record.get("headers") or {})
    if "json" in record:
        content = json.dumps(record["json"], ensure_ascii=False).encode("utf-8")
    elif "base64" in record:
        content = base64.b64decode(record["base64"])
    else:
        content = (record.get("text") or "").encode("utf-8")
    return httpx2.Response(int(record["status"]), headers=headers, content=content, request=request)


class ReplaySource:
    """Archived responses handed out one by one, shared by the transports of one run."""

    def __init__(self, records: Iterable[dict[str, Any]], *, where: str) -> None:
        self._records = iter(records)
        self.where = where
        self.served = 0
        self.exhausted = False

    def next_for(self, request: httpx2.Request) -> httpx2.Response | None:
        if self.exhausted:
            return None
        record = next(self._records, None)
        if record is None:
            self.exhausted = True
            return None
        request.read()
        key = request_key(request.method, str(request.url), request.content or None)
        archived = (record["method"], record["url"], record["request_sha"])
        if key != archived:
            raise ReplayError(
                f"{self.where}: response {self.served} of the archive is {archived[0]} {archived[1]}, "
                f"but the collector asked for {key[0]} {key[1]} (the archive belongs to other parameters "
                "or another version of the collector)"
            )
        self.served += 1
        return response_from_record(record, request)

    def finish(self) -> None:
        """Check that the collector used every archived response."""
        if not self.exhausted and next(self._records, None) is not None:
            raise ReplayError(f"{self.where}: the archive holds more responses than the collector asked for")


class ArchiveTransport(httpx2.BaseTransport):
    """Serves archived responses; when they run out, goes on ``live`` (resume) or fails (replay)."""

    def __init__(self, source: ReplaySource, live: httpx2.BaseTransport | None = None) -> None:
        self.source = source
        self.live = live

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self.source.next_for(request)
        if response is not None:
            return response
        if self.live is None:
            raise ReplayError(
                f"{self.source.where}: the archive ends after {self.source.served} responses but the "
                f"collector asked for {request.method} {safe_url(request.url)}"
            )
        return self.live.handle_request(request)

    @property
    def replaying(self) -> bool:
        return not self.source.exhausted

    def close(self) -> None:
        """Shared between clients; nothing to close."""


@dataclass
class Archive:
    """An archive folder: its runs and the state later runs start from."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def ensure(self) -> None:
        (self.root / "runs").mkdir(parents=True, exist_ok=True)
        if not (self.root / STATE).is_file():
            _write_json_atomic(
                self.root / STATE, {"format": ARCHIVE_FORMAT, "runs": [], "since": {}, "hf_known": {}}
            )

    def runs(self) -> list[Run]:
        folder = self.root / "runs"
        if not folder.is_dir():
            return []
        return [
            Run(p)
            for p in sorted(folder.iterdir())
            if p.is_dir() and p.name.isdigit() and (p / MANIFEST).is_file()
        ]

    def complete_runs(self) -> list[Run]:
        return [r for r in self.runs() if r.complete]

    def unfinished(self) -> Run | None:
        runs = self.runs()
        return runs[-1] if runs and not runs[-1].complete else None

    def new_run(self, plan: dict[str, Any]) -> Run:
        self.ensure()
        runs = self.runs()
        number = (runs[-1].number + 1) if runs else 1
        folder = self.root / "runs" / f"{number:04d}"
        folder.mkdir()
        from secmine import __name__ as package

        _write_json_atomic(
            folder / MANIFEST,
            {
                "format": ARCHIVE_FORMAT,
                "run": number,
                "status": "running",
                "plan": plan,
                "started_at": _now(),
                "tool": _tool_version(package),
            },
            durable=True,
        )
        (folder / PARTIAL).touch()
        _write_json_atomic(folder / CHECKPOINT, {"records": 0, "offset": 0, "position": {}}, durable=True)
        return Run(folder)

    def discard(self, run: Run) -> None:
        shutil.rmtree(run.folder)

    @property
    def state(self) -> dict[str, Any]:
        path = self.root / STATE
        if not path.is_file():
            return {"format": ARCHIVE_FORMAT, "runs": [], "since": {}, "hf_known": {}}
        return json.loads(path.read_text(encoding="utf-8"))

    def write_state(self, state: dict[str, Any]) -> None:
        self.ensure()
        _write_json_atomic(self.root / STATE, state, durable=True)


def _tool_version(package: str) -> str:
    try:
        from importlib.metadata import version

        return f"{package} {version(package)}"
    except Exception:  # pragma: no cover - not installed
        return package
