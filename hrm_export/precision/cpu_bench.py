"""fp32 vs int8-cpu (and any other ONNX precision) on ONNX Runtime's CPU provider: is the CPU artifact faster?

Method: one session per (module, precision) with the project's session options (core.ort_session), real sample-day
inputs at batch B (γ/β from the fp32 H-module, a full 389-minute cache for the L-step), timed by the project's
harness (core.timing): warm-ups, then the precisions sampled in alternation so load from other processes hits
them alike; p50 and p90 by the harness's one percentile definition.
This is a command, not a test: timings are reported, never asserted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hrm_export.core.ort_session import onnx_infer
from hrm_export.core.specs import kv_shape
from hrm_export.core.timing import time_interleaved


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


def feeds_for(module: str, cfg, days: np.ndarray, minutes: np.ndarray, h_out: dict) -> dict:
    """Inputs of one module from real sample days (γ/β from the fp32 H-module; l_step: the last minute after a
    zero cache of all earlier minutes — its cost depends on the cache's length, not its values)."""
    B, T = minutes.shape[:2]
    cond = {"film_gamma": h_out["film_gamma"], "film_beta": h_out["film_beta"]}
    if cfg.cross_attention:
        cond["h_tokens"] = h_out["h_tokens"]
    if module == "h_module":
        return {"days": days}
    if module == "l_module":
        return {"minutes": minutes, **cond}
    past = np.zeros(kv_shape(cfg, B, T - 1), np.float32)
    return {"minutes": minutes[:, T - 1:], "past_kv": past, **cond}


def bench(manifest, precisions=("fp32", "int8-cpu"), modules=("h_module", "l_module", "l_step"), batch: int = 1,
          days: np.ndarray | None = None, minutes: np.ndarray | None = None, seconds: float = 2.0,
          runs: int = 20) -> list[Timing]:
    cfg = manifest.config
    path = lambda m, p: manifest.artifact_path(manifest.find(m, p))  # noqa: E731
    infers = {p: onnx_infer({m: path(m, p) for m in modules}) for p in precisions}
    days, minutes = days[:batch], minutes[:batch]
    h_out = onnx_infer({"h_module": path("h_module", "fp32")})("h_module", {"days": days})
    out = []
    for m in modules:
        feeds = feeds_for(m, cfg, days, minutes, h_out)
        timed = time_interleaved({p: (lambda p=p, m=m, f=feeds: infers[p](m, f)) for p in precisions}, budget_s=seconds,
                                 min_iters=runs, max_iters=max(runs, 500))
        T = feeds["minutes"].shape[1] if "minutes" in feeds else 0
        out += [Timing(m, p, batch, T, t.p50_ms, t.p90_ms, t.iterations) for p, t in timed.items()]
    return out
