"""The load bench over a running server: concurrent hrm_day clients and interleaved hrm_stream sequences, each
decision held against the Python runtime on the same bundle and the same inputs.

    hrm_day     `clients` threads × `requests` requests, each one instrument's day (its own seeded tokens,
                so the server's inference cache never answers), days × minutes at the model's full size
    hrm_stream  `streams` threads, one sequence each: START with the day's look-back, then one request per
                minute for `minutes` minutes, END on the last; the threads' minutes interleave on the server

Reported per part: requests, errors, wall time, throughput, p50/p99 client latency, Triton's executions (how
many requests the batcher joined), and how many requests' decisions differ from the runtime's: action and
halted at every minute and the halting minute exactly, confidence and quantity by their largest difference.
The reference's own time gives the in-process throughput of the same work, measured in the same run.
Bounded: the counts are fixed, every call has a timeout, and the threads end with their loops.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from hrm_export.core.market_inputs import sample_days
from hrm_export.runtime import HRMRuntime
from hrm_export.triton.client import TritonClient

EXACT = ("action", "halted")  # decision fields compared exactly (halt_minute too); the others by max |Δ|


@dataclass(frozen=True)
class LoadOptions:
    clients: int = 8
    requests: int = 500
    streams: int = 8
    minutes: int = 390
    protocol: str = "grpc"
    seed: int = 0


def run_load(url: str, bundle, opts: LoadOptions, backend: str = "ort-cpu", precision: str = "fp32") -> dict:
    """Run both parts against the server at `url`; `bundle` is the bundle the server runs (for the reference)."""
    with HRMRuntime.open(bundle, backend=backend, precision=precision) as rt:
        shape = (rt.limits.days, rt.cfg.n_day_features), (rt.limits.minutes, rt.cfg.n_minute_features)
        minutes = min(opts.minutes, rt.limits.total_minutes)
        report = {"protocol": opts.protocol, "reference": f"{rt.backend_name}/{rt.precision}",
                  "days": shape[0][0], "day_minutes": shape[1][0]}
        report["hrm_day"] = _day_part(url, rt, shape, opts)
        report["hrm_stream"] = _stream_part(url, rt, shape, minutes, opts)
    client = TritonClient(url, opts.protocol)
    try:
        for part in ("hrm_day", "hrm_stream"):
            stats = client.statistics(part)
            report[part]["triton_executions"] = stats["execution_count"]
            report[part]["triton_inferences"] = stats["inference_count"]
    finally:
        client.close()
    return report


POOL = 32  # distinct market days the requests cycle through


def tokens(seed: int, shape: tuple[tuple[int, int], tuple[int, int]], cfg) -> tuple[np.ndarray, np.ndarray]:
    """One instrument's day of the synthetic market (real features' ranges; the runtime refuses others):
    days (1, D, F_day), the latest D look-back days, and minutes (1, T, F_min), the session's first T minutes."""
    days, minutes = sample_days(cfg, POOL, seed=0)
    i = seed % POOL
    return days[i:i + 1, -shape[0][0]:], minutes[i:i + 1, :shape[1][0]]


def _day_part(url: str, rt: HRMRuntime, shape, opts: LoadOptions) -> dict:
    n = opts.clients * opts.requests
    got: list[dict | None] = [None] * n
    latency = np.full(n, np.nan)
    errors: list[str] = []

    def client_loop(c: int) -> None:
        client = TritonClient(url, opts.protocol)
        try:
            for i in range(c * opts.requests, (c + 1) * opts.requests):
                days, minutes = tokens(opts.seed + i, shape, rt.cfg)
                t0 = time.perf_counter()
                try:
                    got[i] = client.day(days, minutes)
                except Exception as e:  # noqa: BLE001 — counted and reported, the loop goes on
                    errors.append(str(e).splitlines()[0])
                latency[i] = time.perf_counter() - t0
        finally:
            client.close()

    wall = _run_threads(client_loop, opts.clients)
    mismatches, worst, ref_s = 0, 0.0, 0.0
    for lo in range(0, n, 64):  # the reference in batches of 64 instruments (the runtime chunks them further)
        idx = [i for i in range(lo, min(n, lo + 64)) if got[i] is not None]
        if not idx:
            continue
        feeds = [tokens(opts.seed + i, shape, rt.cfg) for i in idx]
        t0 = time.perf_counter()
        tl = rt.run_day(np.concatenate([d for d, _ in feeds]), np.concatenate([m for _, m in feeds]))
        ref_s += time.perf_counter() - t0
        for row, i in enumerate(idx):
            ref = {name: getattr(tl, name)[row] for name in (*EXACT, "confidence", "quantity", "halt_minute")}
            bad, diff = _compare(got[i], ref)
            mismatches += bad
            worst = max(worst, diff)
    return _summary(n, errors, wall, latency, mismatches, worst, unit="days", reference_s=ref_s)


