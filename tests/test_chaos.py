"""The fault-injection suite at CI size: kills at random points and every fault kind, then the
corpus replayed from the archive equals an uninterrupted crawl's (benchmarks/chaos.py, make chaos)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from secmine_testing import chaos
from secmine_testing.fake_api import FAULT_KINDS


def test_kills_and_faults_lose_duplicate_and_change_nothing(tmp_path: Path) -> None:
    started = time.perf_counter()
    report = chaos.run_chaos(kills=3, seed=1, size=0.1, work_dir=tmp_path)
    assert report.kills == 3
    assert set(report.injected) == set(FAULT_KINDS), report.injected
    assert (report.lost, report.duplicated, report.differing) == ([], [], [])
    assert report.threads > 300 and report.ok
    assert any("partial answer" in m for m in report.messages)  # the error messages are collected
    assert time.perf_counter() - started < 55


def test_the_script_fails_when_a_thread_is_lost(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lost = chaos.ChaosReport(
        threads=10, reference_requests=5, kills=20, runs=21, failed_runs=0, requests=9,
        lost=["gh:issue:o/r#1"], duplicated=[], differing=[],
        injected={k: 1 for k in FAULT_KINDS}, fault_records=0, messages=Counter(),
    )  # fmt: skip
    monkeypatch.setattr(chaos, "run_chaos", lambda **_: lost)
    assert chaos.main(["--kills", "20"]) == 1
    out = capsys.readouterr()
    assert "threads lost: 1" in out.out and "gh:issue:o/r#1" in out.out and "FAIL" in out.err
    fine = chaos.ChaosReport(**{**lost.__dict__, "lost": [], "kills": 19})
    monkeypatch.setattr(chaos, "run_chaos", lambda **_: fine)
    assert chaos.main(["--kills", "20"]) == 1  # fewer kills than asked for
    monkeypatch.setattr(chaos, "run_chaos", lambda **_: chaos.ChaosReport(**{**fine.__dict__, "kills": 20}))
    assert chaos.main(["--kills", "20"]) == 0
