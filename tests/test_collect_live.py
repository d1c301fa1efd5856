"""Live crawls against the fake API: completeness, resume after a kill, faults, incremental runs,
archive -> replay, rate limits, tokens, rehydration and the command line."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from secmine.collect.archive import Archive
from secmine.collect.bots import DEFAULT_BOTS
from secmine.collect.corpus import read_corpus, read_models
from secmine.collect.http import CollectError, FetchError, TokenError
from secmine.collect.live import Credentials, LiveConfig, crawl
from secmine.collect.stage import StageOutputs, run_live, run_rehydrate, run_replay
from secmine_testing.clock import FakeClock
from secmine_testing.fake_api import FakeAPI, FakeData, iso, small_world

GH_TOKENS = ["ghp_FAKEtokenAAAA1111", "ghp_FAKEtokenBBBB2222"]
HF_TOKEN = "hf_FAKEtokenCCCC3333"
LINKED_GH = ("acme/llm-kit", "beta/vision")
LINKED_HF = ("acme/llm-kit-7b", "beta/vision-base")
ROOT = Path(__file__).resolve().parents[1]


def _config(api: FakeAPI, **changes: Any) -> LiveConfig:
    return LiveConfig(
        hf_endpoint=api.url,
        github_endpoint=api.url,
        hf_limit=10,
        page_size=10,
        comment_page_size=10,
        max_retries=3,
        timeout_s=5,
        **changes,
    )


def _credentials() -> Credentials:
    return Credentials(github=list(GH_TOKENS), hf=HF_TOKEN)


def _outputs(folder: Path) -> StageOutputs:
    return StageOutputs(
        out=str(folder / "corpus"), metrics=str(folder / "metrics.json"), summary=str(folder / "summary")
    )


def _is_bot(login: str | None) -> bool:
    bots = {b.lower() for b in DEFAULT_BOTS}
    return bool(login) and (login.lower().endswith("[bot]") or login.lower() in bots)


def expected_threads(data: FakeData) -> dict[str, tuple]:
    """The server's threads of the linked repositories, bots removed, written independently of the collector."""
    out: dict[str, tuple] = {}
    for repo in LINKED_GH:
        for kind, items in data.github[repo].items():
            for t in items:
                if _is_bot(t["author"]):
                    continue
                comments = tuple(
                    (c["author"], c["body"], c["created_at"])
                    for c in t["comments"]
                    if not _is_bot(c["author"])
                )
                state = "closed" if kind == "discussion" and t["state"] != "open" else t["state"]
                out[f"gh:{kind}:{repo}#{t['number']}"] = (
                    t["title"],
                    t["body"],
                    state,
                    t["author"],
                    tuple(t["labels"]),
                    comments,
                )
    for model in data.hf["model"]:
        if model["id"] not in LINKED_HF:
            continue
        for d in model["discussions"]:
            events = d["events"]
            comments = tuple(
                (e["author"], e["text"], e["created_at"])
                for e in events[1:]
                if e["type"] == "comment" and not _is_bot(e["author"])
            )
            out[f"hf:discussion:{model['id']}#{d['num']}"] = (
                d["title"],
                events[0]["text"],
                d["status"],
                d["author"],
                (),
                comments,
            )
    return out


def corpus_threads(folder: Path) -> dict[str, tuple]:
    frame = read_corpus(folder)
    assert frame["id"].is_unique
    return {
        row.id: (
            row.title,
            row.body,
            row.state,
            row.author,
            tuple(row.labels),
            tuple((c["author"], c["body"], c["created_at"]) for c in row.comments),
        )
        for row in frame.itertuples()
    }


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def world() -> FakeData:
    return small_world(seed=3)


