"""Time and peak memory of the pipeline's stages as the corpus grows (SYNTHETIC corpora).

For each size (1x, 4x, 16x the snapshot; ``--full`` adds 2.2 million threads) the script makes a
synthetic snapshot with ``secmine synth`` (:mod:`secmine.synth`: the snapshot replicated with unique
ids, dates spread over the years, long-tailed comment counts), then runs the stages through the
command line, each in its own process, exactly as a user would:

* ``collect`` from the synthetic snapshot (plus the replication posts, as the default pipeline);
* ``keywords`` over the corpus;
* ``classified``: a stand-in for the classify stage's output, written by DuckDB from the keyword
  matches (label = keyword match) — classifying millions of threads on CPU takes hours, and its
  throughput is ``benchmarks/classify_throughput.py``'s; ``--classify-chunk N`` also runs
  ``secmine classify`` on the first N threads when a trained model is at hand;
* ``rq1`` and ``sample`` over the stand-in and the corpus.

Wall time and peak RSS come from ``os.wait4`` (the child's own ``ru_maxrss``).  The script prints
a table, fits per stage the growth exponents of time and of peak RSS against the thread count
(slope of the log-log least-squares line: time ~1 is linear, memory ~0 is bounded) and exits with
status 1 when any stage's memory exponent exceeds ``--max-memory-exponent`` (0.2) or a stage peaks
above ``--max-peak-gib`` (4).  Its last line is::

    peak RSS growth exponent E.EE, time growth exponent T.TT, largest stage peak G.GG GiB at N threads

(E and T: the largest exponent of any pipeline stage; G: the largest peak of any stage at the largest
size; ``synth`` is shown but is a tool, not a stage).

Usage: ``python benchmarks/scale.py [--factors 1,4,16] [--full] [--work scratch/bench-scale]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FULL_THREADS = 2_200_000
GIB = 1024**3
TOOLS = ("synth",)  # measured and shown, but not pipeline stages: not part of the verdict


@dataclass
class Measure:
    stage: str
    threads: int
    seconds: float
    peak_bytes: int
    status: int


def run(command: list[str], log: Path) -> tuple[float, int, int]:
    """Run ``command``; ``(wall seconds, peak RSS bytes, exit status)`` of that process alone."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "2")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return seconds, peak, process.returncode


def secmine(*args: str) -> list[str]:
    return [sys.executable, "-m", "secmine.cli", *args]


def classified_standin(run_dir: Path) -> Path:
    """The classify stage's output shape (``CLASSIFIED_COLUMNS``) from the keyword matches and the
    corpus dates, written by DuckDB (memory-limited): label 1 where a keyword matched."""
    sys.path.insert(0, str(ROOT / "src"))
    from secmine.collect.corpus import connect

    corpus = run_dir / "data/raw/corpus"
    matches = (run_dir / "data/interim/keywords.parquet").as_posix()
    target = run_dir / "data/processed/classified.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    con = connect(corpus)
    con.execute(f"SET temp_directory = '{(run_dir / 'duckdb.tmp').as_posix()}'")
    con.execute(
        f"COPY (SELECT m.id, m.platform, m.kind, m.repo, m.number, t.created_at, m.keyword_match, "
        f"CASE WHEN m.keyword_match THEN 0.9 ELSE 0.1 END AS probability, "
        f"CAST(m.keyword_match AS BIGINT) AS label "
        f"FROM read_parquet('{matches}') m JOIN threads t USING (id) ORDER BY m.id) "
        f"TO '{target.as_posix()}' (FORMAT parquet)"
    )
    con.close()
    return target


