"""Fault injection over a live crawl: kill -9 at random points and random faults of every kind.

:func:`run_chaos` serves a world of a few thousand threads from the fake API on 127.0.0.1, crawls
it once without faults (the reference), then crawls it again in a subprocess that is killed with
``SIGKILL`` at random points (``kills`` times) while the server injects random faults of every kind
of :data:`~secmine_testing.fake_api.FAULT_KINDS`; after each kill the crawl is started again
(it resumes), as a user would, until it completes.  The corpus replayed from that archive is
compared with the reference: threads lost, duplicated and differing must all be 0.

The subprocess is ``python -m secmine_testing.chaos worker ...``: the same :func:`crawl` the
``secmine collect`` command runs, with a fake clock so that backoff waits take no time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secmine_testing.fake_api import FAULT_KINDS, FakeAPI, FakeData, github_repo_data, hub_repo_data

GH_TOKEN = "ghp_CHAOStoken0000"
HF_TOKEN = "hf_CHAOStoken0000"
# faults that only make sense as GraphQL answers
GRAPHQL_ONLY = frozenset({"data_null", "repo_null", "null_node", "timeout", "timeout_error"})
SLOW_DELAY = 2.5
TIMEOUT_S = 2.0


def chaos_world(*, seed: int = 0, repos: int = 3, issues: int = 900, pulls: int = 250, discussions: int = 100,
                models: int = 17, model_discussions: int = 12) -> FakeData:  # fmt: skip
    """GitHub repositories linked from Hub models, with long threads and bots."""
    data = FakeData()
    rng = random.Random(seed)
    hub = []
    for r in range(repos):
        name = f"org{r}/project{r}"
        data.github[name] = github_repo_data(
            seed=seed + r, issues=issues, pulls=pulls, discussions=discussions
        )
    for m in range(models):
        linked = f"https://github.com/org{m % repos}/project{m % repos}" if m < repos else "no links"
        hub.append(
            hub_repo_data(f"hub{m}/model-{m}", seed=seed + m, likes=100 - m, readme=f"Code: {linked}",
                          discussions=rng.randint(model_discussions // 2, model_discussions))  # fmt: skip
        )
    data.hf["model"] = hub
    return data


def count_threads(data: FakeData, linked_models: int) -> int:
    github = sum(len(items) for kinds in data.github.values() for items in kinds.values())
    hub = sum(len(m["discussions"]) for m in data.hf["model"][:linked_models])
    return github + hub


def _config_args(url: str, archive: Path) -> list[str]:
    return ["--endpoint", url, "--archive-dir", str(archive)]


def _live_config(url: str) -> Any:
    from secmine.collect.live import LiveConfig

    return LiveConfig(hf_endpoint=url, github_endpoint=url, hf_limit=100, timeout_s=TIMEOUT_S, max_retries=6)


def worker(argv: list[str]) -> int:
    """One crawl (resuming the archive's unfinished run); exit 1 with one line on a collect error."""
    parser = argparse.ArgumentParser(prog="python -m secmine_testing.chaos worker")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--archive-dir", required=True)
    args = parser.parse_args(argv)
    import logging

    from secmine.collect.http import CollectError
    from secmine.collect.live import Credentials, crawl
    from secmine_testing.clock import FakeClock

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    try:
        crawl(
            args.archive_dir,
            _live_config(args.endpoint),
            credentials=Credentials(github=[GH_TOKEN], hf=HF_TOKEN),
            clock=FakeClock(0),
            progress=False,
            durable=True,
        )
    except CollectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


class Monkey:
    """Injects faults into requests as they arrive (``FakeAPI.on_request``): each kind of
    :data:`FAULT_KINDS` once, spread over the first part of the crawl (``pending_rate``), then a
    random kind at ``rate``; GraphQL-only kinds go to GraphQL requests."""

    def __init__(self, api: FakeAPI, rng: random.Random, rate: float, pending_rate: float) -> None:
        self.api = api
        self.rng = rng
        self.rate = rate
        self.pending_rate = pending_rate
        self.pending = list(FAULT_KINDS)
        self.rng.shuffle(self.pending)
        self.lock = threading.Lock()

    def __call__(self, number: int) -> None:
        entry = self.api.log[number - 1]
        graphql = entry.path == "/graphql"
        fits = [k for k in FAULT_KINDS if graphql or k not in GRAPHQL_ONLY]
        with self.lock:
            waiting = [k for k in self.pending if k in fits]
            if waiting and self.rng.random() < self.pending_rate:
                kind = waiting[0]
                self.pending.remove(kind)
            elif self.rng.random() < self.rate:
                kind = self.rng.choice(fits)
            else:
                return
        self.api.add_fault(kind, entry.path, times=1, delay=SLOW_DELAY, retry_after=1)


@dataclass
class ChaosReport:
    threads: int
    reference_requests: int
    kills: int
    runs: int
    failed_runs: int
    requests: int
    lost: list[str]
    duplicated: list[str]
    differing: list[str]
    injected: dict[str, int]
    fault_records: int
    messages: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            not self.lost
            and not self.duplicated
            and not self.differing
            and all(self.injected.get(kind, 0) > 0 for kind in FAULT_KINDS)
        )

    def lines(self) -> list[str]:
        out = [
            f"threads on the server: {self.threads}; reference crawl: {self.reference_requests} requests",
            f"chaos crawl: {self.kills} kills (SIGKILL), {self.runs} runs ({self.failed_runs} stopped "
            f"with an error and were rerun), {self.requests} requests, {self.fault_records} page timeouts "
            "noted",
            "faults injected: " + ", ".join(f"{k} {self.injected.get(k, 0)}" for k in FAULT_KINDS),
            f"threads lost: {len(self.lost)}  duplicated: {len(self.duplicated)}  "
            f"differing: {len(self.differing)}",
        ]
        named = (("lost", self.lost), ("duplicated", self.duplicated), ("differing", self.differing))
        for name, ids in named:
            if ids:
                out.append(f"  {name}: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}")
        out.append(f"distinct error messages seen ({len(self.messages)}):")
        ordered = sorted(self.messages.items(), key=lambda kv: (-kv[1], kv[0]))
        out += [f"  {count:>5}  {message}" for message, count in ordered]
        out.append(f"{self.seconds:.1f} s")
        return out


