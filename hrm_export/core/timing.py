"""Timing one cell: warm-up, an adaptive number of iterations, percentiles.

Iteration counts follow a time budget per cell rather than a fixed number: a batch-1 H-module call takes
milliseconds and gets hundreds of samples, a batch-128 day on a 2-core CPU takes seconds and gets one or two.
Every Timing records how many warm-ups and iterations its percentiles rest on, so a p99 over 3 samples is
read as what it is. On a GPU each iteration is timed with CUDA events after a synchronisation, so queued
work from the previous call never leaks into the next sample.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

MAX_WARMUP = 5


@dataclass
class Timing:
    warmup: int
    iterations: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    min_ms: float
    clock: str  # "perf_counter" (host wall clock) | "cuda-events"

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics (numpy's default)."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    s = sorted(samples)
    pos = (len(s) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize(samples_ms: list[float], warmup: int, clock: str) -> Timing:
    return Timing(warmup=warmup, iterations=len(samples_ms), p50_ms=percentile(samples_ms, 50),
                  p90_ms=percentile(samples_ms, 90), p99_ms=percentile(samples_ms, 99), max_ms=max(samples_ms),
                  mean_ms=sum(samples_ms) / len(samples_ms), min_ms=min(samples_ms), clock=clock)


def plan_iterations(last_ms: float, budget_s: float, min_iters: int, max_iters: int) -> int:
    """How many timed iterations fit in the budget, given the last warm-up's duration."""
    fit = int(budget_s * 1e3 / max(last_ms, 1e-3))
    return max(min_iters, min(max_iters, fit))


def time_call(fn: Callable[[], object], budget_s: float = 2.0, device: str = "cpu", min_iters: int = 3,
              max_iters: int = 500, warmup: int | None = None) -> Timing:
    """Time `fn()`: warm-ups (the first call pays lazy session creation, allocator growth, compilation), then
    iterations sized to `budget_s`. warmup=None: warm up for ~20 % of the budget, 1 to MAX_WARMUP calls;
    an explicit count is still at least 1, because the last warm-up sizes the iteration count."""
    one = _cuda_once if device.startswith("cuda") else _host_once
    n_warm, spent_ms, last_ms = 0, 0.0, 0.0
    target = MAX_WARMUP if warmup is None else max(1, warmup)
    while n_warm < target:
        last_ms = one(fn)
        n_warm += 1
        spent_ms += last_ms
        if warmup is None and spent_ms >= 0.2 * budget_s * 1e3:
            break
    n = plan_iterations(last_ms, budget_s, min_iters, max_iters)
    samples = [one(fn) for _ in range(n)]
    return summarize(samples, n_warm, "cuda-events" if device.startswith("cuda") else "perf_counter")


def _host_once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def _cuda_once(fn: Callable[[], object]) -> float:
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def time_interleaved(fns: dict[str, Callable[[], object]], budget_s: float = 2.0, device: str = "cpu",
                     min_iters: int = 3, max_iters: int = 500, refused: dict[str, str] | None = None,
                     refusals: tuple[type[Exception], ...] = ()) -> dict[str, Timing]:
    """Time several implementations of one cell in alternation: warm each up, then take one sample of each in
    turn until each has its budgeted count. On a shared machine the load drifts over seconds; alternating makes
    every backend see the same drift, so the ratios of one run stay fair when absolute figures do not.

    An implementation whose first call raises one of `refusals` (e.g. a shape outside an engine's profile) is
    left out and its message put in `refused`."""
    one = _cuda_once if device.startswith("cuda") else _host_once
    warm, plan = {}, {}
    for key, fn in list(fns.items()):
        n_warm, spent_ms, last_ms = 0, 0.0, 0.0
        try:
            while n_warm < MAX_WARMUP and (n_warm == 0 or spent_ms < 0.2 * budget_s * 1e3):
                last_ms = one(fn)
                n_warm += 1
                spent_ms += last_ms
        except refusals as e:
            if refused is not None:
                refused[key] = str(e)
            fns = {k: f for k, f in fns.items() if k != key}
            continue
        warm[key], plan[key] = n_warm, plan_iterations(last_ms, budget_s, min_iters, max_iters)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(max(plan.values(), default=0)):
        for key, fn in fns.items():
            if i < plan[key]:
                samples[key].append(one(fn))
    clock = "cuda-events" if device.startswith("cuda") else "perf_counter"
    return {k: summarize(samples[k], warm[k], clock) for k in fns}
