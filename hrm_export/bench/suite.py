"""What `hrm-export bench` measures, for every available backend × precision, in one process and one run.

Cells (module names as they appear in the report and in hrm_export/budgets/latency.toml):
  h_module  the H-module over `days` = 64 look-back days (one call per trading day), batch B
  l_module  the L-module full pass over T minutes: T = 390 at every batch, and a sweep over T at batch 1
  window    the L-module over one 256-minute window (the plan's throughput operating point), batch B
  l_step    the streaming L-step: one new minute after t cached minutes; a sweep over t at batch 1, t = 389 at B
  day       H-module then L-module over 390 minutes, outputs of H fed to L: the per-day total
  heads     conditioning + heads alone, by a dedicated PyTorch sub-timing (torch backends only; in ONNX and
            TensorRT graphs they are fused into the L-module and are inside its figure)

The PyTorch eager fp32 backend is always measured: it is the baseline every other cell is divided by.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from hrm_export.backends.base import Backend
from hrm_export.bench import DEFAULT_BACKENDS, PRECISIONS
from hrm_export.bench.candidates import BASELINE, Candidate, candidates
from hrm_export.bench.memory import PeakRSS, artifact_sizes, device_peak_mb, parameter_bytes, reset_device_peak
from hrm_export.core.composed import composed
from hrm_export.core.errors import UserError
from hrm_export.core.machine import device_class, machine_record
from hrm_export.core.manifest import Manifest
from hrm_export.core.specs import kv_shape
from hrm_export.core.timing import time_interleaved
from model_src.layers import film
from model_src.model import HRM

SCHEMA = "hrm-export/bench-v1"
SOLO_BATCH = 64  # from here up, a cell's backends run one at a time (memory; see _measure)
WINDOW_MINUTES = 256  # the plan's throughput point: 128 days, 256-minute windows
FULL_SWEEP = (1, 30, 60, 120, 180, 256, 300, 390)
QUICK_SWEEP = (1, 60, 390)
FULL_STEP_SWEEP = (0, 64, 128, 256, 389)
QUICK_STEP_SWEEP = (0, 389)


@dataclass
class SuiteOptions:
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    precisions: tuple[str, ...] = PRECISIONS
    batches: tuple[int, ...] = (1, 8, 128)
    budget_s: float = 2.0  # timed seconds per cell (warm-up takes ~20 % more); at least 3 iterations
    min_iters: int = 3
    quick: bool = False  # batch 1 only, short sweeps, 0.5 s per cell
    device: str = "cpu"
    threads: int | None = None  # torch intra-op and ORT intra-op threads; None: each library's default

    def __post_init__(self) -> None:
        if self.quick:
            self.batches, self.budget_s = (1,), min(self.budget_s, 0.5)


# -- feeds ---------------------------------------------------------------------------------------------------
def _feeds(cfg, module: str, batch: int, seq: int, device: str, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Seeded random inputs of the right shapes (latency does not depend on the values). seq: days for the
    H-module, minutes for the L-module, cached minutes for the L-step."""
    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).to(device)

    c = cfg
    film_ = {"film_gamma": rnd(batch, c.l_dim, scale=0.05), "film_beta": rnd(batch, c.l_dim, scale=0.05)}
    cross = {"h_tokens": rnd(batch, c.max_days, c.h_dim)} if c.cross_attention else {}
    if module == "h_module":
        return {"days": rnd(batch, seq, c.n_day_features)}
    if module in ("l_module", "window"):
        return {"minutes": rnd(batch, seq, c.n_minute_features), **film_, **cross}
    if module == "l_step":
        kv = rnd(*kv_shape(c, batch, seq))
        return {"minutes": rnd(batch, 1, c.n_minute_features), **film_, "past_kv": kv, **cross}
    if module == "day":
        return {"days": rnd(batch, c.max_days, c.n_day_features), "minutes": rnd(batch, seq, c.n_minute_features)}
    raise ValueError(module)


