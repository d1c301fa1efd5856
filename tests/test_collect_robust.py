"""A crawl that never loses data quietly (issue 13) and adapts its GraphQL pages (issue 16).

Each test reproduces one failure a careful user met against the fake API: requests that
huggingface_hub makes of its own, partial or error answers with status 200, transient
``repository: null``, closed Hugging Face discussions with new comments, a second collector on
the same archive, a full disk, a run that cannot be discarded under DVC, GraphQL pages too big
to answer in time.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import signal
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from test_collect_live import (
    GH_TOKENS,
    HF_TOKEN,
    LINKED_HF,
    _cli,
    _config,
    _credentials,
    _outputs,
    _params_file,
    corpus_threads,
    expected_threads,
)
from typer.testing import CliRunner

from secmine.collect.archive import Archive, read_records
from secmine.collect.http import CollectError, FetchError
from secmine.collect.live import crawl
from secmine.collect.stage import run_live, run_replay
from secmine_testing.clock import FakeClock
from secmine_testing.fake_api import FakeAPI, FakeData, iso, small_world


@pytest.fixture
def world() -> FakeData:
    return small_world(seed=3)


def _records(archive: Path) -> list[dict[str, Any]]:
    """Every archived record of every run (complete or not, up to its checkpoint)."""
    out: list[dict[str, Any]] = []
    for run in Archive(archive).runs():
        out.extend(run.records())
    return out


def _answers(archive: Path) -> list[dict[str, Any]]:
    return [r for r in _records(archive) if "status" in r]


def _crawl(api: FakeAPI, archive: Path, clock: FakeClock | None = None, **changes: Any) -> Any:
    return crawl(
        archive,
        _config(api, **changes),
        credentials=_credentials(),
        clock=clock or FakeClock(0),
        progress=False,
        durable=False,
    )


def _collect_args(api: FakeAPI, tmp_path: Path, archive: Path) -> list[str]:
    return [
        "collect", "--source", "live", "--hf-endpoint", api.url, "--github-endpoint", api.url,
        "--archive-dir", str(archive), "--corpus", str(tmp_path / "out" / "corpus"),
        "--metrics", str(tmp_path / "out" / "metrics.json"), "--tables-dir", str(tmp_path / "out" / "tables"),
        "--params", str(_params_file(tmp_path)),
    ]  # fmt: skip


ENV = {"GITHUB_TOKEN": ",".join(GH_TOKENS), "HF_TOKEN": HF_TOKEN}


# -- 1. huggingface_hub makes no request of its own ---------------------------------------------


def test_hub_requests_of_its_own_never_reach_the_archive(
    world: FakeData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HF_HUB_OFFLINE and HF_HUB_DISABLE_TELEMETRY unset (as a user running the README's
    command has them), huggingface_hub asks ``{HF_ENDPOINT}/api/agent-harnesses`` through whatever
    client it is given.  Only the collector's requests may be sent, archived or replayed: a killed
    crawl resumes, and the archive replays, to the corpus of an uninterrupted crawl."""
    for name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no cached registry
    archive = tmp_path / "archive"
    with FakeAPI(world) as api:
        monkeypatch.setenv("HF_ENDPOINT", api.url)  # huggingface_hub's own requests would land here
        args = _collect_args(api, tmp_path, archive)
        process = _cli(args, ENV)

        def kill(number: int) -> None:
            if number == 12:
                os.kill(process.pid, signal.SIGKILL)

        api.on_request = kill
        process.communicate(timeout=120)
        assert process.returncode == -signal.SIGKILL
        api.on_request = None
        process = _cli(args, ENV)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        assert not [r.path for r in api.log if "agent-harnesses" in r.path]
    assert not [r["url"] for r in _records(archive) if "agent-harnesses" in r["url"]]
    assert corpus_threads(tmp_path / "out" / "corpus") == expected_threads(world)
    process = _cli(["replay", "--archive-dir", str(archive), "--corpus", str(tmp_path / "replayed")], ENV)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert corpus_threads(tmp_path / "replayed") == expected_threads(world)


# -- 2. a partial GraphQL answer (one null node) ------------------------------------------------


