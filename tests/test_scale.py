"""Scale: the synthetic corpus generator, the partitioned corpus, its streaming reader and writers,
and (slow) the streamed stages against their in-memory results on a synthetic multiple."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from pathlib import Path

import pandas as pd
import pytest

from secmine.collect.bots import BotFilter, dedupe
from secmine.collect.corpus import (
    BUCKETS,
    PartitionWriter,
    Spool,
    bucket_of,
    count_threads,
    iter_batches,
    part_files,
    partition_dir,
    read_corpus,
    write_corpus,
)
from secmine.schema import THREAD_COLUMNS, Comment, SchemaError, Thread
from secmine.synth import SynthConfig, SynthError, synthesize

DETECT = Path(__file__).parent / "fixtures" / "detect" / "threads.jsonl"


def _thread(repo: str, number: int, **kw: object) -> Thread:
    base: dict[str, object] = {"platform": "github", "kind": "issue", "repo": repo, "number": number,
                               "title": f"t{number}", "body": "b", "url": "", "source": "snapshot:x", "author": "alice"}
    base.update(kw)
    return Thread(**base)  # type: ignore[arg-type]


def _lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


# -- synth -------------------------------------------------------------------------------------------


def test_synth_is_deterministic_unique_and_spread(tmp_path: Path) -> None:
    config = SynthConfig(factor=5, seed=7, years=3, max_comments=40)
    one = synthesize(DETECT, tmp_path / "a.jsonl.gz", config, progress=False)
    synthesize(DETECT, tmp_path / "b.jsonl.gz", config, progress=False)
    synthesize(DETECT, tmp_path / "c.jsonl.gz", SynthConfig(factor=5, seed=8, years=3, max_comments=40),
               progress=False)
    a = (tmp_path / "a.jsonl.gz").read_bytes()
    assert a == (tmp_path / "b.jsonl.gz").read_bytes()
    assert a != (tmp_path / "c.jsonl.gz").read_bytes()
    rows = _lines(tmp_path / "a.jsonl.gz")
    original = [json.loads(line) for line in DETECT.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert one["threads"] == len(rows) == 5 * len(original) and one["snapshot_threads"] == len(original)
    assert rows[: len(original)] == original  # replica 0 is the snapshot itself
    ids = {(r["platform"], r["kind"], r["repo"], r["number"]) for r in rows}
    assert len(ids) == len(rows)
    urls = [r["url"] for r in rows if r.get("url")]
    assert len(set(urls)) == len(urls)
    counts = [len(r["comments"]) for r in rows[len(original):]]
    assert max(counts) <= 40 and len(set(counts)) > 3
    from datetime import datetime

    def day(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp)

    shifts = set()
    for replica in range(1, 5):
        for src, copy in zip(original, rows[replica * len(original):(replica + 1) * len(original)], strict=True):
            assert copy["repo"] == f"{src['repo']}-s{replica}" and copy["number"] == src["number"]
            assert (copy["title"], copy["body"]) == (src["title"], src["body"])
            if src.get("created_at"):
                delta = day(src["created_at"]) - day(copy["created_at"])
                assert delta.seconds == 0 and 0 <= delta.days <= 3 * 365
                shifts.add(delta.days)
    assert len(shifts) > 10


def test_synth_limit_and_errors(tmp_path: Path) -> None:
    stats = synthesize(DETECT, tmp_path / "s.jsonl", SynthConfig(factor=3, limit=50), progress=False)
    assert stats["threads"] == 50 and len((tmp_path / "s.jsonl").read_text().splitlines()) == 50
    with pytest.raises(SynthError, match="--factor 0"):
        synthesize(DETECT, tmp_path / "x.jsonl", SynthConfig(factor=0), progress=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"repo": "a/b"}\nnot json\n', encoding="utf-8")
    with pytest.raises(SynthError, match=r"bad.jsonl, line 2"):
        synthesize(bad, tmp_path / "y.jsonl", SynthConfig(factor=1), progress=False)


# -- partitions and the batch reader -------------------------------------------------------------


def test_bucket_is_a_stable_hash() -> None:
    thread_id = "gh:issue:a/x#1"
    expected = int.from_bytes(hashlib.blake2b(thread_id.encode(), digest_size=8).digest(), "big") % BUCKETS
    assert bucket_of(thread_id) == expected
    assert len({bucket_of(f"gh:issue:a/x#{n}") for n in range(200)}) == BUCKETS


def test_partition_layout_and_row_groups(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    threads = [_thread("a/x", n) for n in range(300)] + [
        _thread("o/m", n, platform="huggingface", kind="discussion") for n in range(40)
    ]
    write_corpus(threads, tmp_path / "c", row_group_size=16)
    files = part_files(tmp_path / "c")
    expected = sorted({partition_dir(t.platform, t.kind, bucket_of(t.id)) for t in threads})
    assert [f.parent.relative_to(tmp_path / "c").as_posix() for f in files] == expected
    for file in files:
        handle = pq.ParquetFile(file)
        assert "platform" not in handle.schema_arrow.names and "kind" not in handle.schema_arrow.names
        ids = handle.read(columns=["id"]).column("id").to_pylist()
        assert ids == sorted(ids)
        assert all(handle.metadata.row_group(i).num_rows <= 16 for i in range(handle.num_row_groups))
    assert count_threads(tmp_path / "c") == 340


def test_iter_batches_columns_ids_and_bounded_batches(tmp_path: Path) -> None:
    threads = [_thread("a/x", n, comments=(Comment("u", f"c{n}"),)) for n in range(120)]
    threads += [_thread("o/m", n, platform="huggingface", kind="discussion") for n in range(30)]
    write_corpus(threads, tmp_path / "c")
    batches = list(iter_batches(tmp_path / "c", columns=["id", "kind", "platform", "bucket"], batch_size=7))
    assert all(b.num_rows <= 7 for b in batches)
    assert batches[0].schema.names == ["id", "kind", "platform", "bucket"]
    rows = [r for b in batches for r in b.to_pylist()]
    assert sorted(r["id"] for r in rows) == sorted(t.id for t in threads)
    by_id = {t.id: t for t in threads}
    for row in rows:
        thread = by_id[row["id"]]
        assert (row["platform"], row["kind"], row["bucket"]) == (thread.platform, thread.kind, bucket_of(thread.id))
    wanted = [threads[3].id, threads[130].id, "gh:issue:no/such#1"]
    picked = [r for b in iter_batches(tmp_path / "c", columns=["title"], ids=wanted) for r in b.to_pylist()]
    assert sorted(r["title"] for r in picked) == sorted([threads[3].title, threads[130].title])
    frame = read_corpus(tmp_path / "c", ids=wanted)
    assert list(frame["id"]) == sorted(wanted[:2]) and list(frame.columns) == list(THREAD_COLUMNS)
    assert frame.iloc[0]["comments"] == [{"author": "u", "body": "c3", "created_at": None}]


def test_partition_writer_rejects_out_of_order(tmp_path: Path) -> None:
    records = sorted((_thread("a/x", n).to_record() for n in range(20)),
                     key=lambda r: (r["platform"], r["kind"], bucket_of(r["id"]), r["id"]))
    writer = PartitionWriter(tmp_path / "c")
    with pytest.raises(SchemaError, match="out of partition order"):
        writer.write([*records, records[0]])


def test_sorted_runs_write_few_row_groups_bounded_by_text(tmp_path: Path) -> None:
    """A merge holds the footer of every run it reads, and a footer grows with its row groups: runs
    are written in row groups bounded by text (and rows), not in groups of ``read_rows`` records."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from secmine.collect import corpus as corpus_module
    from secmine.collect.corpus import SortedRuns

    schema = pa.schema([("id", pa.string()), ("text", pa.string())])
    rng = random.Random(5)
    records = [{"id": f"t{rng.randrange(10**9):09d}", "text": "x" * rng.choice([10, 10, 10, 3_000])} for _ in range(6_000)]
    runs = SortedRuns(tmp_path / "runs", schema, key=lambda r: r["id"], run_bytes=4_000_000, read_rows=32,
                      record_size=lambda r: 40 + len(r["text"]), group_bytes=100_000)
    for record in records:
        runs.add(record, 40 + len(record["text"]))
    runs._write_run()
    assert len(runs.runs) >= 2
    for file in runs.runs:
        meta = pq.ParquetFile(file).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        table = pq.read_table(file)
        start = 0
        for rows in sizes:  # each group: at most BATCH_ROWS rows, and its text under the bound plus one record
            text = sum(40 + len(t) for t in table.column("text").to_pylist()[start:start + rows])
            assert rows <= corpus_module.BATCH_ROWS and text - 3_040 < 100_000
            start += rows
        assert meta.num_row_groups <= meta.num_rows / 32 / 2  # far fewer than one group per 32 records
    merged = list(runs.merged())
    assert [r["id"] for r in merged] == sorted(r["id"] for r in records)
    assert sorted(map(str, merged)) == sorted(map(str, records))


