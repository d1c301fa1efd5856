"""The corpus on disk, bots, de-duplication, linking and the snapshot stage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from secmine.collect.bots import BotFilter, dedupe
from secmine.collect.corpus import (
    bucket_of,
    connect,
    partition_dir,
    read_corpus,
    read_manifest,
    read_models,
    write_corpus,
)
from secmine.collect.linking import best_link, github_links
from secmine.collect.stage import StageOutputs, run_snapshot, summary_frame
from secmine.schema import THREAD_COLUMNS, Comment, SchemaError, Thread, validate_frame

FIXTURE = Path(__file__).parent / "fixtures" / "collect" / "snapshot.jsonl"


def _thread(
    repo: str, number: int, *, platform: str = "github", kind: str = "issue", source: str = "live:x", **kw
) -> Thread:
    kw.setdefault("body", "b")
    return Thread(
        platform=platform,
        kind=kind,
        repo=repo,
        number=number,
        title=f"t{number}",
        url="u",
        source=source,
        **kw,
    )


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_write_read_roundtrip_sorted_and_partitioned(tmp_path: Path) -> None:
    threads = [
        _thread("b/x", 2, comments=(Comment("u", "hi", "2024-01-01T00:00:00Z"),), labels=("bug",)),
        _thread("org/m", 1, platform="huggingface", kind="discussion", repo_type="model"),
        _thread("a/x", 10, kind="pull_request"),
    ]
    counts = write_corpus(threads, tmp_path / "corpus")
    assert counts == {"github": 2, "huggingface": 1}
    for thread in threads:
        folder = partition_dir(thread.platform, thread.kind, bucket_of(thread.id))
        assert (tmp_path / "corpus" / folder / "part-0.parquet").is_file()
    frame = read_corpus(tmp_path / "corpus")
    assert list(frame.columns) == list(THREAD_COLUMNS)
    assert list(frame["id"]) == sorted(t.id for t in threads)
    validate_frame(frame)
    row = frame[frame["id"] == "gh:issue:b/x#2"].iloc[0]
    assert row["comments"] == [{"author": "u", "body": "hi", "created_at": "2024-01-01T00:00:00Z"}]
    assert row["labels"] == ["bug"]
    assert read_corpus(tmp_path / "corpus", columns=["repo"]).columns.tolist() == ["repo"]


def test_write_is_byte_identical_and_replaces_the_folder(tmp_path: Path) -> None:
    threads = [_thread("a/x", n) for n in range(50)]
    write_corpus(threads, tmp_path / "one", manifest={"source": "test"})
    write_corpus(list(reversed(threads)), tmp_path / "two", manifest={"source": "test"})
    assert _digests(tmp_path / "one") == _digests(tmp_path / "two")
    (tmp_path / "one" / "stale.txt").write_text("old")
    write_corpus(threads[:3], tmp_path / "one")
    assert not (tmp_path / "one" / "stale.txt").exists()
    assert len(read_corpus(tmp_path / "one")) == 3


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="duplicate id"):
        write_corpus([_thread("a/x", 1), _thread("a/x", 1)], tmp_path / "c")


def test_duckdb_view(tmp_path: Path) -> None:
    write_corpus(
        [_thread("a/x", 1), _thread("a/x", 2), _thread("o/m", 1, platform="huggingface", kind="discussion")],
        tmp_path / "c",
    )
    con = connect(tmp_path / "c")
    rows = con.sql(
        "SELECT platform, count(*) AS n FROM threads GROUP BY platform ORDER BY platform"
    ).fetchall()
    assert rows == [("github", 2), ("huggingface", 1)]
    assert con.sql("SELECT count(*) FROM hf_models").fetchall() == [(0,)]


def test_bot_filter_drops_bot_threads_and_comments() -> None:
    bots = BotFilter.from_params(extra="my-ci-account")
    threads = [
        _thread("a/x", 1, author="dependabot[bot]"),
        _thread(
            "a/x",
            2,
            author="alice",
            comments=(
                Comment("github-actions[bot]", "ci"),
                Comment("MY-CI-ACCOUNT", "x"),
                Comment("bob", "ok"),
            ),
        ),
        _thread("a/x", 3, author="SFconvertbot"),
    ]
    kept = list(bots.filter(threads))
    assert [t.number for t in kept] == [2]
    assert [c.author for c in kept[0].comments] == ["bob"]
    assert bots.stats.threads_dropped == 2 and bots.stats.comments_dropped == 2
    assert not BotFilter.from_params(defaults=False).is_bot("SFconvertbot")
    assert BotFilter.from_params(defaults=False).is_bot("renovate[bot]")


def test_dedupe_prefers_source_then_latest_update() -> None:
    snap = _thread("a/x", 1, source="snapshot:f", body="full")
    rep = _thread("a/x", 1, source="replication:theme/data.xlsx")
    old = _thread("a/x", 2, source="live:run-0001", updated_at="2024-01-01T00:00:00Z")
    new = _thread("a/x", 2, source="live:run-0002", updated_at="2024-02-01T00:00:00Z")
    out = dedupe([rep, old, snap, new], source_priority=("live", "snapshot", "replication"))
    assert [(t.number, t.source) for t in out] == [(1, "snapshot:f"), (2, "live:run-0002")]


def test_github_links_and_best_match() -> None:
    text = "Code at https://github.com/Acme/LLM-Kit.git, docs https://github.com/features/x, (https://github.com/acme/llm-kit) and github.com/other/thing."
    assert github_links(text) == ["Acme/LLM-Kit", "other/thing"]
    link = best_link("acme/llm-kit-7b", ["other/thing", "Acme/LLM-Kit"])
    assert link.repo == "Acme/LLM-Kit" and 0.8 < link.score <= 1.0
    assert best_link("x/y", []).repo is None
    assert best_link("acme/llm-kit-7b", ["zz/qq"], min_score=0.9).repo is None


def test_snapshot_stage_on_fixture(tmp_path: Path) -> None:
    outputs = StageOutputs(
        out=str(tmp_path / "corpus"), metrics=str(tmp_path / "m.json"), summary=str(tmp_path / "summary")
    )
    metrics = run_snapshot(FIXTURE, outputs, include_replication=False)
    frame = read_corpus(tmp_path / "corpus")
    assert metrics["threads"] == len(frame) == 3  # 4 lines, one opened by a bot
    assert metrics["bots"] == {
        "threads_dropped": 1,
        "comments_dropped": 1,
        "accounts": 2,
        "top": {"dependabot[bot]": 1, "github-actions[bot]": 1},
    }
    assert json.loads((tmp_path / "m.json").read_text()) == metrics
    assert (
        (tmp_path / "summary.csv").is_file()
        and (tmp_path / "summary.md").is_file()
        and (tmp_path / "summary.tex").is_file()
    )
    manifest = read_manifest(tmp_path / "corpus")
    assert manifest["inputs"][0]["threads"] == 4 and len(manifest["inputs"][0]["sha256"]) == 64
    assert read_models(tmp_path / "corpus").empty
    first = _digests(tmp_path)
    run_snapshot(FIXTURE, outputs, include_replication=False)
    assert _digests(tmp_path) == first


def test_summary_frame_counts() -> None:
    frame = summary_frame(
        [
            _thread("a/x", 1, created_at="2024-01-02T00:00:00Z", comments=(Comment("u", "c"),)),
            _thread("a/y", 2),
        ]
    )
    total = frame[frame["platform"] == "all"].iloc[0]
    assert (total["threads"], total["comments"], total["repositories"], total["with_comments"]) == (
        2,
        1,
        2,
        1,
    )


@pytest.mark.shared
def test_snapshot_stage_on_the_shared_data(external_root: Path, tmp_path: Path) -> None:
    outputs = StageOutputs(out=str(tmp_path / "corpus"), metrics=None, summary=None)
    metrics = run_snapshot(
        external_root / "ai_issues" / "issues.jsonl.gz", outputs, replication_dir=external_root / "ai_sec_dev"
    )
    frame = read_corpus(tmp_path / "corpus")
    assert metrics["threads"] == len(frame) > 20_000
    assert set(frame["platform"]) == {"github", "huggingface"}
    assert frame["id"].is_unique and frame["id"].is_monotonic_increasing
    assert not frame["author"].dropna().str.endswith("[bot]").any()
    assert metrics["by_source"]["snapshot"] > 19_000 and metrics["by_source"]["replication"] > 0


@pytest.mark.shared
def test_rehydration_ids_from_the_replication_package(replication_root: Path, tmp_path: Path) -> None:
    from secmine.collect.stage import labelled_ids
    from secmine.replication import load_labelled, load_security_only

    labelled = labelled_ids("labelled", replication_root)
    assert labelled == list(dict.fromkeys(load_labelled(replication_root)["thread_id"]))
    security = labelled_ids("security_only", replication_root)
    assert len(security) == len(load_security_only(replication_root)) > 0
    assert set(labelled_ids("all", replication_root)) == set(labelled) | set(security)
    listing = tmp_path / "ids.txt"
    listing.write_text("gh:issue:a/b#1\nhf:discussion:org/m#2\n")
    assert labelled_ids(str(listing)) == ["gh:issue:a/b#1", "hf:discussion:org/m#2"]
    listing.write_text("not an id\n")
    with pytest.raises(SchemaError, match="not an id"):
        labelled_ids(str(listing))