def _call(backend: Backend, cfg, module: str, feeds: dict) -> Callable[[], object]:
    if module == "day":
        return lambda: composed(backend.infer, feeds["days"], feeds["minutes"], cfg.cross_attention)
    real = "l_module" if module == "window" else module
    return lambda: backend.infer(real, feeds)


def _heads_call(backend: Backend, cfg, batch: int, device: str, gen: torch.Generator) -> Callable[[], object]:
    """Conditioning + heads in PyTorch at the backend's precision: FiLM generator (pooled day tokens → γ, β),
    the FiLM modulation after each of the L blocks, the final norm, cross-attention (if on) and the heads,
    on 390 minute positions."""
    model: HRM = backend.model
    dtype = model.l.embed.weight.dtype
    h_tokens = torch.randn(batch, cfg.max_days, cfg.h_dim, generator=gen).to(device, dtype)  # (B, D, Ch)
    x = torch.randn(batch, cfg.max_minutes, cfg.l_dim, generator=gen).to(device, dtype)  # (B, T, Cl)

    @torch.inference_mode()
    def heads():
        gamma, beta = model.h.film(h_tokens)
        y = x
        for _ in range(cfg.l_layers):
            y = film(y, gamma, beta)
        return model.l._heads(y, h_tokens if cfg.cross_attention else None)

    return heads


# -- the run -------------------------------------------------------------------------------------------------
def plan_cells(cfg, opts: SuiteOptions) -> list[tuple[str, int, int]]:
    """(module, batch, seq) for one backend, cheapest first so a slow machine shows progress early."""
    days, full = cfg.max_days, cfg.max_minutes
    sweep = sorted({min(t, full) for t in (QUICK_SWEEP if opts.quick else FULL_SWEEP)})
    steps = sorted({min(t, full - 1) for t in (QUICK_STEP_SWEEP if opts.quick else FULL_STEP_SWEEP)})
    window = min(WINDOW_MINUTES, full)
    cells: list[tuple[str, int, int]] = []
    cells += [("l_step", 1, t) for t in steps]
    cells += [("l_module", 1, t) for t in sweep if t != full]
    for b in opts.batches:
        cells += [("h_module", b, days), ("l_module", b, full), ("window", b, window), ("day", b, full)]
        if b != 1:
            cells.append(("l_step", b, full - 1))
        cells.append(("heads", b, full))  # timed for the torch backend only (see _measure)
    order = {"l_step": 0, "heads": 1, "h_module": 2, "l_module": 3, "window": 4, "day": 5}
    return sorted(dict.fromkeys(cells), key=lambda c: (c[1], order[c[0]], c[2]))