def test_spool_dedupes_as_dedupe_does(tmp_path: Path) -> None:
    rng = random.Random(3)
    sources = ["live:run-1", "snapshot:f", "replication:x"]
    threads = [
        _thread("a/x", rng.randrange(40), source=rng.choice(sources), title=f"copy{i}",
                updated_at=f"2024-0{rng.randrange(1, 4)}-01T00:00:00Z")
        for i in range(200)
    ]
    from secmine.collect.stage import SOURCE_PRIORITY, source_rank

    from secmine.collect import corpus as corpus_module

    spool = Spool(tmp_path / "spool", batch_rows=9, run_bytes=1_000)  # many sorted runs to merge
    for thread in threads:
        spool.add(thread.to_record(), rank=source_rank(thread.source))
    assert len(list((tmp_path / "spool").glob("run-*.parquet"))) > 2 * corpus_module.FAN_IN  # merged in levels
    got = [r for batch in spool.winners(batch_rows=5) for r in batch]
    keys = [(r["platform"], r["kind"], bucket_of(r["id"]), r["id"]) for r in got]
    assert keys == sorted(keys)
    expected = {t.id: t.to_record() for t in dedupe(threads, source_priority=SOURCE_PRIORITY)}
    assert {r["id"]: r for r in got} == expected
    assert spool.duplicates == len(threads) - len(expected)


