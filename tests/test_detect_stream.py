"""Classify streams a Parquet corpus: the same texts and output as a whole-corpus read, chunk by chunk,
and a killed run resumes without rebuilding the texts of its finished chunks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from secmine.detect import predict, stream
from secmine.detect.corpus import load_inputs
from secmine.detect.models import ModelSettings, get_family
from secmine.detect.train import save_model


def _threads(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic threads over both platforms, some with comments, some with keywords."""
    from secmine.schema import THREAD_COLUMNS

    rng = np.random.default_rng(seed)
    words = ["vulnerability", "crash", "leak", "docs", "install", "token", "exploit", "gpu", "cve", "the", "model"]
    rows = []
    for i in rng.permutation(n):
        hf = i % 3 == 0
        comments = [{"author": "a", "body": " ".join(rng.choice(words, 4)), "created_at": "2024-01-02T00:00:00Z"}
                    for _ in range(int(rng.integers(0, 4)))]
        rows.append({
            "id": f"{'hf' if hf else 'gh'}:{'discussion' if hf else 'issue'}:org/r{i % 7}#{i}",
            "platform": "huggingface" if hf else "github", "kind": "discussion" if hf else "issue",
            "repo": f"org/r{i % 7}", "number": int(i), "title": " ".join(rng.choice(words, 3)),
            "body": " ".join(rng.choice(words, int(rng.integers(0, 30)))), "url": None, "source": "test",
            "author": "u", "state": "open", "created_at": f"2024-0{1 + i % 9}-01T00:00:00Z", "updated_at": None,
            "closed_at": None, "labels": [], "comments": comments, "repo_type": "model" if hf else None,
        })
    return pd.DataFrame(rows)[list(THREAD_COLUMNS)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from secmine.collect.corpus import write_corpus

    folder = tmp_path_factory.mktemp("stream") / "corpus"
    write_corpus(_threads(157), folder, row_group_size=16)  # many row groups in two files
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    data = pd.read_csv(fixtures_dir / "detect" / "labelled.csv")
    model = get_family("tfidf_logreg")(None, ModelSettings(seed=0)).fit(data["text"].tolist(), data["label"].to_numpy())
    directory = tmp_path_factory.mktemp("model") / "security"
    save_model(model, directory, {"family": model.family, "params": model.params, "settings": model.settings.to_dict(),
                                  "threshold": 0.5, "text": {"max_chars": 4000}})
    return directory


@pytest.mark.parametrize("chunk_size", [1, 10, 64, 157, 1000])
def test_chunks_are_the_whole_corpus_read_in_order(corpus: Path, chunk_size: int) -> None:
    whole = load_inputs(corpus, max_chars=120)
    dataset = stream.open_corpus(corpus)
    chunks = list(stream.corpus_chunks(dataset, chunk_size=chunk_size, max_chars=120))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(len(c.texts) == chunk_size for c in chunks[:-1]) and 0 < len(chunks[-1].texts) <= chunk_size
    meta = pa.concat_tables([c.meta for c in chunks]).to_pandas()
    pd.testing.assert_frame_equal(meta, whole.drop(columns=["text"]))
    assert [t for c in chunks for t in c.texts] == whole["text"].tolist()
    # resuming after a finished prefix gives exactly the remaining chunks
    if len(chunks) > 2:
        after = chunks[1].meta.column("id")[-1].as_py()
        rest = list(stream.corpus_chunks(dataset, chunk_size=chunk_size, max_chars=120, first_index=2, after=after))
        assert [c.index for c in rest] == [c.index for c in chunks[2:]]
        assert [c.texts for c in rest] == [c.texts for c in chunks[2:]]


def test_resume_skips_row_groups_by_their_statistics(corpus: Path) -> None:
    dataset = stream.open_corpus(corpus)
    fragment = max(dataset.get_fragments(), key=lambda f: (f.metadata.num_rows, f.path))  # the largest file
    ids = pq.read_table(fragment.path, columns=["id"]).column("id").to_pylist()
    size = fragment.metadata.row_group(0).num_rows
    assert fragment.metadata.num_row_groups >= 2, "the fixture needs files of several row groups"
    position = size + 1  # inside the second row group
    groups = stream._row_groups_after(fragment, ids[position])
    assert groups is not None and groups[0] == 1 and len(groups) < fragment.metadata.num_row_groups


def test_unsorted_file_is_one_line_naming_it(tmp_path: Path) -> None:
    from secmine.schema import thread_arrow_schema

    folder = tmp_path / "corpus" / "platform=github"
    folder.mkdir(parents=True)
    frame = _threads(20)
    frame = frame[frame["platform"] == "github"].drop(columns=["platform"])  # not sorted by id
    schema = pa.schema([f for f in thread_arrow_schema() if f.name != "platform"])
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), folder / "part-0.parquet")
    with pytest.raises(stream.CorpusOrderError, match="part-0.parquet: rows are not sorted by unique id"):
        list(stream.corpus_chunks(stream.open_corpus(tmp_path / "corpus"), chunk_size=5, max_chars=100))