def measure_size(label: str, factor: int, limit: int, work: Path, args: argparse.Namespace) -> list[Measure]:
    folder = work / label
    if folder.exists():
        shutil.rmtree(folder)
    run_dir = folder / "run"
    snapshot = folder / "issues.jsonl"
    logs = folder / "logs"
    results: list[Measure] = []

    def step(stage: str, command: list[str]) -> None:
        seconds, peak, status = run(command, logs / f"{stage}.log")
        results.append(Measure(stage, threads, seconds, peak, status))
        print(f"  {label:>6} {stage:<10} {seconds:9.1f} s {peak / GIB:7.3f} GiB  exit {status}", flush=True)
        if status != 0:
            tail = (logs / f"{stage}.log").read_text(errors="replace").splitlines()[-5:]
            print("    " + "\n    ".join(tail), flush=True)

    threads = 0
    step("synth", secmine("synth", "--factor", str(factor), "--threads", str(limit), "--seed", str(args.seed),
                          "--out", str(folder), "--no-corpus", "--plain", "--no-progress"))
    threads = json.loads((folder / "synth.json").read_text())["threads"]
    for measure in results:
        measure.threads = threads
    out = ["--out", str(run_dir)]
    corpus = str(run_dir / "data/raw/corpus")
    classified = str(run_dir / "data/processed/classified.parquet")
    step("collect", secmine("collect", *out, "--snapshot", str(snapshot)))
    step("keywords", secmine("keywords", *out, "--corpus", corpus))
    start = time.perf_counter()
    classified_standin(run_dir)
    print(f"  {label:>6} (classified stand-in written by DuckDB in {time.perf_counter() - start:.1f} s)", flush=True)
    if args.classify_chunk and args.model_dir:
        chunk = folder / "chunk.parquet"
        _write_chunk(run_dir / "data/raw/corpus", chunk, args.classify_chunk)
        step("classify*", secmine("classify", "--out", str(folder / "classify"), "--input", str(chunk),
                                  "--model-dir", args.model_dir))
    step("rq1", secmine("rq1", *out, "--classified", classified, "--corpus", corpus))
    step("sample", secmine("sample", *out, "--classified", classified, "--corpus", corpus))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def _write_chunk(corpus: Path, target: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from secmine.collect.corpus import iter_batches

    batches, total = [], 0
    for batch in iter_batches(corpus, batch_size=min(rows, 2000)):
        batches.append(batch.slice(0, rows - total))
        total += batches[-1].num_rows
        if total >= rows:
            break
    pq.write_table(pa.Table.from_batches(batches), target)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) on log(x)."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(max(y, 1e-9)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((x - mx) ** 2 for x in lx)
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / den if den else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factors", default="1,4,16", help="replication factors (comma-separated)")
    parser.add_argument("--full", action="store_true", help=f"also {FULL_THREADS:,} threads (the paper's scale)")
    parser.add_argument("--work", default="scratch/bench-scale", help="working folder (synthetic corpora)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the synthetic corpora")
    parser.add_argument("--classify-chunk", type=int, default=0, help="classify this many threads (needs --model-dir)")
    parser.add_argument("--model-dir", default="", help="a trained model folder for --classify-chunk")
    parser.add_argument("--max-memory-exponent", type=float, default=0.2)
    parser.add_argument("--max-peak-gib", type=float, default=4.0)
    parser.add_argument("--json", default="", help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)

    work = (ROOT / args.work) if not Path(args.work).is_absolute() else Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sizes = [(f"{f}x", f, 0) for f in (int(v) for v in args.factors.split(",") if v.strip())]
    if not sizes and not args.full:
        parser.error("give --factors or --full")
    if args.full:
        sizes.append(("2.2M", 109, FULL_THREADS))  # 109 x 20,222 snapshot threads, cut at 2.2 M
    print("SYNTHETIC corpora (secmine synth); stages run as `secmine <stage>` subprocesses", flush=True)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}", flush=True)
    measures: list[Measure] = []
    for label, factor, limit in sizes:
        measures += measure_size(label, factor, limit, work, args)

    failed = [m for m in measures if m.status != 0]
    stages = list(dict.fromkeys(m.stage for m in measures))
    print()
    print(f"{'stage':<10} {'threads':>10} {'seconds':>9} {'peak GiB':>9} {'us/thread':>10} {'KB/thread':>10}")
    for m in measures:
        print(f"{m.stage:<10} {m.threads:>10,} {m.seconds:>9.1f} {m.peak_bytes / GIB:>9.3f} "
              f"{1e6 * m.seconds / m.threads:>10.1f} {m.peak_bytes / 1024 / m.threads:>10.2f}")
    print()
    print(f"{'stage':<10} {'time exp':>9} {'RSS exp':>9} {'max peak GiB':>13}")
    worst_memory, worst_time = -math.inf, -math.inf
    exponents = {}
    for stage in stages:
        rows = sorted((m for m in measures if m.stage == stage and m.status == 0), key=lambda m: m.threads)
        if len({m.threads for m in rows}) < 2:
            continue
        t_exp = slope([m.threads for m in rows], [m.seconds for m in rows])
        m_exp = slope([m.threads for m in rows], [m.peak_bytes for m in rows])
        exponents[stage] = {"time": t_exp, "rss": m_exp}
        if stage not in TOOLS:
            worst_memory, worst_time = max(worst_memory, m_exp), max(worst_time, t_exp)
        print(f"{stage:<10} {t_exp:>9.2f} {m_exp:>9.2f} {max(m.peak_bytes for m in rows) / GIB:>13.3f}")
    largest = max(m.threads for m in measures)
    top = max((m for m in measures if m.threads == largest and m.stage not in TOOLS), key=lambda m: m.peak_bytes)
    if args.json:
        Path(args.json).write_text(json.dumps({"measures": [m.__dict__ for m in measures], "exponents": exponents},
                                              indent=2, sort_keys=True) + "\n")
    status = 0
    if failed:
        print(f"FAILED: {', '.join(f'{m.stage} at {m.threads:,}' for m in failed)} (see the logs under {work})")
        status = 1
    if worst_memory > args.max_memory_exponent:
        grown = [s for s, e in exponents.items() if e["rss"] > args.max_memory_exponent and s not in TOOLS]
        print(f"FAILED: peak RSS grows with the corpus (exponent > {args.max_memory_exponent}) in: {', '.join(grown)}")
        status = 1
    if top.peak_bytes / GIB > args.max_peak_gib:
        print(f"FAILED: {top.stage} peaks at {top.peak_bytes / GIB:.2f} GiB (> {args.max_peak_gib} GiB)")
        status = 1
    if not exponents:  # one size: a growth exponent needs two
        print("one corpus size only: no growth exponent (add a smaller size, e.g. --factors 16 --full)")
    memory_text, time_text = (f"{worst_memory:.2f}", f"{worst_time:.2f}") if exponents else ("n/a", "n/a")
    print(f"peak RSS growth exponent {memory_text}, time growth exponent {time_text}, "
          f"largest stage peak {top.peak_bytes / GIB:.2f} GiB at {largest} threads")
    return status


if __name__ == "__main__":
    sys.exit(main())
