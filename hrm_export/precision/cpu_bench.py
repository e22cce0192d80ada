"""fp32 vs int8-cpu (and any other ONNX precision) on ONNX Runtime's CPU provider: is the CPU artifact faster?

Method: one InferenceSession per (module, precision), default thread count (one per core), graph optimizations
on, no spin-wait (`session_options`); real sample-day inputs at batch B; `warmup` untimed runs, then `runs` timed
runs of session.run; median and p90 wall time. Both precisions are measured in the same process, interleaved per
module, so load from other processes hits them alike.
This is a command, not a test: timings are reported, never asserted.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass

import numpy as np

from hrm_export.backends.ort_backend import session_options
from hrm_export.errors import require


@dataclass
class Timing:
    module: str
    precision: str
    batch: int
    minutes: int
    median_ms: float
    p90_ms: float
    runs: int

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def machine() -> str:
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    return f"{os.cpu_count()}-core CPU ({model})"


def feeds_for(module: str, cfg, days: np.ndarray, minutes: np.ndarray, h_out: dict, batch: int) -> dict:
    """Inputs of one module at batch `batch` from real sample days (γ/β from the fp32 H-module)."""
    b = slice(0, batch)
    cond = {"film_gamma": h_out["film_gamma"][b], "film_beta": h_out["film_beta"][b]}
    if cfg.cross_attention:
        cond["h_tokens"] = h_out["h_tokens"][b]
    T = minutes.shape[1]
    if module == "h_module":
        return {"days": days[b]}
    if module == "l_module":
        return {"minutes": minutes[b], **cond}
    past = np.zeros((cfg.l_layers, 2, batch, cfg.l_heads, T - 1, cfg.l_head_dim), np.float32)  # last minute
    return {"minutes": minutes[b, T - 1:], "past_kv": past, **cond}


def bench(manifest, precisions=("fp32", "int8-cpu"), modules=("h_module", "l_module", "l_step"), batch: int = 1,
          days: np.ndarray | None = None, minutes: np.ndarray | None = None, warmup: int = 3,
          runs: int = 20) -> list[Timing]:
    ort = require("onnxruntime", "pip install 'hrm-export[ort]'")
    cfg = manifest.config
    so = session_options(ort)
    sessions = {(m, p): ort.InferenceSession(str(manifest.artifact_path(manifest.find(m, p))), so,
                                             providers=["CPUExecutionProvider"])
                for m in modules for p in precisions}
    h = ort.InferenceSession(str(manifest.artifact_path(manifest.find("h_module", "fp32"))), so,
                             providers=["CPUExecutionProvider"])
    h_out = dict(zip(["h_tokens", "film_gamma", "film_beta"], h.run(["h_tokens", "film_gamma", "film_beta"],
                                                                    {"days": days[:batch]}), strict=True))
    out = []
    for m in modules:
        feeds = feeds_for(m, cfg, days, minutes, h_out, batch)
        times: dict[str, list[float]] = {p: [] for p in precisions}
        for p in precisions:
            for _ in range(warmup):
                sessions[(m, p)].run(None, feeds)
        for _ in range(runs):  # interleaved: a background spike lands on both precisions
            for p in precisions:
                t0 = time.perf_counter()
                sessions[(m, p)].run(None, feeds)
                times[p].append((time.perf_counter() - t0) * 1e3)
        T = feeds["minutes"].shape[1] if "minutes" in feeds else 0
        for p in precisions:
            ts = sorted(times[p])
            out.append(Timing(m, p, batch, T, statistics.median(ts), ts[int(0.9 * (len(ts) - 1))], runs))
    return out
