"""The archive of raw API responses: runs, per-page checkpoints, offline replay.

Layout of an archive folder (``collect.archive_dir``, default ``data/raw/archive``)::

    .lock                              held (flock) by the one collector working on the archive
    state.json                         what later runs start from: ``since`` per stream, HF statuses
    runs/0001/manifest.json            the run's plan (parameters, endpoints, since; never tokens), status
    runs/0001/checkpoint.json          how many responses are safely archived (rewritten after each page)
    runs/0001/responses.jsonl.gz       every final response, in request order (a finished run)
    runs/0002/responses.jsonl.gz.partial   the same while a run is unfinished

Each response is one JSON line (method, URL, request body, status, the useful response headers
and the body) compressed as its own gzip member and appended with ``fsync``; only then does the
checkpoint move.  Failed attempts are never archived, and neither is a page whose fetch fails or an
error answer with status 200 (:mod:`secmine.collect.answers`): the checkpoint only ever counts
complete responses, and bytes past it (a page cut off by a kill) are truncated away when the run
resumes.  The one kind of record that is not a response is a *fault* record (``"fault":
"timeout"``): GitHub could not answer a GraphQL page in time and the collector asked a smaller one;
a replay meets the same timeout at the same place and asks the same pages.  ``Authorization``
headers are not archived at all and every known token is masked in what is written.

One collector at a time: :meth:`Archive.lock` takes an exclusive ``flock`` on ``.lock`` (released
by the system when the process dies, even by ``kill -9``); a second collector is refused with the
holder's pid, host and command.  A full disk stops the run with one line naming the file
(:class:`ArchiveWriteError`); what the checkpoint counts is kept, and the rerun resumes.  A run
killed while finishing (archive renamed, manifest not yet complete) is finished by the next run.

**Replay** serves the archived responses, in order, to the same collectors through
:class:`ArchiveTransport`, which checks each request against the archive.  Collectors are
deterministic given the responses, so replaying a run rebuilds exactly what the live run saw.
**Resume** is replay followed by live requests: a restarted run replays its archived pages
(no network), then continues with the first page that was not archived.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import gzip
import hashlib
import json
import logging
import os
import shutil
import socket
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx2

from secmine.collect.answers import check_answer
from secmine.collect.http import ARCHIVED_HEADERS, CollectError, QueryTimeout, safe_url

log = logging.getLogger("secmine.collect")

ARCHIVE_FORMAT = 1
RESPONSES = "responses.jsonl.gz"
PARTIAL = RESPONSES + ".partial"
MANIFEST = "manifest.json"
CHECKPOINT = "checkpoint.json"
STATE = "state.json"
LOCK = ".lock"


class ReplayError(CollectError):
    """The archive does not match the requests a collector makes (or ran out)."""


class ArchiveLocked(CollectError):
    """Another collector is working on the archive."""


class ArchiveWriteError(CollectError):
    """The archive could not be written (a full disk, say); the message names the file."""


def _write_error(path: Path, exc: OSError, records: int) -> ArchiveWriteError:
    reason = exc.strerror or str(exc)
    return ArchiveWriteError(
        f"{path}: {reason} while archiving; the {records} response(s) the checkpoint counts are kept: "
        "free space and rerun the same command to resume"
    )


def reset_hint(root: Path) -> str:
    return f"`secmine collect-reset --archive-dir {root}` (or rerun with --restart)"


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

    def recover(self) -> None:
        """Undo a finish that a kill interrupted: the archive was renamed, the manifest not marked."""
        if (
            not self.complete
            and (self.folder / RESPONSES).is_file()
            and not (self.folder / PARTIAL).exists()
        ):
            os.replace(self.folder / RESPONSES, self.folder / PARTIAL)

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

    def _entry(self, request: httpx2.Request) -> dict[str, Any]:
        if self._handle is None:
            raise CollectError(f"{self.folder}: archive not open for writing")
        body = request.content if request.content else None
        method, url, digest = request_key(request.method, str(request.url), body)
        return {
            "n": self._records,
            "method": method,
            "url": url,
            "request_sha": digest,
            "request": _body_for_archive(body),
        }

    def record_fault(self, request: httpx2.Request, fault: str, reason: str) -> None:
        """Append a fault record (a GraphQL page GitHub could not answer in time)."""
        entry = self._entry(request)
        entry.update(fault=fault, reason=reason)
        self._append(entry)

    def record(self, request: httpx2.Request, response: httpx2.Response) -> None:
        """Append one final response and move the checkpoint past it."""
        entry = self._entry(request)
        entry.update(
            status=response.status_code,
            headers={k: response.headers[k] for k in ARCHIVED_HEADERS if k in response.headers},
        )
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
        self._append(entry)

    def _append(self, entry: dict[str, Any]) -> None:
        line = self._scrub(json.dumps(entry, ensure_ascii=False, sort_keys=True)) + "\n"
        member = gzip.compress(line.encode("utf-8"), compresslevel=6, mtime=0)
        try:
            self._handle.write(member)
            self._handle.flush()
            if self.durable:
                os.fsync(self._handle.fileno())
        except OSError as exc:
            raise _write_error(self.folder / PARTIAL, exc, self._records) from None
        self._offset += len(member)
        self._records += 1
        self._save_checkpoint()

    def _save_checkpoint(self) -> None:
        try:
            _write_json_atomic(
                self.folder / CHECKPOINT,
                {"records": self._records, "offset": self._offset, "position": self._position},
                durable=self.durable,
            )
        except OSError as exc:
            raise _write_error(self.folder / CHECKPOINT, exc, self._records - 1) from None

    def close(self) -> None:
        """Close the archive; a failure to flush is logged, not raised (the checkpoint decides)."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            try:
                handle.close()
            except OSError as exc:
                log.warning("%s: %s while closing the archive", self.folder / PARTIAL, exc.strerror or exc)

    def finish(self, summary: dict[str, Any]) -> None:
        """Mark the run complete: the partial archive becomes ``responses.jsonl.gz``.  Killed (or
        out of space) in between, the next run finds the run unfinished and finishes it
        (:meth:`recover`)."""
        self.close()
        os.replace(self.folder / PARTIAL, self.folder / RESPONSES)
        try:
            self._update_manifest(status="complete", finished_at=_now(), summary=summary)
        except OSError as exc:
            raise _write_error(self.folder / MANIFEST, exc, self._records) from None

    def mark(self, status: str, error: str | None = None) -> None:
        self._update_manifest(status=status, error=error)

    def mark_failed(self, exc: BaseException) -> None:
        """Note the failure in the manifest, best effort: a second failure (a full disk) is
        logged, never raised over the first."""
        try:
            self.mark("failed", error=f"{type(exc).__name__}: {exc}")
        except OSError as second:
            log.warning(
                "%s: could not note the failure in the manifest (%s)", self.folder, second.strerror or second
            )

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
    number = 0
    with open(path, "rb") as raw:
        with gzip.GzipFile(fileobj=_Bounded(raw, limit), mode="rb") as handle:  # type: ignore[arg-type]
            try:
                for number, line in enumerate(handle):
                    if line.strip():
                        try:
                            yield json.loads(line)
                        except ValueError as exc:
                            raise ReplayError(f"{path}: record {number} is not valid JSON ({exc})") from exc
                    number += 1
            except EOFError:
                raise ReplayError(
                    f"{path}: the archive is truncated after {number} complete record(s); an unfinished run "
                    "resumes from its checkpoint, a finished one must be copied again"
                ) from None
            except (gzip.BadGzipFile, zlib.error, OSError) as exc:
                raise ReplayError(f"{path}: damaged archive at record {number} ({exc})") from None


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
    """Archived responses handed out one by one, shared by the transports of one run.

    Each archived answer is checked again (:func:`secmine.collect.answers.check_answer`): an error
    answer that an older collector archived as a success is a :class:`ReplayError` naming the record
    and ``fix``.  A fault record raises the fault the live run met (:class:`QueryTimeout`).
    """

    def __init__(self, records: Iterable[dict[str, Any]], *, where: str, fix: str = "") -> None:
        self._records = iter(records)
        self.where = where
        self.fix = fix
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
                f"or another version of the collector){'; ' + self.fix if self.fix else ''}"
            )
        position = self.served
        self.served += 1
        if "fault" in record:
            reason = record.get("reason") or record["fault"]
            raise QueryTimeout(f"{archived[0]} {archived[1]}: {reason} (archived)")
        response = response_from_record(record, request)
        verdict = check_answer(request, response)
        if verdict is not None:
            raise ReplayError(
                f"{self.where}: record {position} ({archived[0]} {archived[1]}) is an error answer archived "
                f"as a success ({verdict.reason}){'; ' + self.fix if self.fix else ''}"
            )
        return response

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
        if not runs or runs[-1].complete:
            return None
        runs[-1].recover()
        return runs[-1]

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Hold the archive for one collector; a second one is refused naming the holder."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK
        handle = open(path, "a+", encoding="utf-8")
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                try:
                    holder = json.loads(handle.read() or "{}")
                except ValueError:
                    holder = {}
                who = (
                    f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
                    f"`{holder.get('command', '?')}` since {holder.get('since', '?')}"
                )
                raise ArchiveLocked(
                    f"{self.root}: in use by another collector ({who}); wait for it to finish or stop it "
                    "(two collectors on one archive would mix their responses)"
                ) from None
            handle.seek(0)
            handle.truncate()
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "since": _now()}
            handle.write(json.dumps(holder))
            handle.flush()
            try:
                yield
            finally:
                try:
                    handle.seek(0)
                    handle.truncate()  # nothing of the holder stays behind
                    handle.flush()
                except OSError:
                    pass
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        finally:
            handle.close()

    def discard_unfinished(self) -> Run | None:
        """Discard the unfinished run, if any (the holder of the lock calls this)."""
        run = self.unfinished()
        if run is not None:
            log.warning("discarding unfinished run %s", run.folder)
            self.discard(run)
        return run

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
        try:
            _write_json_atomic(self.root / STATE, state, durable=True)
        except OSError as exc:
            raise ArchiveWriteError(
                f"{self.root / STATE}: {exc.strerror or exc} while saving what the next run starts from; "
                "the run itself is archived: free space and rerun the same command"
            ) from None


def _tool_version(package: str) -> str:
    try:
        from importlib.metadata import version

        return f"{package} {version(package)}"
    except Exception:  # pragma: no cover - not installed
        return package