# -- slow: streamed stages agree with the in-memory result ------------------------------------------


@pytest.mark.slow
def test_streamed_stages_agree_with_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from secmine.analysis.rq1 import selected_ids
    from secmine.collect import corpus as corpus_module
    from secmine.collect.stage import StageOutputs, run_snapshot, summary_frame
    from secmine.detect.keywords import (
        PAPER_KEYWORDS,
        match_threads,
        run_keywords,
        summarise_matches,
    )
    from secmine.snapshot import read_snapshot

    # small batches and row groups, so every stage crosses many batch and file boundaries
    monkeypatch.setattr(corpus_module, "ROW_GROUP_SIZE", 23)
    monkeypatch.setattr(corpus_module, "BATCH_ROWS", 17)
    monkeypatch.setattr(corpus_module, "RUN_BYTES", 30_000)  # the external sort merges many runs
    snapshot = tmp_path / "synth.jsonl.gz"
    synthesize(DETECT, snapshot, SynthConfig(factor=12, seed=1, max_comments=60), progress=False)
    with gzip.open(snapshot, "rt", encoding="utf-8") as handle:  # add duplicates and a bot thread
        lines = handle.read().splitlines()
    extra = [lines[5], lines[40], json.dumps({**json.loads(lines[7]), "number": 99999, "author": "renovate[bot]"})]
    with gzip.open(snapshot, "wt", encoding="utf-8") as handle:
        handle.write("\n".join([*lines, *extra]) + "\n")

    outputs = StageOutputs(out=str(tmp_path / "corpus"), metrics=str(tmp_path / "m.json"),
                           summary=str(tmp_path / "summary"))
    metrics = run_snapshot(snapshot, outputs, include_replication=False)
    streamed = read_corpus(tmp_path / "corpus")

    bots = BotFilter()
    in_memory = list(bots.filter(dedupe(read_snapshot(snapshot, source=f"snapshot:{snapshot.name}"),
                                        source_priority=("live", "snapshot", "replication"), stats=bots.stats)))
    write_corpus(in_memory, tmp_path / "in_memory")
    expected = read_corpus(tmp_path / "in_memory")
    streamed_files = {f.relative_to(tmp_path / "corpus"): f.read_bytes() for f in part_files(tmp_path / "corpus")}
    memory_files = {f.relative_to(tmp_path / "in_memory"): f.read_bytes() for f in part_files(tmp_path / "in_memory")}
    assert streamed_files == memory_files and len(streamed_files) > 8  # same bytes, partition by partition
    assert metrics["threads"] == len(expected) and metrics["duplicates_dropped"] == 2
    assert metrics["bots"]["threads_dropped"] == bots.stats.threads_dropped >= 1
    assert metrics["bots"]["comments_dropped"] == bots.stats.comments_dropped
    assert metrics["comments"] == sum(len(t.comments) for t in in_memory)
    pd.testing.assert_frame_equal(streamed, expected)
    table = pd.read_csv(tmp_path / "summary.csv")
    pd.testing.assert_frame_equal(table, summary_frame(in_memory).astype(table.dtypes.to_dict()))

    matched, summary = run_keywords(tmp_path / "corpus", tmp_path / "kw.parquet", progress=False, batch_size=13)
    whole = match_threads(streamed, PAPER_KEYWORDS)
    written = pd.read_parquet(tmp_path / "kw.parquet")
    assert list(written["id"]) == list(whole["id"])
    for column in whole.columns:
        assert [list(v) if not isinstance(v, (str, bool, int)) else v for v in written[column]] == [
            list(v) if not isinstance(v, (str, bool, int)) else v for v in whole[column]
        ], column
    pd.testing.assert_frame_equal(summary, summarise_matches(whole, sorted(PAPER_KEYWORDS)))
    assert list(matched["id"]) == list(whole.loc[whole["keyword_match"], "id"])

    assert selected_ids(tmp_path / "corpus") == selected_ids(streamed) == set()  # a snapshot selects no post


