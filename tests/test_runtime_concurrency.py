"""Several sessions from several threads equal sequential use; a 10,000-push soak does not grow memory."""

from __future__ import annotations

import gc
import threading
import tracemalloc

import numpy as np
import psutil
import pytest
from runtime_bundle import tiny_bundle, tokens

from hrm_export.runtime import HRMRuntime

N_INSTRUMENTS, N_MINUTES = 4, 60


def stream(rt: HRMRuntime, days, minutes, barrier: threading.Barrier | None = None) -> np.ndarray:
    session = rt.start_day(days)
    if barrier is not None:
        barrier.wait()  # all threads push at the same time
    rows = []
    for t in range(minutes.shape[1]):
        d = session.push(minutes[:, t:t + 1], start_minute=t)
        rows.append(np.concatenate([d.action, d.confidence, d.quantity, d.q_halt, d.q_continue, d.halted]))
    return np.stack(rows)  # (T, 6)


@pytest.mark.parametrize("backend", ["torch", "ort-cpu"])
def test_threads_each_with_a_session_equal_sequential(backend):
    rt = HRMRuntime.open(tiny_bundle(), backend=backend)
    days, minutes = tokens(N_INSTRUMENTS, 16, N_MINUTES, seed=12)
    inputs = [(days[i:i + 1], minutes[i:i + 1]) for i in range(N_INSTRUMENTS)]
    sequential = [stream(rt, d, m) for d, m in inputs]
    results: list = [None] * N_INSTRUMENTS
    errors: list = []
    barrier = threading.Barrier(N_INSTRUMENTS)

    def work(i: int) -> None:
        try:
            results[i] = stream(rt, *inputs[i], barrier)
        except Exception as e:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(N_INSTRUMENTS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for i in range(N_INSTRUMENTS):
        np.testing.assert_array_equal(results[i], sequential[i], err_msg=f"instrument {i}")
    assert rt.monitor.as_dict()["stages"]["push"]["count"] == 2 * N_INSTRUMENTS * N_MINUTES


def test_soak_10000_pushes_no_memory_growth():
    rt = HRMRuntime.open(tiny_bundle(), backend="ort-cpu")
    days, minutes = tokens(1, 16, 390, seed=13)
    session = rt.session()
    process = psutil.Process()
    pushes = 0

    def run(n: int) -> None:
        nonlocal pushes
        for _ in range(n):
            if session.n_minutes in (0, 390):  # a new day every 390 pushes caps the K/V cache
                session.start_day(days)
            t = session.n_minutes
            session.push(minutes[:, t:t + 1], start_minute=t)
            pushes += 1

    run(2000)  # warm-up: allocator pools, the monitor's window and the cache fill up
    gc.collect()
    rss0, objects0 = process.memory_info().rss, len(gc.get_objects())
    run(7000)
    # tracemalloc slows every allocation many times over, so it watches the last 1000 pushes only: a leak of
    # even 64 bytes per push would show there
    gc.collect()
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    run(1000)
    gc.collect()
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(snap0, "filename"))
    tracemalloc.stop()
    rss_growth = process.memory_info().rss - rss0
    objects_growth = len(gc.get_objects()) - objects0
    assert pushes == 10_000
    assert grown < 64 * 1000, f"Python heap grew by {grown / 1024:.0f} KiB over 1000 pushes"
    assert objects_growth < 1000, f"{objects_growth} more live objects after 8000 pushes"
    assert rss_growth < 32 * 2**20, f"RSS grew by {rss_growth / 2**20:.1f} MiB over 8000 pushes"