def test_a_null_node_is_refetched_not_skipped(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as api:
        api.add_fault("null_node", "RepoIssues", times=1)
        _crawl(api, tmp_path / "archive")
        assert all(f.times == 0 for f in api.faults)
    run_replay(tmp_path / "archive", _outputs(tmp_path))
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)
    graphql = [r for r in _answers(tmp_path / "archive") if r["url"].endswith("/graphql")]
    assert graphql
    for record in graphql:
        nodes = record["json"]["data"]["repository"]
        for connection in (nodes or {}).values():
            assert None not in (connection or {}).get("nodes", []), record["request"]["operationName"]
        assert all(e.get("type") == "NOT_FOUND" for e in record["json"].get("errors") or [])


def test_a_null_node_that_persists_stops_the_crawl_naming_the_url(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as api:
        api.add_fault("null_node", "RepoIssues", times=100)
        with pytest.raises(FetchError, match=r"POST http://127\.0\.0\.1:\d+/graphql \(RepoIssues\).*partial"):
            _crawl(api, tmp_path / "archive")
    assert Archive(tmp_path / "archive").unfinished() is not None


# -- 3. a transient repository: null ----------------------------------------------------------


def test_a_transient_repository_null_is_retried(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as api:
        api.add_fault("repo_null", "RepoIssues", times=2)
        _crawl(api, tmp_path / "archive")
        assert all(f.times == 0 for f in api.faults)
    run_replay(tmp_path / "archive", _outputs(tmp_path))
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)


def test_a_lasting_service_unavailable_fails_the_command(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as api:
        api.add_fault("repo_null", "RepoIssues", times=1000)
        process = _cli(_collect_args(api, tmp_path, tmp_path / "archive"), ENV)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "SERVICE_UNAVAILABLE" in errors[0] and "/graphql" in errors[0]
    assert not (tmp_path / "out" / "corpus").exists()


# -- 4. error answers with status 200 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "where"),
    [
        ("data_null", "RepoPullRequests"),
        ("html", "RepoIssues"),
        ("html", "/api/models"),
        ("empty", "/discussions"),
        ("empty", "RepoDiscussions"),
        ("empty", "README.md"),
        ("html", "README.md"),
    ],
)
def test_error_answers_with_status_200_are_retried_and_never_archived(
    world: FakeData, tmp_path: Path, fault: str, where: str
) -> None:
    with FakeAPI(world) as api:
        api.add_fault(fault, where, times=2)
        _crawl(api, tmp_path / "archive")
        assert all(f.times == 0 for f in api.faults)
    for record in _answers(tmp_path / "archive"):
        assert "html" not in (record["headers"].get("content-type") or ""), record["url"]
        if record["url"].endswith("/graphql"):
            assert isinstance(record.get("json"), dict) and record["json"].get("data") is not None
        if "/api/" in record["url"]:
            assert record.get("json") is not None or record.get("text"), record["url"]
    run_replay(tmp_path / "archive", _outputs(tmp_path))
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)