def _stream_part(url: str, rt: HRMRuntime, shape, minutes: int, opts: LoadOptions) -> dict:
    got: list[dict[int, dict]] = [{} for _ in range(opts.streams)]  # stream → minute → answer
    latency = np.full((opts.streams, minutes), np.nan)
    errors: list[str] = []
    base = opts.seed + opts.clients * opts.requests  # other tokens than the hrm_day part's

    def stream_loop(s: int) -> None:
        client = TritonClient(url, opts.protocol)
        days, bars = tokens(base + s, shape, rt.cfg)
        sequence = 1_000 + s  # correlation id = instrument
        try:
            client.step(sequence, days=days, start=True)
            for t in range(minutes):
                t0 = time.perf_counter()
                try:
                    got[s][t] = client.step(sequence, minutes=bars[:, t:t + 1], minute=t, end=t == minutes - 1)
                except Exception as e:  # noqa: BLE001 — counted and reported, the stream goes on
                    errors.append(str(e).splitlines()[0])
                latency[s, t] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 — the START itself failed
            errors.append(str(e).splitlines()[0])
        finally:
            client.close()

    wall = _run_threads(stream_loop, opts.streams)
    mismatches, worst, ref_s = 0, 0.0, 0.0
    for s in range(opts.streams):
        days, bars = tokens(base + s, shape, rt.cfg)
        session = rt.start_day(days)
        for t in range(minutes):
            t0 = time.perf_counter()
            d = session.push(bars[:, t:t + 1], start_minute=t)  # the same one-minute steps the server ran
            ref_s += time.perf_counter() - t0
            if t not in got[s]:
                continue  # an error, counted as one
            ref = {name: getattr(d, name) for name in (*EXACT, "confidence", "quantity", "halt_minute")}
            bad, diff = _compare(got[s][t], ref)
            mismatches += bad
            worst = max(worst, diff)
    return _summary(opts.streams * minutes, errors, wall, latency.ravel(), mismatches, worst, unit="minutes",
                    reference_s=ref_s)


def _compare(got: dict, ref: dict) -> tuple[bool, float]:
    """(decisions differ?, largest |Δ| of confidence and quantity); each field flattened (one instrument)."""
    flat = lambda side, k: np.ravel(np.asarray(side[k]))  # noqa: E731
    differ = any(not np.array_equal(flat(got, k), flat(ref, k)) for k in (*EXACT, "halt_minute"))
    diff = max(float(np.max(np.abs(flat(got, k) - flat(ref, k).astype(np.float64)))) for k in ("confidence",
                                                                                              "quantity"))
    return differ, diff


def _run_threads(target, n: int) -> float:
    threads = [threading.Thread(target=target, args=(i,), name=f"load-{i}") for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def _summary(n: int, errors: list[str], wall: float, latency: np.ndarray, mismatches: int, worst: float,
             unit: str, reference_s: float) -> dict:
    ok = latency[np.isfinite(latency)]
    return {"requests": n, "errors": len(errors), "first_error": errors[0] if errors else None,
            "wall_s": round(wall, 3), "throughput_per_s": round(n / wall, 1), "unit": unit,
            # the same work through the runtime in this process, after the load (hrm_day: 64 instruments a call;
            # hrm_stream: one sequence after another): Triton's throughput as a ratio to it, same run
            "in_process_per_s": round(n / reference_s, 1) if reference_s else None,
            "ratio_to_in_process": round(reference_s / wall, 2) if reference_s else None,
            "p50_ms": round(1e3 * float(np.percentile(ok, 50)), 2) if ok.size else None,
            "p99_ms": round(1e3 * float(np.percentile(ok, 99)), 2) if ok.size else None,
            "decisions_differ": mismatches, "max_abs_diff_confidence_quantity": worst}
