"""What a restart of the classify stage costs, and whether its memory grows with the corpus.

For a corpus replicated ``--factors`` times (each copy's ids prefixed, one more sorted file per
partition, so the copies stream like any partitioned corpus), side by side in one run:

* secmine classify (streamed, :func:`secmine.detect.stage.run_classify_stage`): a full run's time
  and peak RSS; then a run killed (SIGKILL) once ``--kill-after`` chunks are on disk, restarted, and
  the seconds from the restart to its first new chunk file (process start, model load, corpus
  fingerprint and one chunk of inference included);
* the previous text preparation, the baseline: what the classify stage did before it could compute
  anything, on every start and restart -- the whole corpus read and every text built
  (:func:`secmine.detect.corpus.load_inputs`); its time and peak RSS.

The model is ``--model-dir`` when given, else a tiny transformer (secmine_testing) trained in
seconds, so the restart time is what the stage itself costs, not a large model's inference.
Prints one table row per factor and the growth exponents of peak RSS (log RSS over log threads).

    .venv/bin/python benchmarks/classify_restart.py [--corpus data/raw/corpus] [--factors 1,4]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from secmine import config  # noqa: E402

CHILD = r"""
import json, resource, sys, time
started = time.perf_counter()
what, model_dir, corpus, keywords, out, chunks, chunk_size = sys.argv[1:8]
if what == "baseline":
    from secmine.detect.corpus import load_inputs
    inputs = load_inputs(corpus, max_chars=4000)
    n = len(inputs)
else:
    from secmine.detect.stage import run_classify_stage
    run, _ = run_classify_stage(model_dir=model_dir, corpus=corpus, keywords_path=keywords or None,
                                output=out + "/classified.parquet", checkpoint_dir=chunks, tables_dir=out + "/tables",
                                figures_dir=None, metrics_path=out + "/classify.json", chunk_size=int(chunk_size),
                                num_threads=2, progress=False, log=lambda m: None)
    n = run.threads
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"threads": n, "seconds": time.perf_counter() - started, "peak_rss_gib": rss}))
"""


def replicate(source: Path, target: Path, factor: int) -> int:
    """``factor`` copies of the corpus at ``source`` (ids prefixed ``x<k>:``), one file per copy and
    partition; returns the thread count."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    total = 0
    for part in sorted(source.glob("*=*/*.parquet")):
        folder = target / part.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        table = pq.read_table(part)
        for k in range(factor):
            ids = pc.binary_join_element_wise(pa.scalar(f"x{k:03d}:"), table.column("id"), "")
            copy = table.set_column(table.schema.get_field_index("id"), "id", ids)
            pq.write_table(copy, folder / f"part-{k}.parquet", row_group_size=2_000, compression="zstd")
            total += copy.num_rows
    return total


def replicate_keywords(source: Path, target: Path, factor: int) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(source, columns=["id", "keyword_match"])
    table = table.set_column(0, "id", pc.cast(table.column("id"), pa.string()))
    copies = [table.set_column(0, "id", pc.binary_join_element_wise(pa.scalar(f"x{k:03d}:"), table.column("id"), ""))
              for k in range(factor)]
    pq.write_table(pa.concat_tables(copies).sort_by("id"), target)


