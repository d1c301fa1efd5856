"""`secmine classify` round trips (JSON lines, CSV, corpus Parquet) and resumable, chunked inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from secmine.cli import app
from secmine.detect.models import ModelSettings, get_family
from secmine.detect.predict import classify_frame
from secmine.schema import CLASSIFIED_COLUMNS
from secmine.detect.train import save_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    data = pd.read_csv(fixtures_dir / "detect" / "labelled.csv")
    model = get_family("tfidf_logreg")(None, ModelSettings(seed=0)).fit(data["text"].tolist(), data["label"].to_numpy())
    directory = tmp_path_factory.mktemp("model") / "security"
    save_model(model, directory, {"family": model.family, "params": model.params, "settings": model.settings.to_dict(),
                                  "threshold": 0.5, "text": {"max_chars": 4000}})
    return directory


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    from secmine_testing.tiny_models import build_tiny_transformer

    data = pd.read_csv(fixtures_dir / "detect" / "labelled.csv")
    root = tmp_path_factory.mktemp("tinyclf")
    backbone = build_tiny_transformer(root / "backbone", data["text"].tolist())
    settings = ModelSettings(seed=0, num_threads=1, backbone=str(backbone), max_length=64, epochs=2, batch_size=8,
                             learning_rate=5e-3, eval_batch_size=4, max_tokens_per_batch=128)
    model = get_family("transformer")(None, settings).fit(data["text"].tolist(), data["label"].to_numpy())
    save_model(model, root / "model", {"family": model.family, "params": model.params,
                                       "settings": settings.to_dict(), "threshold": 0.5, "text": {"max_chars": 4000}})
    return root / "model"


def test_classify_jsonl_round_trip(model_dir: Path, fixtures_dir: Path, tmp_path: Path) -> None:
    source = fixtures_dir / "detect" / "threads.jsonl"
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["classify", "--model-dir", str(model_dir), "--input", str(source),
                                      "--output", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", "probability", "label"]
    assert len(frame) == 24 and frame["id"].is_unique and frame["id"].str.startswith("gh:").all()
    assert frame["probability"].between(0, 1).all()
    assert (frame["label"] == (frame["probability"] >= 0.5)).all()
    by_id = frame.set_index("id")
    assert by_id.loc["gh:pull_request:acme/llm-app#1", "label"] == 1  # the RCE thread
    assert by_id.loc["gh:issue:org/vision-lib#15", "label"] == 0  # "Docs: typo in the quickstart"


def test_classify_csv_with_text_column(model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame({"key": ["a", "b", "c"], "body": ["Remote code execution via pickle load, a vulnerability",
                                                   "typo in docs", "API key leaked in logs"]}).to_csv(source, index=False)
    out = tmp_path / "out.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["classify", "--model-dir", str(model_dir), "--input", str(source), "--output",
                                 str(out), "--text-column", "body", "--id-column", "key"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert frame["id"].tolist() == ["a", "b", "c"] and frame["label"].tolist()[:2] == [1, 0]
    result = runner.invoke(app, ["classify", "--model-dir", str(model_dir), "--input", str(source), "--output",
                                 str(out), "--text-column", "body"])
    assert pd.read_csv(out)["id"].tolist() == [0, 1, 2]  # no id column: row numbers
    result = runner.invoke(app, ["classify", "--model-dir", str(model_dir), "--input", str(source), "--output",
                                 str(out)])
    assert result.exit_code == 1 and result.output.startswith("error: ") and "no column 'text'" in result.output


def test_classify_corpus_to_parquet_with_transformer(tiny_model_dir: Path, fixtures_dir: Path, tmp_path: Path) -> None:
    from secmine.collect.corpus import write_corpus
    from secmine.snapshot import read_snapshot

    corpus = tmp_path / "corpus"
    write_corpus(list(read_snapshot(fixtures_dir / "detect" / "threads.jsonl")), corpus)
    out = tmp_path / "classified.parquet"
    result = CliRunner().invoke(app, ["classify", "--model-dir", str(tiny_model_dir), "--input", str(corpus),
                                      "--output", str(out), "--checkpoint-dir", str(tmp_path / "chunks"),
                                      "--chunk-size", "10"])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert tuple(frame.columns) == CLASSIFIED_COLUMNS and len(frame) == 24
    assert frame["keyword_match"].dtype == bool and frame["keyword_match"].any()
    assert frame["number"].dtype == "int64"
    assert len(list((tmp_path / "chunks").glob("chunk-*.parquet"))) == 3


class _Counting:
    """Wraps a model: counts texts predicted, optionally fails on the n-th call (a killed run)."""

    family = "counting"

    def __init__(self, model, fail_on_call: int | None = None) -> None:
        self.model, self.calls, self.texts, self.fail_on_call = model, 0, 0, fail_on_call

    def predict_proba(self, texts):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("killed")
        self.texts += len(texts)
        return self.model.predict_proba(texts)


def test_inference_resumes_after_a_kill(model_dir: Path, tmp_path: Path) -> None:
    from secmine.detect.predict import load_model

    model, _ = load_model(model_dir)
    rng = np.random.default_rng(0)
    words = ["vulnerability", "crash", "leak", "docs", "install", "token", "exploit", "gpu"]
    inputs = pd.DataFrame({"id": [f"t{i}" for i in range(95)],
                           "text": [" ".join(rng.choice(words, 6)) for _ in range(95)]})
    expected = model.predict_proba(inputs["text"].tolist())
    chunks = tmp_path / "chunks"
    killed = _Counting(model, fail_on_call=4)
    with pytest.raises(KeyboardInterrupt):
        classify_frame(killed, inputs, model_key="m1", checkpoint_dir=chunks, chunk_size=10, progress=False)
    assert len(list(chunks.glob("chunk-*.parquet"))) == 3  # three chunks finished before the kill
    assert not list(chunks.glob(".*tmp"))  # no half-written file
    resumed = _Counting(model)
    proba = classify_frame(resumed, inputs, model_key="m1", checkpoint_dir=chunks, chunk_size=10, progress=False)
    assert resumed.texts == 95 - 30 and resumed.calls == 7  # only the unfinished chunks
    assert np.allclose(proba, expected)
    again = _Counting(model)
    classify_frame(again, inputs, model_key="m1", checkpoint_dir=chunks, chunk_size=10, progress=False)
    assert again.calls == 0  # all done: nothing recomputed
    other = _Counting(model)
    classify_frame(other, inputs, model_key="m2", checkpoint_dir=chunks, chunk_size=10, progress=False)
    assert other.texts == 95  # another model never reuses stale chunks ...
    assert len(list(chunks.glob("chunk-*.parquet"))) == 10  # ... and stale chunk files are removed