_NOISE = [
    (re.compile(r"http://127\.0\.0\.1:\d+"), "ENDPOINT"),
    (re.compile(r"/tmp/[^\s:]+"), "/tmp/..."),
    (re.compile(r"(?<=[?&]p=)\d+|(?<=cursor=)\d+"), "N"),
    (re.compile(r"/api/models/[^\s?]+"), "/api/models/..."),
    (re.compile(r"/[\w.-]+/[\w.-]+/resolve/main/README\.md"), "/.../resolve/main/README.md"),
    (re.compile(r"\b\d+(\.\d+)?\b"), "N"),
]
_INTERESTING = re.compile(r"retrying|asking a smaller page|error:|Error|refused|WARNING")


def _distinct(stderr: str) -> Counter[str]:
    seen: Counter[str] = Counter()
    for line in stderr.splitlines():
        if not _INTERESTING.search(line) or line.startswith("INFO secmine.collect: resuming"):
            continue
        for pattern, replacement in _NOISE:
            line = pattern.sub(replacement, line)
        seen[line.strip()[:300]] += 1
    return seen


def _records(archive: Path, endpoint: str) -> dict[str, dict[str, Any]]:
    """Threads of an archive's complete runs (replayed offline): id -> record without provenance
    (the endpoint in Hugging Face URLs is the server's, which differs between the two crawls)."""
    from secmine.collect.live import replay

    replayed = replay(archive)
    counts = Counter(t.id for t in replayed.threads)
    records: dict[str, dict[str, Any]] = {}
    for thread in replayed.threads:
        record = thread.to_record()
        record.pop("source", None)
        record["url"] = str(record.get("url") or "").replace(endpoint, "ENDPOINT")
        records[thread.id] = record
    records["__duplicates__"] = {k: v for k, v in counts.items() if v > 1}
    return records