def run_bench(manifest: Manifest, reference: HRM, opts: SuiteOptions,
              on_cell: Callable[[str, int], None] | None = None) -> dict:
    """Measure every cell of every candidate; return the report dict (schema hrm-export/bench-v1), gate not yet
    applied. `on_cell(label, total)` is called before each cell (the CLI's progress bar)."""
    if opts.threads:
        torch.set_num_threads(opts.threads)
    cfg = manifest.config
    dev = opts.device
    cands = candidates(manifest, reference, opts)
    backends: list[dict] = []
    reset_device_peak(dev)
    load_start = round(os.getloadavg()[0], 2)
    with PeakRSS() as run_rss:
        active = []  # (candidate, backend, record) of everything that activated
        for cand in cands:
            rec = {"backend": cand.name, "precision": cand.precision, "device": dev if cand.make else None,
                   **cand.facts}
            backends.append(rec)
            if cand.make is None:
                rec.update(status="skipped", reason=cand.reason)
                continue
            backend, reason, resident = _load(cand, cfg, dev)
            rec.update(status="skipped" if backend is None else "measured", reason=reason,
                       resident_host_mb=resident, peak_device_mb=device_peak_mb(dev))
            if backend is not None:
                active.append((cand, backend, rec))
        try:
            cells, refusals = _measure(active, cfg, opts, on_cell, run_rss, rss_by_batch := {})
        finally:
            for _, backend, _ in active:
                backend.deactivate()
    _add_ratios(cells)
    machine = machine_record(dev)  # started before the run; the load at the end says if others shared the CPU
    machine["load_average_1m"], machine["load_average_1m_end"] = load_start, round(os.getloadavg()[0], 2)
    return {
        "schema": SCHEMA,
        "bundle": str(manifest.dir),
        "checkpoint": manifest.checkpoint,
        "config": cfg.to_dict(),
        "machine": machine,
        "method": {
            "statistic": "p50 unless a target names another; p90/p99/max alongside",
            "warmup": "at least 1 call, up to 5 or ~20 % of the cell budget (first calls pay session creation, "
                      "allocator growth, compilation)",
            "iterations": f"as many as fit in {opts.budget_s:g} s per cell and backend, at least {opts.min_iters}, "
                          f"at most 500; the backends of a cell are sampled in alternation below batch {SOLO_BATCH}, "
                          "one after the other (each reloaded after its turn) from it up",
            "clock": "CUDA events after torch.cuda.synchronize()" if dev.startswith("cuda") else
                     "time.perf_counter around each synchronous call",
            "inputs": "seeded random normal features (latency does not depend on values); γ, β ~ N(0, 0.05²)",
            "heads": "dedicated PyTorch sub-timing (FiLM generator + FiLM after each L block + final norm + "
                     "heads); inside the L-module figure for graph backends",
            "day": "H-module (64 days) then L-module (390 minutes) with H's outputs fed to L; heads inside L",
            "quick": opts.quick,
            "batches": list(opts.batches),
        },
        "backends": backends,
        "cells": cells,
        "refused": refusals,
        "throughput": throughput(cells),
        "memory": {
            "parameters": parameter_bytes(reference),
            "artifacts": artifact_sizes(manifest),
            "peak_host_rss_mb": run_rss.peak_mb,
            "peak_host_rss_mb_by_batch": rss_by_batch,  # peak over every cell up to that batch
            "peak_device_mb": device_peak_mb(dev),
            "note": "resident_host_mb per backend: RSS added by loading it and running each module once; peak "
                    "host RSS is the whole process (reference model and every backend loaded at once); device "
                    "peak is PyTorch's CUDA allocator only (ONNX Runtime CUDA and TensorRT allocate outside it)",
        },
    }


def _load(cand: Candidate, cfg, dev: str) -> tuple[Backend | None, str, float | None]:
    """Build, activate and run each module once (ONNX Runtime opens sessions lazily), so the host memory the
    backend holds (weights, sessions, arenas) is measured as the RSS it added."""
    before = PeakRSS.current_mb()
    try:
        backend = cand.make()
        backend.activate()
        gen = torch.Generator().manual_seed(0)
        for module, seq in (("day", cfg.max_minutes), ("l_step", 1)):
            _call(backend, cfg, module, _feeds(cfg, module, 1, seq, getattr(backend, "device", dev), gen))()
    except UserError as e:  # a bundle or install problem for this backend only: the rest of the run goes on
        return None, f"{e}" + (f" ({e.hint})" if e.hint else ""), None
    return backend, "", round(PeakRSS.current_mb() - before, 1)