def _old_output(model_dir: Path, corpus: Path, out: Path, keywords: Path | None) -> pd.DataFrame:
    """The whole-corpus path (classify_file: every text in memory) for comparison."""
    return predict.classify_file(model_dir, corpus, out, keywords_path=keywords, progress=False)


@pytest.mark.parametrize("with_keywords", [False, True])
def test_streamed_output_is_byte_identical_to_the_whole_corpus_path(model_dir: Path, corpus: Path, tmp_path: Path,
                                                                  with_keywords: bool) -> None:
    from secmine import io
    from secmine.detect.corpus import load_threads
    from secmine.detect.keywords import match_threads

    keywords = None
    if with_keywords:
        keywords = tmp_path / "keywords.parquet"
        io.write_parquet(match_threads(load_threads(corpus))[["id", "keyword_match"]], keywords)
    old = _old_output(model_dir, corpus, tmp_path / "old.parquet", keywords)
    run = predict.classify_corpus(model_dir, corpus, tmp_path / "new.parquet", keywords_path=keywords,
                                  checkpoint_dir=tmp_path / "chunks", chunk_size=23, progress=False,
                                  exactness_sample=10)
    assert (tmp_path / "new.parquet").read_bytes() == (tmp_path / "old.parquet").read_bytes()
    pd.testing.assert_frame_equal(run.summary, predict.summarise_classified(old))
    expected = predict.probability_histogram(old)
    for key in ("keyword", "no_keyword"):
        assert np.array_equal(run.histogram[key], expected[key])
    assert run.threads == 157 and run.chunks_computed == 7 and run.chunks_reused == 0
    assert len(run.sample) == 10 and run.sample["id"].is_unique
    assert np.allclose(run.sample["score"], old.set_index("id").loc[run.sample["id"], "score"])
    # CSV output too
    predict.classify_file(model_dir, corpus, tmp_path / "old.csv", keywords_path=keywords, progress=False)
    predict.classify_corpus(model_dir, corpus, tmp_path / "new.csv", keywords_path=keywords, chunk_size=50,
                            progress=False)
    assert (tmp_path / "new.csv").read_bytes() == (tmp_path / "old.csv").read_bytes()


def test_summaries_of_parts_add_up(model_dir: Path, corpus: Path, tmp_path: Path) -> None:
    old = _old_output(model_dir, corpus, tmp_path / "old.parquet", None)
    parts = [predict.summarise_classified(old.iloc[:60]), predict.summarise_classified(old.iloc[60:])]
    combined = predict._combine_summaries(parts)
    expected = predict.summarise_classified(old)
    pd.testing.assert_frame_equal(combined.drop(columns=["mean_probability", "security_pct"]),
                                  expected.drop(columns=["mean_probability", "security_pct"]), check_dtype=False)
    assert np.allclose(combined["mean_probability"], expected["mean_probability"])
    assert np.allclose(combined["security_pct"], expected["security_pct"])


class _Counting:
    """Wraps a model: counts texts predicted; fails on the n-th call (a killed run)."""

    family = "counting"

    def __init__(self, model, fail_on_call: int | None = None) -> None:
        self.model, self.calls, self.texts, self.fail_on_call = model, 0, 0, fail_on_call

    def predict_proba(self, texts):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("killed")
        self.texts += len(texts)
        return self.model.predict_proba(texts)