def run_chaos(*, kills: int = 20, seed: int = 0, rate: float = 0.05, size: float = 1.0,
              work_dir: Path | None = None, node_limit: int | None = 15_000,
              per_run_timeout: float = 300.0) -> ChaosReport:  # fmt: skip
    """Run the fault-injection suite (see the module docstring); ``size`` scales the world."""
    from secmine.collect.http import CollectError
    from secmine.collect.live import Credentials, crawl
    from secmine_testing.clock import FakeClock

    started = time.perf_counter()
    rng = random.Random(seed)
    scale = lambda n: max(1, int(n * size))  # noqa: E731
    world_args = {
        "seed": seed,
        "repos": 3,
        "issues": scale(900),
        "pulls": scale(250),
        "discussions": scale(100),
        "models": 17,
        "model_discussions": max(2, scale(12)),
    }
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        root = Path(tmp)
        with FakeAPI(chaos_world(**world_args), github_limit=10**9, hf_limit=10**9,
                     graphql_node_limit=node_limit) as api:  # fmt: skip
            crawl(
                root / "reference",
                _live_config(api.url),
                credentials=Credentials(github=[GH_TOKEN], hf=HF_TOKEN),
                clock=FakeClock(0),
                progress=False,
                durable=False,
            )
            reference_requests = api.request_count
            reference_url = api.url
        reference = _records(root / "reference", reference_url)
        if reference.pop("__duplicates__"):
            raise CollectError("the reference crawl holds duplicated threads")

        data = chaos_world(**world_args)
        with FakeAPI(data, github_limit=10**9, hf_limit=10**9, graphql_node_limit=node_limit) as api:
            monkey = Monkey(api, rng, rate, pending_rate=min(1.0, 3 * len(FAULT_KINDS) / reference_requests))
            # kill points spread over the crawl (request numbers; faults and resumes add requests)
            last = max(int(reference_requests * 0.9), kills + 3)
            points = sorted(rng.sample(range(2, last), kills))
            state: dict[str, Any] = {"process": None, "killed": 0, "armed": None}
            lock = threading.Lock()

            def on_request(number: int) -> None:
                monkey(number)
                with lock:
                    process = state["process"]
                    if (
                        process is not None
                        and state["armed"] is not process  # one kill per run; the next point, the next run
                        and state["killed"] < len(points)
                        and number >= points[state["killed"]]
                    ):
                        state["killed"] += 1
                        state["armed"] = process
                        delay = rng.uniform(0.0, 0.05)  # mid-request, or while the answer is archived
                        threading.Timer(delay, _kill, args=(process,)).start()

            api.on_request = on_request
            messages: Counter[str] = Counter()
            runs = failed = killed = 0
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            for name in ("GITHUB_TOKEN", "HF_TOKEN"):
                env.pop(name, None)
            while True:
                runs += 1
                if runs > kills + 50:
                    raise CollectError(f"the chaos crawl did not complete after {runs - 1} runs")
                command = [sys.executable, "-m", "secmine_testing.chaos", "worker",
                           *_config_args(api.url, root / "archive")]  # fmt: skip
                process = subprocess.Popen(
                    command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                with lock:
                    state["process"] = process
                try:
                    _, stderr = process.communicate(timeout=per_run_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    _, stderr = process.communicate()
                    raise CollectError(f"a chaos run took longer than {per_run_timeout:.0f} s") from None
                with lock:
                    state["process"] = None
                messages += _distinct(stderr)
                if process.returncode == -signal.SIGKILL:
                    killed += 1
                    continue
                if process.returncode == 0:
                    if state["killed"] < len(points):  # finished before the remaining kill points
                        points = points[: state["killed"]]
                    break
                failed += 1
            requests = api.request_count
            chaos_url = api.url
        chaos = _records(root / "archive", chaos_url)
        duplicates = chaos.pop("__duplicates__")
        from secmine.collect.archive import Archive

        runs_done = Archive(root / "archive").runs()
        fault_records = sum(1 for run in runs_done for r in run.records() if "fault" in r)
        report = ChaosReport(
            threads=len(reference),
            reference_requests=reference_requests,
            kills=killed,
            runs=runs,
            failed_runs=failed,
            requests=requests,
            lost=sorted(set(reference) - set(chaos)),
            duplicated=sorted(duplicates),
            differing=sorted(k for k in set(reference) & set(chaos) if reference[k] != chaos[k]),
            injected=dict(api.applied),
            fault_records=fault_records,
            messages=messages,
        )
        extra = sorted(set(chaos) - set(reference))
        report.differing += [f"{k} (not in the reference)" for k in extra]
    report.seconds = time.perf_counter() - started
    return report


def _kill(process: subprocess.Popen[str]) -> None:
    try:
        process.send_signal(signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["worker"]:
        return worker(argv[1:])
    parser = argparse.ArgumentParser(description="kill -9 and random faults over a live crawl (fake API)")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.05, help="share of requests given a random fault")
    parser.add_argument("--size", type=float, default=1.0, help="world size (1.0: about 4,000 threads)")
    args = parser.parse_args(argv)
    report = run_chaos(kills=args.kills, seed=args.seed, rate=args.rate, size=args.size)
    print("\n".join(report.lines()))
    if report.kills < args.kills:
        print(f"FAIL: only {report.kills} of {args.kills} kills landed", file=sys.stderr)
        return 1
    if not report.ok:
        print("FAIL: threads lost, duplicated or differing, or a fault kind never injected", file=sys.stderr)
        return 1
    print(json.dumps({"lost": 0, "duplicated": 0, "differing": 0, "kills": report.kills}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
