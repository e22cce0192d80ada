"""Per-stage latency: Prometheus-style histograms plus a window of recent samples for p50/p99.

Histogram buckets are cumulative counts since start (what Prometheus scrapes); percentiles come from
the last `window` samples of each stage, exactly, so a slow minute an hour ago does not hide in a
bucket. Memory is bounded: fixed buckets and a fixed-size window per stage.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

# Seconds. Spans a CUDA-graph l_step (~100 µs) to a CPU full day of the default model (~100 ms) and beyond.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Stage:
    def __init__(self, window: int):
        self.counts = [0] * (len(BUCKETS) + 1)  # last slot: +Inf
        self.total = 0.0
        self.n = 0
        self.recent: deque[float] = deque(maxlen=window)


class PerformanceMonitor:
    def __init__(self, window: int = 4096, prefix: str = "hrm_runtime"):
        self.window, self.prefix = window, prefix
        self._stages: dict[str, _Stage] = {}
        self._lock = threading.Lock()
        self.counters: dict[str, Callable[[], float]] = {}  # name -> current value (cache hits, RSS, ...)

    def observe(self, stage: str, seconds: float) -> None:
        with self._lock:
            s = self._stages.get(stage)
            if s is None:
                s = self._stages[stage] = _Stage(self.window)
            s.counts[bisect.bisect_left(BUCKETS, seconds)] += 1  # le semantics: value <= bound
            s.total += seconds
            s.n += 1
            s.recent.append(seconds)

    @contextlib.contextmanager
    def measure(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.observe(stage, time.perf_counter() - t0)

    def as_dict(self) -> dict:
        """{stage: {count, mean_ms, p50_ms, p99_ms, max_ms}} over the recent window, plus registered counters."""
        with self._lock:
            stages = {}
            for name, s in self._stages.items():
                r = np.fromiter(s.recent, dtype=np.float64)
                stages[name] = {
                    "count": s.n,
                    "mean_ms": 1e3 * s.total / s.n,
                    "p50_ms": 1e3 * float(np.percentile(r, 50)),
                    "p99_ms": 1e3 * float(np.percentile(r, 99)),
                    "max_ms": 1e3 * float(r.max()),
                    "window": len(r),
                }
        return {"stages": stages, "counters": {k: f() for k, f in self.counters.items()}}

    def prometheus(self) -> str:
        """The Prometheus text exposition format (version 0.0.4) of every stage and counter."""
        metric = f"{self.prefix}_stage_seconds"
        lines = [f"# HELP {metric} Latency of one runtime stage in seconds.", f"# TYPE {metric} histogram"]
        with self._lock:
            for name, s in sorted(self._stages.items()):
                cumulative = 0
                for bound, c in zip((*BUCKETS, float("inf")), s.counts, strict=True):
                    cumulative += c
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f'{metric}_bucket{{stage="{name}",le="{le}"}} {cumulative}')
                lines.append(f'{metric}_sum{{stage="{name}"}} {s.total!r}')
                lines.append(f'{metric}_count{{stage="{name}"}} {s.n}')
        for key, f in sorted(self.counters.items()):
            name = f"{self.prefix}_{key}"
            kind = "counter" if key.endswith("_total") else "gauge"
            lines += [f"# HELP {name} {key.replace('_', ' ')}.", f"# TYPE {name} {kind}", f"{name} {float(f())!r}"]
        return "\n".join(lines) + "\n"

    def reset(self) -> None:
        with self._lock:
            self._stages.clear()