def test_full_crawl_equals_server_data(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as api:
        metrics = run_live(
            tmp_path / "archive", _config(api), _outputs(tmp_path), credentials=_credentials(), progress=False
        )
        assert not api.errors
        queries = [r for r in api.log if r.operation and r.operation.startswith("Repo")]
        assert queries and all(
            "orderBy: {field: UPDATED_AT, direction: ASC}" in r.query_text for r in queries
        )
        # comment pages are followed only for threads with more than the first 10 comments
        nested = sum(1 for r in api.log if r.operation and r.operation.endswith("Comments"))
        needed = sum(
            -(-(len(t["comments"]) - 10) // 10)
            for repo in LINKED_GH
            for items in world.github[repo].values()
            for t in items
            if len(t["comments"]) > 10
        )
        assert nested == needed > 0
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)
    models = read_models(tmp_path / "corpus").set_index("repo_id")
    assert set(models.index) == {
        "acme/llm-kit-7b",
        "beta/vision-base",
        "gamma/no-readme",
        "eps/ghost-link",
    }  # 'delta/unloved' has no likes
    assert models.loc["acme/llm-kit-7b", "github_repo"] == "acme/llm-kit"
    assert list(models.loc["acme/llm-kit-7b", "github_links"]) == ["acme/llm-kit", "acme/other-thing"]
    assert models.loc["acme/llm-kit-7b", "security_scan_done"]
    assert pd.isna(models.loc["gamma/no-readme", "github_repo"])
    assert models.loc["beta/vision-base", "children_quantized"] >= 0
    assert metrics["hf_linked"] == 3 and metrics["github_repositories_linked"] == 3
    assert metrics["bots"]["threads_dropped"] >= 1


def test_archive_replay_gives_identical_corpus_offline(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as api:
        run_live(
            tmp_path / "archive",
            _config(api),
            _outputs(tmp_path / "live"),
            credentials=_credentials(),
            progress=False,
        )
    # the server is gone: replay reads only the archive
    run_replay(tmp_path / "archive", _outputs(tmp_path / "replayed"))
    assert digests(tmp_path / "live") == digests(tmp_path / "replayed")


def test_replay_streams_the_archive_into_the_corpus(
    world: FakeData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The corpus of a live crawl is spooled thread by thread as the archive is replayed: no list of
    the whole crawl (2.2 M threads would not fit), and the manifest's counts are the replay's."""
    from secmine.collect import corpus as corpus_module
    from secmine.collect import live

    with FakeAPI(world) as api:
        run_live(tmp_path / "archive", _config(api), _outputs(tmp_path / "live"), credentials=_credentials(),
                 progress=False)
    streams: list[live.ReplayStream] = []
    original_threads = live.ReplayStream.threads

    def threads(self: live.ReplayStream):  # noqa: ANN202
        streams.append(self)
        yield from original_threads(self)

    seen_before_the_end: list[bool] = []
    original_add = corpus_module.Spool.add

    def add(self, record, **kwargs):  # noqa: ANN001, ANN202
        seen_before_the_end.append(not streams[-1].consumed)
        return original_add(self, record, **kwargs)

    monkeypatch.setattr(live.ReplayStream, "threads", threads)
    monkeypatch.setattr(corpus_module.Spool, "add", add)
    monkeypatch.setattr(live, "replay", lambda *a, **k: pytest.fail("the stage must not build the list"))
    run_replay(tmp_path / "archive", _outputs(tmp_path / "replayed"))
    assert seen_before_the_end and all(seen_before_the_end)
    assert streams[-1].consumed and streams[-1].responses > 0
    assert digests(tmp_path / "live") == digests(tmp_path / "replayed")


def _cli(args: list[str], env_extra: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "HF_TOKEN")}
    env.update(env_extra)
    return subprocess.Popen(
        [sys.executable, "-m", "secmine.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _params_file(folder: Path) -> Path:
    path = folder / "params.yaml"
    path.write_text(
        "collect:\n  hf_limit: 10\n  page_size: 10\n  comment_page_size: 10\n  max_retries: 3\n  timeout_s: 5\n  include_replication: false\n"
    )
    return path


def test_killed_crawl_resumes_to_the_same_corpus(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as reference_api:
        run_live(
            tmp_path / "ref_archive",
            _config(reference_api),
            _outputs(tmp_path / "ref"),
            credentials=_credentials(),
            progress=False,
        )
        total = reference_api.request_count
    reference = corpus_threads(tmp_path / "ref" / "corpus")

    with FakeAPI(world) as api:
        args = [
            "collect", "--source", "live", "--hf-endpoint", api.url, "--github-endpoint", api.url,
            "--archive-dir", str(tmp_path / "archive"), "--corpus", str(tmp_path / "out" / "corpus"),
            "--metrics", str(tmp_path / "out" / "metrics.json"), "--tables-dir", str(tmp_path / "out" / "tables"),
            "--params", str(_params_file(tmp_path)),
        ]  # fmt: skip
        env = {"GITHUB_TOKEN": ",".join(GH_TOKENS), "HF_TOKEN": HF_TOKEN}
        process = _cli(args, env)
        kill_at = total // 2

        def kill(number: int) -> None:
            if number == kill_at:
                os.kill(process.pid, signal.SIGKILL)

        api.on_request = kill
        process.communicate(timeout=120)
        assert process.returncode == -signal.SIGKILL
        api.on_request = None
        run = Archive(tmp_path / "archive").unfinished()
        assert run is not None
        archived = run.checkpoint["records"]
        assert 0 < archived < kill_at
        assert not (tmp_path / "out" / "corpus").exists()

        process = _cli(args, env)
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        # the resumed run replayed the archived pages and asked the server only for the rest
        assert api.request_count - kill_at == total - archived
    assert corpus_threads(tmp_path / "out" / "corpus") == reference
    runs = Archive(tmp_path / "archive").complete_runs()
    assert len(runs) == 1 and runs[0].checkpoint["records"] == total


def test_failed_fetch_leaves_no_partial_archive_and_resumes(world: FakeData, tmp_path: Path) -> None:
    clock = FakeClock(0)
    with FakeAPI(world, clock=clock) as api:
        api.add_fault("502", "RepoPullRequests", times=100)
        with pytest.raises(FetchError, match="502"):
            crawl(
                tmp_path / "archive",
                _config(api),
                credentials=_credentials(),
                clock=clock,
                progress=False,
                durable=False,
            )
        run = Archive(tmp_path / "archive").unfinished()
        assert run is not None and run.manifest["status"] == "failed"
        assert not (run.folder / "responses.jsonl.gz").exists()
        records = list(run.records())
        assert len(records) == run.checkpoint["records"]
        answers = [r for r in records if "status" in r]
        assert all(r["status"] < 500 for r in answers)
        assert not any(
            r["request"] and r["request"].get("operationName") == "RepoPullRequests" for r in answers
        )
        # a GraphQL 502 is GitHub's timeout: the smaller pages asked are noted as faults, not answers
        faults = [r for r in records if "fault" in r]
        assert faults and all(r["fault"] == "timeout" and "status" not in r for r in faults)
        with pytest.raises(CollectError, match="no complete crawl run"):
            run_replay(tmp_path / "archive", _outputs(tmp_path / "nothing"))
        api.faults.clear()
        result = crawl(
            tmp_path / "archive",
            _config(api),
            credentials=_credentials(),
            clock=clock,
            progress=False,
            durable=False,
        )
        assert result.resumed and result.replayed_responses == len(records)
    run_replay(tmp_path / "archive", _outputs(tmp_path))
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)


def test_faults_during_a_crawl_do_not_change_the_corpus(world: FakeData, tmp_path: Path) -> None:
    clock = FakeClock(0)
    with FakeAPI(world, clock=clock) as api:
        for fault, where in [
            ("429", "/api/models"),
            ("502", "RepoIssues"),
            ("truncated", "IssueComments"),
            ("malformed", "/discussions"),
            ("cut_json", "RepoDiscussions"),
            ("secondary", "RepoPullRequests"),
        ]:
            api.add_fault(fault, where, times=1)
        crawl(
            tmp_path / "archive",
            _config(api),
            credentials=_credentials(),
            clock=clock,
            progress=False,
            durable=False,
        )
        assert all(f.times == 0 for f in api.faults)
    run_replay(tmp_path / "archive", _outputs(tmp_path))
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)


def test_rate_limit_exhaustion_waits_and_the_crawl_completes(world: FakeData, tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000)
    with FakeAPI(world, clock=clock, github_limit=4, hf_limit=8, window=600) as api:
        credentials = Credentials(github=[GH_TOKENS[0]], hf=HF_TOKEN)
        result = crawl(
            tmp_path / "archive",
            _config(api),
            credentials=credentials,
            clock=clock,
            progress=False,
            durable=False,
        )
        assert result.stats["github"]["budget_waits"] >= 3  # sleeps until the reset when the budget is spent
        assert result.stats["huggingface"]["budget_waits"] >= 1
        assert sum(clock.slept) >= 3 * 600 * 0.9
    run_replay(tmp_path / "archive", _outputs(tmp_path))
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)


def test_incremental_run_fetches_only_what_changed(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as api:
        crawl(tmp_path / "archive", _config(api), credentials=_credentials(), progress=False, durable=False)
        first = api.request_count
        # an issue gets a comment, a new issue appears, a pull request is merged
        late = datetime(2030, 1, 1, tzinfo=timezone.utc)
        issue = world.github["acme/llm-kit"]["issue"][3]
        issue["comments"].append({"author": "newcomer", "body": "still broken", "created_at": iso(late)})
        issue["updated_at"] = iso(late)
        world.github["acme/llm-kit"]["issue"].append(
            {
                **issue,
                "number": 999,
                "title": "brand new",
                "comments": [],
                "updated_at": iso(late + timedelta(hours=1)),
            }
        )
        pull = next(p for p in world.github["beta/vision"]["pull_request"] if not _is_bot(p["author"]))
        pull.update(state="merged", updated_at=iso(late), closed_at=iso(late))
        api._index.clear()
        crawl(tmp_path / "archive", _config(api), credentials=_credentials(), progress=False, durable=False)
        second = api.log[first:]
        issue_queries = [r for r in second if r.operation == "RepoIssues"]
        assert issue_queries and all(
            r.variables["since"] for r in issue_queries if r.variables["owner"] != "eps"
        )
        assert len(second) < first
        run2 = Archive(tmp_path / "archive").complete_runs()[-1]
        # the changed threads, at most one boundary thread per GitHub stream (since is inclusive),
        # and the Hugging Face discussions still open (the Hub gives no update time)
        still_open = sum(
            1
            for m in world.hf["model"]
            if m["id"] in LINKED_HF
            for d in m["discussions"]
            if d["status"] == "open"
        )
        assert 3 <= run2.manifest["summary"]["threads"] <= 3 + 3 * len(LINKED_GH) + still_open
    run_replay(tmp_path / "archive", _outputs(tmp_path))
    assert corpus_threads(tmp_path / "corpus") == expected_threads(world)


def test_tokens_are_never_written(world: FakeData, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with FakeAPI(world) as api:
        api.add_fault("502", "RepoIssues", times=1)
        run_live(
            tmp_path / "archive",
            _config(api),
            _outputs(tmp_path / "out"),
            credentials=_credentials(),
            progress=False,
        )
        assert {r.token for r in api.log if r.path == "/graphql"} <= set(GH_TOKENS)
    secrets = [t.encode() for t in [*GH_TOKENS, HF_TOKEN]]
    written = 0
    for path in tmp_path.rglob("*"):
        if not path.is_file():
            continue
        content = path.read_bytes()
        if path.name.endswith((".gz", ".partial")):
            content += gzip.decompress(content)
        assert not any(s in content for s in secrets), path
        written += 1
    assert written > 5
    assert not any(s.decode() in caplog.text for s in secrets)
    manifest = json.loads(next((tmp_path / "archive" / "runs").glob("*/manifest.json")).read_text())
    assert "token" not in json.dumps(manifest["plan"]).lower()


def test_missing_token_fails_before_any_request(world: FakeData, tmp_path: Path) -> None:
    with FakeAPI(world) as api:
        with pytest.raises(TokenError, match="GITHUB_TOKEN"):
            crawl(
                tmp_path / "archive",
                _config(api),
                credentials=Credentials(github=[], hf=HF_TOKEN),
                progress=False,
            )
        with pytest.raises(TokenError, match="HF_TOKEN"):
            crawl(
                tmp_path / "archive",
                _config(api),
                credentials=Credentials(github=GH_TOKENS, hf=None),
                progress=False,
            )
        process = _cli(
            [
                "collect",
                "--source",
                "live",
                "--hf-endpoint",
                api.url,
                "--github-endpoint",
                api.url,
                "--archive-dir",
                str(tmp_path / "a2"),
                "--out",
                str(tmp_path / "c2"),
            ],
            {},
        )
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 1 and "GITHUB_TOKEN" in stderr
        assert api.request_count == 0


def test_rehydrate_fetches_exactly_the_ids(world: FakeData, tmp_path: Path) -> None:
    issue = world.github["acme/llm-kit"]["issue"][0]["number"]
    pull = world.github["acme/llm-kit"]["pull_request"][0]["number"]
    discussion = world.github["beta/vision"]["discussion"][0]["number"]
    ids = [
        f"gh:issue:acme/llm-kit#{issue}",
        f"gh:issue:acme/llm-kit#{pull}",  # labelled as an issue, is a pull request
        f"gh:discussion:beta/vision#{discussion}",
        "gh:issue:acme/llm-kit#5000",  # does not exist
        "hf:discussion:acme/llm-kit-7b#2",
        "hf:discussion:gone/model#1",
    ]
    with FakeAPI(world) as api:
        metrics = run_rehydrate(
            ids,
            tmp_path / "archive",
            _config(api),
            _outputs(tmp_path),
            credentials=_credentials(),
            batch=2,
            progress=False,
        )
        assert api.count(operation="Rehydrate") == 3  # acme/llm-kit: 3 ids in batches of 2; beta/vision: 1
    frame = read_corpus(tmp_path / "corpus")
    assert set(frame["id"]) == {ids[0], f"gh:pull_request:acme/llm-kit#{pull}", ids[2], ids[4]}
    assert len(frame[frame["id"] == ids[0]].iloc[0]["comments"]) > 10  # nested comment pages followed
    manifest = json.loads((tmp_path / "corpus" / "_manifest.json").read_text())
    assert manifest["missing"] == sorted([ids[3], ids[5]])
    assert manifest["kind_changed"] == {ids[1]: f"gh:pull_request:acme/llm-kit#{pull}"}
    assert metrics["threads"] == 4


def test_datasets_in_scope_and_discussion_pages(tmp_path: Path) -> None:
    from secmine_testing.fake_api import hub_repo_data

    data = FakeData()
    data.hf["model"] = [hub_repo_data("org/busy-model", likes=9, readme="no links here", discussions=55)]
    data.hf["dataset"] = [
        hub_repo_data(
            "org/corpus",
            likes=4,
            readme="https://github.com/org/corpus-tools",
            discussions=2,
            repo_type="dataset",
        )
    ]
    with FakeAPI(data) as api:
        config = _config(api, hf_scope=["model", "dataset"], hf_discussions_for="all", github_kinds=[])
        crawl(
            tmp_path / "archive",
            config,
            credentials=Credentials(github=[], hf=HF_TOKEN),
            progress=False,
            durable=False,
        )
        assert (
            api.count(prefix="/api/models/org/busy-model/discussions", operation=None) == 2 + 55
        )  # 2 list pages of 50, 55 details
        assert api.count(prefix="/datasets/org/corpus/resolve/main/README.md") == 1
    run_replay(tmp_path / "archive", _outputs(tmp_path))
    frame = read_corpus(tmp_path / "corpus")
    assert (frame["repo"] == "org/busy-model").sum() == 55
    datasets = frame[frame["repo_type"] == "dataset"]
    assert set(datasets["id"]) == {
        "hf:discussion:datasets/org/corpus#1",
        "hf:discussion:datasets/org/corpus#2",
    }
    assert all(
        url.endswith(("/datasets/org/corpus/discussions/1", "/datasets/org/corpus/discussions/2"))
        for url in datasets["url"]
    )
    models = read_models(tmp_path / "corpus").set_index("repo_id")
    assert (
        models.loc["org/corpus", "github_repo"] == "org/corpus-tools"
        and models.loc["org/corpus", "repo_type"] == "dataset"
    )