def test_a_killed_run_resumes_without_rebuilding_finished_texts(model_dir: Path, corpus: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    real_load = predict.load_classifier
    real_texts = stream.chunk_texts
    built: list[int] = []

    def counting_texts(table, max_chars):
        built.append(table.num_rows)
        return real_texts(table, max_chars)

    monkeypatch.setattr(stream, "chunk_texts", counting_texts)
    wrappers: list[_Counting] = []

    def load(model_dir, **kwargs):
        model, card, engine = real_load(model_dir, **kwargs)
        wrappers.append(_Counting(model, fail_on_call=4 if not wrappers else None))
        return wrappers[-1], card, engine

    monkeypatch.setattr(predict, "load_classifier", load)
    chunks = tmp_path / "chunks"
    with pytest.raises(KeyboardInterrupt):
        predict.classify_corpus(model_dir, corpus, tmp_path / "out.parquet", checkpoint_dir=chunks, chunk_size=20,
                                progress=False)
    assert len(list(chunks.glob("chunk-*.parquet"))) == 3 and not list(chunks.glob(".*tmp"))
    assert not (tmp_path / "out.parquet").exists()  # no output from a killed run
    built.clear()
    run = predict.classify_corpus(model_dir, corpus, tmp_path / "out.parquet", checkpoint_dir=chunks, chunk_size=20,
                                  progress=False)
    assert run.chunks_reused == 3 and run.chunks_computed == 5
    assert wrappers[1].texts == 157 - 60 and sum(built) == 157 - 60  # finished chunks' texts never rebuilt
    reference = tmp_path / "reference.parquet"
    monkeypatch.setattr(predict, "load_classifier", real_load)
    predict.classify_corpus(model_dir, corpus, reference, chunk_size=20, progress=False)
    assert (tmp_path / "out.parquet").read_bytes() == reference.read_bytes()
    # a changed corpus never reuses the chunks of the old one; the stale chunks are removed
    from secmine.collect.corpus import write_corpus

    changed = tmp_path / "changed"
    frame = _threads(157)
    frame.loc[0, "body"] = "an entirely new body"
    write_corpus(frame, changed, row_group_size=16)
    built.clear()
    predict.classify_corpus(model_dir, changed, tmp_path / "changed.parquet", checkpoint_dir=chunks, chunk_size=20,
                            progress=False)
    assert sum(built) == 157 and len(list(chunks.glob("chunk-*.parquet"))) == 8


def test_sigkill_then_restart_reuses_the_finished_chunks(model_dir: Path, corpus: Path, tmp_path: Path) -> None:
    """A real kill (SIGKILL in the middle of a chunk): the restarted process reuses the chunks
    written before it and writes the same output as an uninterrupted run."""
    script = tmp_path / "run.py"
    script.write_text(
        "import os, signal, sys\n"
        "from secmine.detect import predict\n"
        "real = predict.load_classifier\n"
        "class Killing:\n"
        "    family = 'killing'\n"
        "    def __init__(self, model): self.model, self.calls = model, 0\n"
        "    def predict_proba(self, texts):\n"
        "        self.calls += 1\n"
        "        if self.calls == 3 and sys.argv[1] == 'kill': os.kill(os.getpid(), signal.SIGKILL)\n"
        "        return self.model.predict_proba(texts)\n"
        "def load(model_dir, **kw):\n"
        "    model, card, engine = real(model_dir, **kw)\n"
        "    return Killing(model), card, engine\n"
        "predict.load_classifier = load\n"
        f"run = predict.classify_corpus({str(model_dir)!r}, {str(corpus)!r}, {str(tmp_path / 'out.parquet')!r},\n"
        f"    checkpoint_dir={str(tmp_path / 'chunks')!r}, chunk_size=30, progress=False)\n"
        "print(run.chunks_reused, run.chunks_computed)\n",
        encoding="utf-8",
    )
    killed = subprocess.run([sys.executable, str(script), "kill"], capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == -9, killed.stderr
    assert len(list((tmp_path / "chunks").glob("chunk-*.parquet"))) == 2
    resumed = subprocess.run([sys.executable, str(script), "resume"], capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == ["2", "4"]
    predict.classify_corpus(model_dir, corpus, tmp_path / "reference.parquet", chunk_size=30, progress=False)
    assert (tmp_path / "out.parquet").read_bytes() == (tmp_path / "reference.parquet").read_bytes()
