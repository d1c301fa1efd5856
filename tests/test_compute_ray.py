"""`compute.engine: ray`: keywords and classify as Ray Data pipelines on a local Ray cluster started on
127.0.0.1 give the same outputs as the local run, byte for byte, on both corpus layouts (one file per
platform=/kind=/bucket=, and one file per platform), and leave nothing running."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from secmine.stages.shared import Compute

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before ray is imported: the cluster stays on 127.0.0.1
ray = pytest.importorskip("ray")

#: Small batches, so that every pipeline has several batches, tasks and blocks.
RAY = Compute(engine="ray", ray_address="", local_cpus=2, batch_size=9, actors=2, gpus_per_actor=1.0)


def _threads(fixtures_dir: Path) -> list:
    """The fixture threads four times over (new numbers), a quarter of them moved to Hugging Face."""
    from secmine.snapshot import read_snapshot

    base = list(read_snapshot(fixtures_dir / "detect" / "threads.jsonl"))
    out = []
    for copy in range(4):
        for thread in base:
            moved = dataclasses.replace(thread, number=thread.number + 1000 * copy)
            if copy == 3:
                moved = dataclasses.replace(moved, platform="huggingface", kind="discussion", repo_type="model",
                                            url=f"https://huggingface.co/{thread.repo}/discussions/{moved.number}")
            out.append(moved)
    return out


def _repartition(corpus: Path, target: Path) -> Path:
    """The corpus in another layout: one file per platform, ``platform=*/part-0.parquet`` with the kind
    a column (the layout before hash buckets), beside ``_`` and ``.`` files that are no part of the
    dataset."""
    import pyarrow as pa

    from secmine.collect.corpus import iter_batches

    table = pa.Table.from_batches(list(iter_batches(corpus)))
    for platform in sorted(set(table.column("platform").to_pylist())):
        rows = table.filter(pa.compute.equal(table.column("platform"), platform)).drop_columns(["platform"])
        folder = target / f"platform={platform}"
        folder.mkdir(parents=True)
        pq.write_table(rows.sort_by("id"), folder / "part-0.parquet")
    (target / "_manifest.json").write_text("{}\n", encoding="utf-8")
    pq.write_table(pq.read_table(next(corpus.rglob("part-*.parquet"))).slice(0, 2), target / "_stray.parquet")
    (target / ".staging").mkdir()
    pq.write_table(pq.read_table(next(corpus.rglob("part-*.parquet"))).slice(0, 2), target / ".staging" / "x.parquet")
    return target


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> tuple[Path, Path]:
    from secmine.collect.corpus import part_files, write_corpus

    root = tmp_path_factory.mktemp("corpora")
    write_corpus(_threads(fixtures_dir), root / "corpus")
    deep = _repartition(root / "corpus", root / "deep")
    assert [p.relative_to(deep).as_posix() for p in part_files(deep)] == [
        "platform=github/part-0.parquet", "platform=huggingface/part-0.parquet"]
    assert len(part_files(root / "corpus")) > 2
    return root / "corpus", deep


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """One local cluster for the module, started on 127.0.0.1 by the stages' own `compute.ray_address: ""`
    path (the stages reuse the connection); afterwards no Ray process of this test is left."""
    import psutil

    from secmine.compute import cluster as ray_cluster

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with ray_cluster(RAY):
        assert ray.is_initialized()
        assert ray.cluster_resources()["CPU"] == 2
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        yield
    assert not ray.is_initialized()
    left = []
    for _ in range(40):  # the raylet and its workers exit within seconds of the shutdown
        left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE]
        if not left:
            break
        psutil.wait_procs(left, timeout=0.5)
    assert not left, f"Ray processes left running: {[p.name() for p in left]}"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _keywords(corpus: Path, out: Path, compute: Compute):
    from secmine.stages import keywords

    params = keywords.Params().replace(set="extended", **{f"compute_{k}": v for k, v in compute.as_dict().items()})
    paths = keywords.Paths.from_mapping({"corpus": corpus, "matches": out / "keywords.parquet",
                                         "tables_dir": out / "tables", "figures_dir": out / "figures",
                                         "metrics": out / "keywords.json"}, where="test")
    return keywords.run(params, paths)


def test_keywords_on_ray_equal_local_byte_for_byte(cluster: None, corpora: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, deep = corpora
    local = _keywords(corpus, tmp_path / "local", Compute())
    assert len(local.matches) > 0 and local.matches["keyword_match"].all()  # the matched rows
    assert len(pd.read_parquet(tmp_path / "local" / "keywords.parquet")) == 96  # one row per thread
    for name, source in (("ray", corpus), ("ray-deep", deep)):
        result = _keywords(source, tmp_path / name, RAY)
        pd.testing.assert_frame_equal(result.matches, local.matches)
        assert _files(tmp_path / name) == _files(tmp_path / "local"), name


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """The tiny transformer of secmine_testing, fine-tuned on the fixture texts and saved with its engines."""
    from secmine.detect.models import ModelSettings, get_family
    from secmine.detect.train import save_model
    from secmine_testing.tiny_models import build_tiny_transformer

    data = pd.read_csv(fixtures_dir / "detect" / "labelled.csv")
    root = tmp_path_factory.mktemp("tiny")
    backbone = build_tiny_transformer(root / "backbone", data["text"].tolist())
    settings = ModelSettings(seed=0, num_threads=1, backbone=str(backbone), max_length=64, epochs=2, batch_size=8,
                             learning_rate=5e-3, eval_batch_size=4, max_tokens_per_batch=128)
    model = get_family("transformer")(None, settings).fit(data["text"].tolist(), data["label"].to_numpy())
    texts, labels = data["text"].tolist(), data["label"].to_numpy()
    scores = model.predict_proba(texts)
    # the threshold at the median score: both labels occur, whatever the tiny model learnt
    save_model(model, root / "model", {"family": model.family, "params": model.params, "settings": settings.to_dict(),
                                       "threshold": float(np.median(scores)), "text": {"max_chars": 4000}},
               validation=(texts, labels, scores), log=lambda _: None)
    return root / "model"


def _classify(model: Path, corpus: Path, out: Path, compute: Compute, checkpoints: Path):
    from secmine.stages import classify

    params = classify.Params().replace(num_threads=1, chunk_size=13,
                                       **{f"compute_{k}": v for k, v in compute.as_dict().items()})
    paths = classify.Paths.from_mapping({"model_dir": model, "input": corpus, "keywords": out / "kw" / "keywords.parquet",
                                         "output": out / "classified.parquet", "tables_dir": out / "tables",
                                         "figures_dir": out / "figures", "metrics": out / "classify.json",
                                         "checkpoint_dir": checkpoints}, where="test")
    return classify.run(params, paths)


def test_classify_on_ray_actors_equals_local_byte_for_byte_and_resumes(
        cluster: None, corpora: tuple[Path, Path], tiny_model: Path, tmp_path: Path) -> None:
    corpus, _ = corpora  # the other layout is read by the same corpus_dataset (the keywords test)
    for name in ("local", "ray", "ray-again"):
        _keywords(corpus, tmp_path / name / "kw", Compute())
    _classify(tiny_model, corpus, tmp_path / "local", Compute(), tmp_path / "ckpt-local")
    local = pd.read_parquet(tmp_path / "local" / "classified.parquet")
    assert len(local) == 96 and 0 < local["label"].sum() < 96  # both labels occur: a real comparison
    assert local[["platform", "kind", "repo"]].notna().all().all()  # partition keys read from the folders
    expected = _files(tmp_path / "local")
    checkpoints = tmp_path / "ckpt-ray"
    _classify(tiny_model, corpus, tmp_path / "ray", RAY, checkpoints)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / "classified.parquet"), local)
    assert _files(tmp_path / "ray") == expected
    batches = sorted(checkpoints.glob("batch-*.parquet"))
    assert batches and sum(pq.read_metadata(b).num_rows for b in batches) == 96
    # a killed run: one batch was lost, a stale checkpoint lies about; the rerun scores only the lost
    # batch, keeps the others untouched and removes the stale one
    kept = {b.name: b.stat().st_mtime_ns for b in batches[1:]}
    batches[0].unlink()
    (checkpoints / "batch-0000000000000000.parquet").write_bytes(batches[1].read_bytes())
    _classify(tiny_model, corpus, tmp_path / "ray-again", RAY, checkpoints)
    assert {b.name for b in checkpoints.glob("batch-*.parquet")} == {b.name for b in batches}
    assert {n: (checkpoints / n).stat().st_mtime_ns for n in kept} == kept
    assert _files(tmp_path / "ray-again") == expected


def test_the_package_imports_ray_only_for_the_ray_engine() -> None:
    import subprocess
    import sys

    code = ("import sys; from secmine.stages import classify, keywords; import secmine.compute, "
            "secmine.detect.predict, secmine.detect.keywords; print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
