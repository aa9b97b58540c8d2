"""Rates and latencies over a sliding time window, for diagnostics."""
from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


class RateMeter:
    """Events per second over the last ``window`` seconds."""

    def __init__(self, window: float = 5.0) -> None:
        if window <= 0:
            raise ValueError(f"window must be > 0, got {window}")
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()
        self.total = 0

    def tick(self, now: float) -> None:
        with self._lock:
            self._times.append(now)
            self.total += 1
            self._trim(now)

    def rate(self, now: float) -> float:
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], self._times[-1] - self._times[0])
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()


class LatencyStats:
    """Mean / p95 / max of the last ``size`` samples (seconds)."""

    def __init__(self, size: int = 200) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(float(seconds))

    def summary(self) -> dict[str, float]:
        with self._lock:
            samples = np.array(self._samples, dtype=np.float64)
        if samples.size == 0:
            return {"count": 0, "mean": 0.0, "p95": 0.0, "max": 0.0}
        return {
            "count": int(samples.size),
            "mean": float(samples.mean()),
            "p95": float(np.percentile(samples, 95)),
            "max": float(samples.max()),
        }


class StageTimer:
    """Wall and thread-CPU time of consecutive stages of one frame, for finding where a node's time goes.

    ``lap(name)`` charges the time since the previous lap to ``name`` (laps of one name add up within the
    frame, e.g. once per target); ``finish()`` records the frame's totals. About a microsecond per lap."""

    def __init__(self, stats: StageStats) -> None:
        self._stats = stats
        self._frame: dict[str, list[float]] = {}
        self._wall, self._cpu = time.monotonic(), time.thread_time()

    def lap(self, name: str) -> None:
        wall, cpu = time.monotonic(), time.thread_time()
        spent = self._frame.setdefault(name, [0.0, 0.0])
        spent[0] += wall - self._wall
        spent[1] += cpu - self._cpu
        self._wall, self._cpu = wall, cpu

    def finish(self) -> None:
        for name, (wall, cpu) in self._frame.items():
            self._stats.add(name, wall, cpu)
        self._frame = {}


class StageStats:
    """Per-stage recent wall / CPU samples (seconds), summarised in milliseconds."""

    def __init__(self, size: int = 200) -> None:
        self._size = size
        self._wall: dict[str, deque[float]] = {}
        self._cpu: dict[str, deque[float]] = {}
        self._runs: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, name: str, wall: float, cpu: float | None = None) -> None:
        with self._lock:
            if name not in self._wall:
                self._wall[name] = deque(maxlen=self._size)
                self._cpu[name] = deque(maxlen=self._size)
                self._runs[name] = 0
            self._runs[name] += 1
            self._wall[name].append(float(wall))
            if cpu is not None:
                self._cpu[name].append(float(cpu))

    def timer(self) -> StageTimer:
        return StageTimer(self)

    def summary(self) -> dict[str, float]:
        """{"<stage>_ms": median wall, "<stage>_cpu_ms": median thread CPU (when measured)} of recent frames,
        "<stage>_n": how many times the stage ran in all. Medians, because one preempted frame on a loaded
        machine would otherwise hide the typical cost."""
        with self._lock:
            samples = {name: (np.array(self._wall[name]), np.array(self._cpu[name])) for name in self._wall}
            runs = dict(self._runs)
        out: dict[str, float] = {}
        for name, (wall, cpu) in samples.items():
            out[f"{name}_n"] = runs[name]
            out[f"{name}_ms"] = 1000.0 * float(np.median(wall))
            if cpu.size:
                out[f"{name}_cpu_ms"] = 1000.0 * float(np.median(cpu))
        return out