def test_load_classified_rows_checks_every_batch(tmp_path: Path) -> None:
    from secmine.analysis.data import AnalysisInputError, load_classified

    frame = pd.DataFrame({
        "id": [f"gh:issue:a/x#{n}" for n in range(50)], "platform": "github", "kind": "issue", "repo": "a/x",
        "number": range(50), "created_at": "2024-01-01T00:00:00Z", "keyword_match": False,
        "probability": 0.2, "label": [n % 3 == 0 for n in range(50)],
    }).astype({"label": "int64"}).sample(frac=1, random_state=0).reset_index(drop=True)
    frame.to_parquet(tmp_path / "c.parquet")
    whole = load_classified(tmp_path / "c.parquet")
    rows = load_classified(tmp_path / "c.parquet", labels=(1,), batch_rows=7)
    pd.testing.assert_frame_equal(rows, whole[whole["label"] == 1].reset_index(drop=True))
    bad = frame.copy()
    bad.loc[37, "label"] = 5
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(AnalysisInputError, match=r"bad.parquet, row 37, field 'label'"):
        load_classified(tmp_path / "bad.parquet", labels=(1,), batch_rows=7)
    dup = frame.copy()
    dup.loc[44, "id"] = dup.loc[3, "id"]
    dup.to_parquet(tmp_path / "dup.parquet")
    with pytest.raises(AnalysisInputError, match=r"dup.parquet, row 44, field 'id': duplicate id"):
        load_classified(tmp_path / "dup.parquet", labels=(1,), batch_rows=7)


def test_iter_classified_checks_each_batch_with_file_rows(tmp_path: Path) -> None:
    from secmine.analysis.classified import iter_classified
    from secmine.analysis.data import AnalysisInputError, load_classified

    frame = pd.DataFrame({
        "id": [f"gh:issue:a/x#{n}" for n in range(30)], "platform": "github", "kind": "issue", "repo": "a/x",
        "number": range(30), "created_at": "2024-01-01T00:00:00Z", "keyword_match": False,
        "probability": 0.2, "label": [n % 2 for n in range(30)],
    }).astype({"label": "int64"})
    frame.to_parquet(tmp_path / "c.parquet")
    batches = list(iter_classified(tmp_path / "c.parquet", batch_rows=8, columns=["id", "label", "source"]))
    assert [len(b) for b in batches] == [8, 8, 8, 6] and list(batches[0].columns) == ["id", "label", "source"]
    together = pd.concat(batches).sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(together, load_classified(tmp_path / "c.parquet")[["id", "label", "source"]])
    bad = frame.copy()
    bad.loc[21, "platform"] = "gitlab"
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(AnalysisInputError, match=r"bad.parquet, row 21, field 'platform'"):
        list(iter_classified(tmp_path / "bad.parquet", batch_rows=8))
    dup = frame.copy()
    dup.loc[25, "id"] = dup.loc[2, "id"]  # in another batch
    dup.to_parquet(tmp_path / "dup.parquet")
    with pytest.raises(AnalysisInputError, match=r"dup.parquet, row 25, field 'id': duplicate id"):
        next(iter_classified(tmp_path / "dup.parquet", batch_rows=8))
    frame.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    assert [len(b) for b in iter_classified(tmp_path / "empty.parquet")] == [0]