def child(args: list[str], env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def restart_cost(args: list[str], env: dict[str, str], chunks: Path, kill_after: int, limit: float) -> tuple[int, float]:
    """(chunks reused, seconds from the restart to its first new chunk)."""
    process = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + limit
    while len(list(chunks.glob("chunk-*.parquet"))) < kill_after and time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the run finished before it could be killed; lower --kill-after or --chunk-size")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {p.name for p in chunks.glob("chunk-*.parquet")}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() < started + limit:
            if {p.name for p in chunks.glob("chunk-*.parquet")} - before:
                return len(before), time.monotonic() - started
            if process.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit("the restarted run wrote no new chunk")
    finally:
        process.kill()
        process.wait()


def tiny_model(directory: Path) -> Path:
    import pandas as pd

    from secmine.detect.models import ModelSettings, get_family
    from secmine.detect.train import save_model
    from secmine_testing.tiny_models import build_tiny_transformer

    data = pd.read_csv(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "detect" / "labelled.csv")
    backbone = build_tiny_transformer(directory / "backbone", data["text"].tolist())
    settings = ModelSettings(seed=0, num_threads=1, backbone=str(backbone), max_length=64, epochs=1, batch_size=8)
    model = get_family("transformer")(None, settings).fit(data["text"].tolist(), data["label"].to_numpy())
    texts = data["text"].tolist()
    save_model(model, directory / "model", {"family": model.family, "params": model.params,
                                            "settings": settings.to_dict(), "threshold": 0.5,
                                            "text": {"max_chars": 4000}},
               validation=(texts, data["label"].to_numpy(), model.predict_proba(texts)), log=lambda _: None)
    return directory / "model"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=config.PROJECT_ROOT / "data" / "raw" / "corpus")
    parser.add_argument("--keywords", type=Path, default=config.PROJECT_ROOT / "data" / "interim" / "keywords.parquet")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--factors", default="1,4")
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--kill-after", type=int, default=3, help="chunks on disk when the run is killed")
    parser.add_argument("--limit", type=float, default=1800, help="seconds a run may take")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        raise SystemExit(f"{args.corpus}: corpus folder not found (run the collect stage, or pass --corpus)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                                          os.environ.get("PYTHONPATH", "")])}
    rows = []
    with tempfile.TemporaryDirectory(prefix="secmine-restart-") as tmp:
        root = Path(tmp)
        model_dir = args.model_dir or tiny_model(root / "tiny")
        for factor in [int(f) for f in args.factors.split(",")]:
            corpus = root / f"corpus-{factor}"
            n = replicate(args.corpus, corpus, factor)
            keywords = ""
            if args.keywords.is_file():
                keywords = str(root / f"keywords-{factor}.parquet")
                replicate_keywords(args.keywords, Path(keywords), factor)
            out, chunks = root / f"out-{factor}", root / f"chunks-{factor}"
            common = [str(model_dir), str(corpus), keywords, str(out), str(chunks), str(args.chunk_size)]
            baseline = child(["baseline", *common], env)
            full = child(["stream", *common], env)
            for stale in chunks.glob("chunk-*.parquet"):
                stale.unlink()
            reused, restart = restart_cost(["stream", *common], env, chunks, args.kill_after, args.limit)
            rows.append({"factor": factor, "threads": n, "baseline_s": baseline["seconds"],
                         "baseline_rss": baseline["peak_rss_gib"], "stream_s": full["seconds"],
                         "stream_rss": full["peak_rss_gib"], "reused": reused, "restart_s": restart})
    print(f"model: {model_dir if args.model_dir else 'tiny transformer (secmine_testing)'}; chunk size "
          f"{args.chunk_size}; killed after {args.kill_after} chunks")
    print(f"{'factor':>6}{'threads':>10}{'old prep s':>12}{'old prep GiB':>14}{'stream run s':>14}"
          f"{'stream GiB':>12}{'restart s':>11}")
    for r in rows:
        print(f"{r['factor']:>6}{r['threads']:>10,}{r['baseline_s']:>12.1f}{r['baseline_rss']:>14.2f}"
              f"{r['stream_s']:>14.1f}{r['stream_rss']:>12.2f}{r['restart_s']:>11.1f}")
    if len(rows) > 1:
        span = math.log(rows[-1]["threads"] / rows[0]["threads"])
        grow = {k: math.log(rows[-1][k] / rows[0][k]) / span for k in ("baseline_rss", "stream_rss")}
        print(f"peak RSS growth exponent: streamed {grow['stream_rss']:.2f}, previous text preparation "
              f"{grow['baseline_rss']:.2f}")
    last = rows[-1]
    print(f"restart to first new chunk: {last['restart_s']:.1f} s at {last['threads']:,} threads "
          f"(the previous code rebuilt every text first: {last['baseline_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
