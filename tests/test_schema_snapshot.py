"""The thread schema and the JSON-lines snapshot reader/writer."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from secmine.io import write_parquet
from secmine.schema import (
    Comment,
    SchemaError,
    Thread,
    frame_to_table,
    frame_to_threads,
    normalise_timestamp,
    parse_thread_id,
    thread_id,
    threads_to_frame,
    validate_frame,
)
from secmine.snapshot import read_snapshot, write_snapshot


def _thread(number: int = 7, **kw) -> Thread:
    base = dict(
        platform="github",
        kind="issue",
        repo="org/proj",
        number=number,
        title="Pickle load is unsafe",
        body="torch.load executes code",
        url=f"https://github.com/org/proj/issues/{number}",
        source="test",
        author="alice",
        created_at="2024-01-02T03:04:05Z",
        labels=("bug",),
        comments=(Comment("bob", "use safetensors", "2024-01-03T00:00:00Z"),),
    )
    base.update(kw)
    return Thread(**base)


def test_thread_id_round_trip() -> None:
    assert thread_id("github", "issue", "org/proj", 12) == "gh:issue:org/proj#12"
    assert thread_id("huggingface", "discussion", "org/model", 3) == "hf:discussion:org/model#3"
    assert parse_thread_id("hf:discussion:org/model#3") == ("huggingface", "discussion", "org/model", 3)
    with pytest.raises(SchemaError, match="id"):
        parse_thread_id("nonsense")


@pytest.mark.parametrize(
    "field, value, message",
    [("platform", "gitlab", "platform"), ("kind", "commit", "kind"), ("number", -1, "number"), ("repo", "noslash", "repo")],
)
def test_thread_rejects_bad_fields(field: str, value: object, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        _thread(**{field: value})


def test_frame_round_trip_and_parquet(tmp_path: Path) -> None:
    threads = [_thread(1), _thread(2, comments=())]
    frame = threads_to_frame(threads)
    validate_frame(frame)
    assert frame_to_threads(frame) == threads
    path = write_parquet(frame, tmp_path / "t.parquet", schema=frame_to_table(frame).schema)
    back = pd.read_parquet(path)
    assert frame_to_threads(back) == threads


def test_validate_frame_names_row_and_field() -> None:
    frame = threads_to_frame([_thread(1), _thread(2)])
    frame.loc[1, "platform"] = "gitlab"
    with pytest.raises(SchemaError, match=r"row 1, field 'platform'"):
        validate_frame(frame)


def test_normalise_timestamp() -> None:
    assert normalise_timestamp("2024-04-04T01:12:57Z") == "2024-04-04T01:12:57Z"
    assert normalise_timestamp("2024-04-04T03:12:57+02:00") == "2024-04-04T01:12:57Z"
    assert normalise_timestamp(None) is None
    with pytest.raises(SchemaError):
        normalise_timestamp("yesterday")


def test_snapshot_round_trip(tmp_path: Path) -> None:
    threads = [_thread(1), _thread(2)]
    path = tmp_path / "s.jsonl.gz"
    assert write_snapshot(threads, path) == 2
    back = list(read_snapshot(path, source="test"))
    assert back == threads


def test_snapshot_errors_name_file_line_and_field(tmp_path: Path) -> None:
    good = {"platform": "github", "kind": "issue", "repo": "a/b", "number": 1, "title": "t", "body": "b"}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "number": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"bad.jsonl, line 2, field 'number'"):
        list(read_snapshot(path))
    path.write_text(json.dumps(good) + "\n{broken\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"line 2: not valid JSON"):
        list(read_snapshot(path))
    path.write_text(json.dumps({**good, "comments": [{"body": "x", "created_at": "never"}]}) + "\n")
    with pytest.raises(SchemaError, match=r"comments\[0\].created_at"):
        list(read_snapshot(path))


def test_real_snapshot_reads(snapshot_file: Path) -> None:
    count = 0
    kinds = set()
    for thread in read_snapshot(snapshot_file):
        count += 1
        kinds.add((thread.platform, thread.kind))
        assert thread.url.startswith("https://github.com/")
        assert thread.source == "snapshot:issues.jsonl.gz"
    with gzip.open(snapshot_file, "rt", encoding="utf-8") as handle:
        lines = sum(1 for line in handle if line.strip())
    assert count == lines
    assert ("github", "issue") in kinds
