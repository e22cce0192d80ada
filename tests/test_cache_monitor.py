"""Inference cache (LRU, validity, keys), performance monitor (percentiles, Prometheus) and memory guard."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families
from runtime_bundle import tiny_runtime_model, tokens

from hrm_export.runtime import HRMRuntime, InferenceCache, MemoryGuard, PerformanceMonitor, observation_key


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def key(x, sha="a" * 64, backend="torch", precision="fp32"):
    return observation_key(x, model_sha256=sha, backend=backend, precision=precision)


def test_key_depends_on_bytes_shape_dtype_model_backend_and_precision():
    x = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)
    base = key(x)
    assert key(x.clone()) == base == key(x.numpy())
    y = x.clone()
    y[0, 2, 3] = float(np.nextafter(np.float32(11), np.float32(12)))  # one ulp
    z = x.clone()
    z[0, 0, 0] = -0.0  # == 0.0 as a number, another observation as bytes
    variants = [key(y), key(x.reshape(1, 4, 3)), key(x.double()), key(x, sha="b" * 64), key(x, backend="ort-cpu"),
                key(x, precision="bf16"), key(z)]
    assert len({base, *variants}) == len(variants) + 1


def test_lru_evicts_the_least_recently_used():
    cache = InferenceCache(maxsize=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert cache.stats() | {"hit_rate": 0} == {"size": 2, "maxsize": 2, "hits": 3, "misses": 1, "expired": 0,
                                               "evicted": 1, "hit_rate": 0}


def test_entries_expire_with_age_and_with_the_day():
    clock = FakeClock()
    cache = InferenceCache(maxsize=8, max_age_s=60, clock=clock)
    cache.set_day("2026-11-20")
    cache.put("k", "friday")
    clock.now = 60
    assert cache.get("k") == "friday"
    clock.now = 60.001
    assert cache.get("k") is None and cache.expired == 1 and len(cache) == 0
    cache.put("k", "friday again")
    cache.set_day("2026-11-23")  # Monday: nothing from Friday answers
    assert len(cache) == 0 and cache.get("k") is None
    cache.put("k", "monday")
    cache.set_day("2026-11-23")  # the same day again keeps it
    assert cache.get("k") == "monday"


def test_runtime_caches_run_day_and_the_h_module_per_day():
    rt = HRMRuntime.from_model(tiny_runtime_model())
    days, minutes = tokens(2, 6, 20)
    first = rt.run_day(days, minutes, day="d1")
    assert (rt.cache.hits, rt.cache.misses) == (0, 1)
    again = rt.run_day(days.clone(), minutes.clone(), day="d1")
    assert again is first and rt.cache.hits == 1
    assert not again.action_logits.flags.writeable  # a cached result cannot be edited by one caller for all
    n_l = rt.monitor.as_dict()["stages"]["l_module"]["count"]
    rt.run_day(days, minutes, day="d2")  # a new day: recomputed
    assert rt.cache.misses == 2 and rt.monitor.as_dict()["stages"]["l_module"]["count"] == n_l + 1
    other = rt.run_day(days, minutes * 0.999, day="d2")
    assert rt.cache.misses == 3 and not np.array_equal(other.action_logits, first.action_logits)
    # start_day: the same look-back on the same day reuses γ, β; the H-module runs once
    n_h = rt.monitor.as_dict()["stages"]["h_module"]["count"]
    s1, s2 = rt.start_day(days, day="d2"), rt.start_day(days, day="d2")
    assert rt.monitor.as_dict()["stages"]["h_module"]["count"] == n_h + 1
    np.testing.assert_array_equal(s1.push(minutes[:, :2], start_minute=0).confidence,
                                  s2.push(minutes[:, :2], start_minute=0).confidence)


def test_monitor_percentiles_and_as_dict():
    mon = PerformanceMonitor(window=1000)
    for ms in range(1, 101):  # 1..100 ms
        mon.observe("l_step", ms / 1e3)
    stats = mon.as_dict()["stages"]["l_step"]
    assert stats["count"] == 100 and stats["p50_ms"] == pytest.approx(50.5) and stats["p99_ms"] == pytest.approx(99.01)
    assert stats["max_ms"] == pytest.approx(100) and stats["mean_ms"] == pytest.approx(50.5)
    small = PerformanceMonitor(window=10)  # percentiles over the recent window only
    for ms in [1000] * 50 + [1] * 10:
        small.observe("push", ms / 1e3)
    assert small.as_dict()["stages"]["push"]["p99_ms"] == pytest.approx(1) and small.as_dict()["stages"]["push"][
        "count"] == 60


def test_prometheus_exposition_parses_and_buckets_are_cumulative():
    rt = HRMRuntime.from_model(tiny_runtime_model())
    days, minutes = tokens(1, 4, 12)
    rt.run_day(days, minutes)
    s = rt.start_day(days)
    for t in range(12):
        s.push(minutes[:, t:t + 1], start_minute=t)
    families = {f.name: f for f in text_string_to_metric_families(rt.monitor.prometheus())}
    hist = families["hrm_runtime_stage_seconds"]
    assert hist.type == "histogram"
    by_stage: dict[str, list] = {}
    for sample in hist.samples:
        by_stage.setdefault(sample.labels["stage"], []).append(sample)
    assert {"h_module", "l_module", "l_step", "push", "run_day", "start_day"} <= set(by_stage)
    push = by_stage["push"]
    buckets = [s.value for s in push if s.name.endswith("_bucket")]
    count = next(s.value for s in push if s.name.endswith("_count"))
    assert buckets == sorted(buckets) and buckets[-1] == count == 12
    assert families["hrm_runtime_cache_misses"].type == "counter"  # the parser strips _total from counters
    assert families["hrm_runtime_host_rss_bytes"].samples[0].value > 10e6


def test_memory_guard_warns_and_cleans_up_over_the_limit(caplog):
    cleaned = []
    guard = MemoryGuard(limit_bytes=1 << 20, check_every=3)  # 1 MiB: any Python process is over it
    guard.cleanup_hooks.append(lambda: cleaned.append(True))
    with caplog.at_level(logging.WARNING, logger="hrm_export.runtime"):
        guard.tick()
        guard.tick()
        assert not cleaned  # reads memory every 3rd call only
        guard.tick()
    assert cleaned == [True] and guard.warnings == 1 and guard.last.over
    assert "memory over limit: host RSS" in caplog.text and "limit 1 MB" in caplog.text
    roomy = MemoryGuard()  # the default 4 GiB
    reading = roomy.check()
    assert roomy.limit == 4 * 1024**3 and not reading.over and reading.host_rss > 0 and roomy.warnings == 0


def test_runtime_memory_guard_clears_the_inference_cache():
    rt = HRMRuntime.from_model(tiny_runtime_model(), memory_limit_bytes=1 << 20)
    rt.memory.check_every = 1
    days, minutes = tokens(1, 4, 5)
    rt.run_day(days, minutes)  # h + l calls check memory, find it over, clear the cache; then it stores the result
    assert rt.memory.warnings >= 2 and len(rt.cache) == 1
    rt.memory.check()
    assert len(rt.cache) == 0
