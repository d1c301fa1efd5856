"""A clock for tests and benchmarks: ``sleep`` moves time forward instantly."""

from __future__ import annotations

import threading
import time

from secmine.collect.http import Clock


class FakeClock(Clock):
    """A clock whose ``sleep`` only moves time forward (for tests and benchmarks)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            if seconds > 0:
                self._now += seconds