def _measure(active: list, cfg, opts: SuiteOptions, on_cell, rss: PeakRSS,
             rss_by_batch: dict[str, float]) -> tuple[list[dict], list[dict]]:
    """Cell by cell, every backend that has the cell timed in alternation (see timing.time_interleaved).
    Cells come in increasing batch order, so the peak RSS after the last cell of batch B, kept in
    `rss_by_batch[str(B)]`, is the process's peak over every batch up to B: what a live (batch ≤ 8) process needs
    is then told apart from what batch-128 scoring needs.

    From SOLO_BATCH up, a cell's backends run one after the other and each is reloaded after its turn: ONNX
    Runtime's arena keeps the peak of every session it served, and batch-128 peaks of several backends held at
    once (≈20 GB for a 390-minute day on the CPU) do not fit a shared machine."""
    plan = plan_cells(cfg, opts)
    out, refusals = [], []  # refusals: cells a backend would not run (a shape outside its profiles), with why
    for i, (module, batch, seq) in enumerate(plan):
        if on_cell:
            on_cell(f"[{i + 1}/{len(plan)}] {module} B={batch} {_axis(module)}={seq}", len(plan))
        fns, where, feeds = {}, {}, {}
        for cand, backend, _ in active:
            if module == "heads" and cand.name != "torch":
                continue  # the sub-timing runs eager PyTorch: elsewhere it would repeat torch's own figure
            dev = getattr(backend, "device", opts.device)
            key = f"{cand.name}/{cand.precision}"
            if module == "heads":
                fns[key] = _heads_call(backend, cfg, batch, dev, torch.Generator().manual_seed(0))
            else:  # one set of inputs per device: a batch-128 past_kv alone is ≈1 GB
                if dev not in feeds:
                    feeds[dev] = _feeds(cfg, module, batch, seq, dev, torch.Generator().manual_seed(0))
                fns[key] = _call(backend, cfg, module, feeds[dev])
            where[key] = (cand, dev, backend)
        timings, refused = {}, {}
        timer = functools.partial(time_interleaved, budget_s=opts.budget_s, min_iters=opts.min_iters,
                                  refused=refused, refusals=(UserError,))  # e.g. a shape outside a profile
        for dev in dict.fromkeys(d for _, d, _ in where.values()):  # CUDA events on a GPU, host clock else
            group = {k: f for k, f in fns.items() if where[k][1] == dev}
            if batch < SOLO_BATCH:
                timings.update(timer(group, device=dev))
                continue
            for key, fn in group.items():
                timings.update(timer({key: fn}, device=dev))
                backend = where[key][2]
                backend.deactivate()  # drops sessions and their arenas; the next cell's warm-up reopens them
                backend.activate()
        for key, timing in timings.items():
            cand, dev, _ = where[key]
            out.append({"backend": cand.name, "precision": cand.precision, "device": dev,
                        "device_class": device_class(dev), "module": module, "batch": batch, "seq": seq,
                        "seq_axis": _axis(module), "timing": timing.to_dict()})
        for key, why in refused.items():
            cand = where[key][0]
            refusals.append({"backend": cand.name, "precision": cand.precision, "module": module, "batch": batch,
                             "seq": seq, "reason": why})
        rss_by_batch[str(batch)] = rss.peak_mb
    return out, refusals


def _axis(module: str) -> str:
    return {"h_module": "days", "l_step": "past_minutes"}.get(module, "minutes")


def _add_ratios(cells: list[dict]) -> None:
    """vs_torch_fp32 = baseline p50 / this p50 for the same module, batch, length and device (× faster)."""
    base = {(c["module"], c["batch"], c["seq"], c["device"]): c["timing"]["p50_ms"] for c in cells
            if (c["backend"], c["precision"]) == BASELINE}
    for c in cells:
        b = base.get((c["module"], c["batch"], c["seq"], c["device"]))
        c["vs_torch_fp32"] = round(b / c["timing"]["p50_ms"], 3) if b else None


def throughput(cells: list[dict]) -> list[dict]:
    """Per backend × precision at its largest measured batch: days/s (the day cell) and 256-minute windows/s
    (the window cell), both from p50."""
    out = []
    for key in dict.fromkeys((c["backend"], c["precision"]) for c in cells):
        mine = [c for c in cells if (c["backend"], c["precision"]) == key]
        row = {"backend": key[0], "precision": key[1]}
        for module, unit in (("day", "days_per_s"), ("window", "windows_per_s")):
            sized = [c for c in mine if c["module"] == module]
            if sized:
                c = max(sized, key=lambda c: c["batch"])
                row[unit] = round(c["batch"] / (c["timing"]["p50_ms"] / 1e3), 2)
                row[f"{unit}_batch"] = c["batch"]
                if module == "window":
                    row["minutes_per_s"] = round(row[unit] * c["seq"], 1)
        out.append(row)
    return out


def find_cell(report: dict, backend: str, precision: str, module: str, batch: int, seq: int) -> dict | None:
    for c in report["cells"]:
        if (c["backend"], c["precision"], c["module"], c["batch"], c["seq"]) == (backend, precision, module, batch,
                                                                                   seq):
            return c
    return None