def test_a_lasting_html_answer_stops_naming_the_url(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as api:
        api.add_fault("html", "/api/models", times=1000)
        with pytest.raises(FetchError) as info:
            _crawl(api, tmp_path / "archive")
        url = api.url
    message = str(info.value)
    assert f"GET {url}/api/models" in message and "HTML" in message
    assert "rerun" in message  # the fix


def test_restart_discards_an_unfinished_run_with_the_same_parameters(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as api:
        api.add_fault("502", "RepoPullRequests", times=1000)
        with pytest.raises(FetchError):
            _crawl(api, tmp_path / "archive")
        api.faults.clear()
        result = crawl(
            tmp_path / "archive",
            _config(api),
            credentials=_credentials(),
            clock=FakeClock(0),
            restart=True,
            progress=False,
            durable=False,
        )
    assert not result.resumed and result.replayed_responses == 0
    assert [r.name for r in Archive(tmp_path / "archive").runs()] == [result.run]


def test_an_archived_error_answer_is_named_with_the_fix(world: FakeData, tmp_path: Path) -> None:
    """An archive written by an older collector holds an error answer as a success: resuming it
    says which record it is and how to discard the run, instead of failing on it forever."""
    archive = tmp_path / "archive"
    with FakeAPI(world) as api:
        api.add_fault("502", "RepoPullRequests", times=1000)
        with pytest.raises(FetchError):
            _crawl(api, archive)
        api.faults.clear()
        run = Archive(archive).unfinished()
        assert run is not None
        # what the old collector archived for a GraphQL 200 with data: null
        records = list(run.records())
        index = next(i for i, r in enumerate(records) if r["url"].endswith("/graphql"))
        records[index]["json"] = {"data": None, "errors": [{"type": "INTERNAL", "message": "Something went wrong."}]}
        data = b"".join(gzip.compress((json.dumps(r) + "\n").encode(), mtime=0) for r in records)
        (run.folder / "responses.jsonl.gz.partial").write_bytes(data)
        (run.folder / "checkpoint.json").write_text(
            json.dumps({"records": len(records), "offset": len(data), "position": {}})
        )
        with pytest.raises(CollectError) as info:
            _crawl(api, archive)
    message = str(info.value)
    assert f"record {index}" in message and "collect-reset" in message and str(archive) in message


# -- 5. new comments on closed Hugging Face discussions -----------------------------------------


def test_incremental_run_fetches_new_comments_on_closed_discussions(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as api:
        _crawl(api, tmp_path / "archive")
        late = datetime(2030, 1, 1, tzinfo=timezone.utc)
        changed = 0
        for model in world.hf["model"]:
            if model["id"] not in LINKED_HF:
                continue
            for discussion in model["discussions"]:
                if discussion["status"] == "closed":
                    discussion["events"].append(
                        {
                            "type": "comment",
                            "author": "latecomer",
                            "created_at": iso(late + timedelta(hours=changed)),
                            "text": f"still happening {changed}",
                        }
                    )
                    changed += 1
        assert changed >= 2
        _crawl(api, tmp_path / "archive")
    run_replay(tmp_path / "archive", _outputs(tmp_path))
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)


# -- 7. the collector's own files are never half-written ----------------------------------------


def test_a_kill_while_finishing_a_run_leaves_a_run_that_completes(
    world: FakeData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between renaming the archive and marking the run complete: the next run finishes it."""
    from secmine.collect import archive as archive_module

    original = archive_module.Run._update_manifest

    def dies(self: Any, **changes: Any) -> None:
        if changes.get("status") == "complete":
            raise KeyboardInterrupt("killed while finishing")
        original(self, **changes)

    with FakeAPI(world) as api:
        monkeypatch.setattr(archive_module.Run, "_update_manifest", dies)
        with pytest.raises(KeyboardInterrupt):
            _crawl(api, tmp_path / "archive")
        monkeypatch.setattr(archive_module.Run, "_update_manifest", original)
        before = api.request_count
        result = _crawl(api, tmp_path / "archive")
        assert result.resumed and api.request_count == before  # everything was archived
    run_replay(tmp_path / "archive", _outputs(tmp_path))
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)


# -- 8. one collector per archive ---------------------------------------------------------------


def test_a_second_collector_is_refused_naming_the_first(world: FakeData, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    with FakeAPI(world) as api:
        paused, release = threading.Event(), threading.Event()

        def pause(number: int) -> None:
            if number == 5:
                paused.set()
                release.wait(60)

        api.on_request = pause
        process = _cli(_collect_args(api, tmp_path, archive), ENV)
        try:
            assert paused.wait(60)
            with pytest.raises(CollectError) as info:
                _crawl(api, archive)
        finally:
            release.set()
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    message = str(info.value)
    assert "in use" in message and f"pid {process.pid}" in message
    assert corpus_threads(tmp_path / "out" / "corpus") == expected_threads(world)


# -- 10. a full disk; discarding a run without --restart ----------------------------------------


def test_a_full_disk_is_reported_not_hidden_and_the_crawl_resumes(
    world: FakeData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secmine.collect import archive as archive_module

    state = {"records": 0, "full": True}
    real_fsync = os.fsync
    real_write_json = archive_module._write_json_atomic

    def fsync(fd: int) -> None:
        state["records"] += 1
        if state["full"] and state["records"] > 15:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    def write_json(path: Path, obj: Any, *, durable: bool = False) -> None:
        if state["full"] and state["records"] > 15:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_json(path, obj, durable=durable)

    monkeypatch.setattr(archive_module.os, "fsync", fsync)
    monkeypatch.setattr(archive_module, "_write_json_atomic", write_json)
    with FakeAPI(world) as api:
        config = _config(api)
        with pytest.raises(CollectError) as info:
            crawl(tmp_path / "archive", config, credentials=_credentials(), clock=FakeClock(0), progress=False)
        message = str(info.value)
        assert re.search(r"/archive/runs/0001/(responses\.jsonl\.gz\.partial|checkpoint\.json): No space left", message)
        assert "\n" not in message and "rerun" in message
        state["full"] = False
        result = crawl(
            tmp_path / "archive", config, credentials=_credentials(), clock=FakeClock(0), progress=False
        )
        assert result.resumed
    run_replay(tmp_path / "archive", _outputs(tmp_path))
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)


def test_collect_reset_discards_the_unfinished_run(world: FakeData, tmp_path: Path) -> None:
    from secmine.cli import app

    archive = tmp_path / "archive"
    with FakeAPI(world) as api:
        api.add_fault("502", "RepoPullRequests", times=1000)
        with pytest.raises(FetchError):
            _crawl(api, archive)
        unfinished = Archive(archive).unfinished()
        assert unfinished is not None
        # other parameters now: the error names the command that discards the run
        with pytest.raises(CollectError, match=rf"secmine collect-reset --archive-dir {archive}"):
            _crawl(api, archive, grow_after=3)
        result = CliRunner().invoke(app, ["collect-reset", "--archive-dir", str(archive)])
        assert result.exit_code == 0, result.output
        assert unfinished.name in result.output
        assert Archive(archive).unfinished() is None and not unfinished.folder.exists()
        api.faults.clear()
        _crawl(api, archive, grow_after=3)
        again = CliRunner().invoke(app, ["collect-reset", "--archive-dir", str(archive)])
        assert again.exit_code == 0 and "nothing to discard" in again.output
    run_replay(archive, _outputs(tmp_path))
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)


# -- issue 16: GraphQL pages that time out ------------------------------------------------------


def test_pages_that_time_out_are_asked_smaller_then_larger_again(world: FakeData, tmp_path: Path) -> None:
    """GitHub answers 502 when a page takes more than 10 seconds: the collector halves the page
    instead of asking the same query again, and grows it back after pages that pass."""
    archive = tmp_path / "archive"
    with FakeAPI(world, graphql_node_limit=600) as api:  # first: 10 asks 1,110 nodes; first: 5, 555
        _crawl(api, archive)
        sizes = [r.variables["first"] for r in api.log if r.operation == "RepoIssues"]
        statuses = [r.status for r in api.log if r.operation == "RepoIssues"]
    assert 5 in sizes and 10 in sizes
    assert statuses.count(502) <= 1 + sizes.count(10)  # never the same too-big query twice in a row
    pairs = [(a, b) for a, b, s in zip(sizes, sizes[1:], statuses) if s == 502]
    assert all(b == a // 2 for a, b in pairs)
    run_replay(archive, _outputs(tmp_path / "replayed"))
    assert corpus_threads(tmp_path / "replayed" / "corpus") == expected_threads(world)


@pytest.mark.parametrize("fault", ["timeout", "timeout_error"])
def test_a_timed_out_page_replays_to_the_same_corpus(world: FakeData, tmp_path: Path, fault: str) -> None:
    with FakeAPI(world) as api:
        api.add_fault(fault, "RepoIssues", times=1)
        run_live(tmp_path / "archive", _config(api), _outputs(tmp_path / "live"), credentials=_credentials(),
                 clock=FakeClock(0), progress=False)  # fmt: skip
        assert all(f.times == 0 for f in api.faults)
        sizes = [r.variables["first"] for r in api.log if r.operation == "RepoIssues"]
        assert sizes[:2] == [10, 5]
    run_replay(tmp_path / "archive", _outputs(tmp_path / "replayed"))
    assert corpus_threads(tmp_path / "replayed" / "corpus") == expected_threads(world)
    assert (tmp_path / "live" / "metrics.json").read_bytes() == (tmp_path / "replayed" / "metrics.json").read_bytes()
    faults = [r for r in _records(tmp_path / "archive") if "fault" in r]
    assert len(faults) == 1 and faults[0]["fault"] == "timeout"


def test_archive_reader_names_file_and_record_of_a_truncated_archive(tmp_path: Path) -> None:
    path = tmp_path / "responses.jsonl.gz"
    data = gzip.compress(b'{"n": 0}\n', mtime=0) + gzip.compress(b'{"n": 1}\n', mtime=0)
    path.write_bytes(data[:-15])  # the second record is cut
    with pytest.raises(CollectError, match=rf"{path}: the archive is truncated after 1 complete record"):
        list(read_records(path))
