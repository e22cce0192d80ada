"""The streaming bench: `python -m hrm_export.bench.streaming BUNDLE [--json]`.

One run, batch 1, per backend × precision (ort-cpu/int8-cpu, ort-cpu/fp32, torch/fp32 by default):
  * `l_step` (the growing past_kv) and `l_step_static` (the fixed-capacity cache) at t = 0, 64, 128, 256, 389 cached
    minutes, sampled in alternation (core/timing.time_interleaved), p50/p99;
  * `day`: recomputing the day (H + L 390, the composed pass) on the same backend;
  * `push` / `push_growing`: what a caller of `session.push` sees at minute t (tokens checked, the step, the decision),
    static and growing cache, from days streamed in alternation: the pushes of minutes t−4…t+4 (0…8 at t = 0);
  * the call overhead: push − l_step_static at each t (the runtime's Python), intra-op threads 1 vs 2 (ORT), the
    node count of each step graph after ONNX Runtime's optimizations;
  * `run_day` in minute chunks through the static cache against the one-pass day, batch 1 (time).
The gate (hrm_export/bench/gate.py) judges the streaming targets of hrm_export/budgets/latency.toml against these
cells; exit 3 when one fails. Peak memory of chunked vs one-pass days: `python -m hrm_export.bench.day_memory`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from hrm_export.backends.factory import make_backend
from hrm_export.bench.gate import evaluate
from hrm_export.core.composed import composed
from hrm_export.core.latency_targets import DEFAULT_TARGETS, load_targets
from hrm_export.core.machine import device_class, machine_record
from hrm_export.core.manifest import Manifest
from hrm_export.core.market_inputs import sample_days
from hrm_export.core.specs import STATIC_STEP, kv_shape
from hrm_export.core.timing import summarize, time_call, time_interleaved
from hrm_export.runtime import HRMRuntime
from hrm_export.runtime.loader import choose_limits

POINTS = (0, 64, 128, 256, 389)
CANDIDATES: tuple[tuple[str, str], ...] = (("ort-cpu", "int8-cpu"), ("ort-cpu", "fp32"), ("torch", "fp32"))
STREAM_MODULES = ("l_step", STATIC_STEP, "day", "push", "push_growing", "run_day", "run_day_chunked")
WINDOW = 4  # push latency at minute t: the pushes of minutes t-WINDOW..t+WINDOW


def _cell(backend: str, precision: str, module: str, seq: int, timing, device: str = "cpu", **extra) -> dict:
    return {"backend": backend, "precision": precision, "module": module, "batch": 1, "seq": seq, "device": device,
            "device_class": device_class(device), "timing": timing.to_dict(), **extra}


def _backend(manifest: Manifest, name: str, precision: str, threads: int = 0):
    """A backend by bench name: `torch-graphs` is PyTorch with CUDA graphs (CUDA only)."""
    graphs = name == "torch-graphs"
    return make_backend("torch" if graphs else name, manifest, precision, intra_op_threads=threads,
                        cuda_graphs=graphs)


def _inputs(cfg):
    days, minutes = sample_days(cfg, 1, seed=0)
    return torch.from_numpy(days), torch.from_numpy(minutes)


def step_cells(manifest: Manifest, name: str, precision: str, budget_s: float, threads: int = 0) -> list[dict]:
    """l_step vs l_step_static at each t, and the day, on one backend (threads: ORT intra-op threads, 0 default)."""
    cfg = manifest.config
    be = _backend(manifest, name, precision, threads)
    be.activate()
    dev = be.device
    days, minutes = (t.to(dev) for t in _inputs(cfg))
    h = be.infer("h_module", {"days": days})
    film = {"film_gamma": h["film_gamma"], "film_beta": h["film_beta"]}
    if cfg.cross_attention:
        film["h_tokens"] = h["h_tokens"]
    stream = be.stream_state(film)
    gen = torch.Generator().manual_seed(0)
    cells = []
    label = f"{name}/{precision}" + (f"/threads={threads}" if threads else "")
    bench_name = f"{name}:threads={threads}" if threads else name  # never a gate's ort-cpu/int8-cpu cell
    for t in POINTS:
        x = minutes[:, t:t + 1]
        past = torch.randn(kv_shape(cfg, 1, t), generator=gen).to(dev)
        fns = {"l_step": lambda x=x, past=past: be.infer("l_step", {"minutes": x, **film, "past_kv": past})}
        if stream is not None:
            fns[STATIC_STEP] = lambda x=x, t=t: stream.step(x, t)
        for module, timing in time_interleaved(fns, budget_s, device=dev).items():
            cells.append(_cell(bench_name, precision, module, t, timing, dev, threads=threads))
        print(f"  {label} t={t}: " + ", ".join(f"{c['module']} {c['timing']['p50_ms']:.3f}" for c in cells[-len(fns):]),
              file=sys.stderr)
    if not threads:
        day = time_call(lambda: composed(be.infer, days, minutes, cfg.cross_attention), budget_s, device=dev)
        cells.append(_cell(name, precision, "day", cfg.max_minutes, day, dev))
    be.deactivate()
    return cells


def push_cells(manifest: Manifest, name: str, precision: str, n_days: int) -> list[dict]:
    """Push latency through the runtime at each t, static and growing cache, days streamed in alternation."""
    cfg = manifest.config
    days, minutes = _inputs(cfg)
    limits = choose_limits(manifest, {}, None)
    rts = {}
    for design, static in (("push", True), ("push_growing", False)):
        rts[design] = HRMRuntime(_backend(manifest, name, precision), cfg, limits, "bench", static_cache=static,
                                 cache_size=1)
    dev = rts["push"].backend.device
    samples = {d: {t: [] for t in POINTS} for d in rts}
    T = cfg.max_minutes
    for _ in range(n_days):
        for design, rt in rts.items():
            s = rt.start_day(days)
            for t in range(T):
                t0 = time.perf_counter()
                s.push(minutes[:, t:t + 1], start_minute=t)
                ms = (time.perf_counter() - t0) * 1e3
                for p in POINTS:
                    lo = min(max(p - WINDOW, 0), T - 1 - 2 * WINDOW)  # 0..8 at t = 0, 381..389 at t = 389
                    if lo <= t <= lo + 2 * WINDOW:
                        samples[design][p].append(ms)
    for rt in rts.values():
        rt.close()
    return [_cell(name, precision, d, p, summarize(samples[d][p], 1, "perf_counter"), dev) for d in samples
            for p in POINTS]


def python_costs(manifest: Manifest, name: str, precision: str, budget_s: float) -> dict[str, float]:
    """p50 µs of the runtime's own work in a one-minute push, timed apart: the token checks (as_tokens: dtype,
    shape, finiteness, ranges), the decision rule (decide), the monitor's context and the memory guard's tick."""
    from hrm_export.runtime.decide import decide
    from hrm_export.runtime.inputs import as_tokens

    cfg = manifest.config
    days, minutes = _inputs(cfg)
    rt = HRMRuntime(_backend(manifest, name, precision), cfg, choose_limits(manifest, {}, None), "bench")
    s = rt.start_day(days)
    x = minutes[:, :1]
    heads = rt.static_step(s._stream, x, 0) if s.cache_design == "static" else None
    halts = s.halt_minute
    fns = {"as_tokens": lambda: as_tokens(x, "minutes", cfg.n_minute_features, batch=1, book=rt.books.get("minutes")),
           "monitor": lambda: rt.monitor.measure("bench").__enter__(), "memory_tick": rt.memory.tick}
    if heads is not None:
        fns["decide"] = lambda: decide("l_step", heads, 0, halts, cfg.max_minutes)
    out = {k: round(time_call(f, budget_s, min_iters=100, max_iters=20000).p50_ms * 1e3, 2) for k, f in fns.items()}
    rt.close()
    return out


def day_cells(manifest: Manifest, name: str, precision: str, budget_s: float, chunk: int) -> list[dict]:
    """run_day one-pass vs in chunks of `chunk` minutes through the static cache, batch 1, through the runtime."""
    cfg = manifest.config
    days, minutes = _inputs(cfg)
    rt = HRMRuntime(_backend(manifest, name, precision), cfg, choose_limits(manifest, {}, None), "bench",
                    cache_size=1)

    def one(chunk_minutes):
        rt.cache.clear()
        return rt.run_day(days, minutes, chunk_minutes=chunk_minutes)

    out = time_interleaved({"run_day": lambda: one(None), "run_day_chunked": lambda: one(chunk)}, budget_s)
    dev = rt.backend.device
    rt.close()
    return [_cell(name, precision, m, cfg.max_minutes, t, dev, chunk=chunk if m.endswith("chunked") else None)
            for m, t in out.items()]


def node_counts(manifest: Manifest, precision: str) -> dict[str, int]:
    """Nodes of each step graph after ONNX Runtime's ORT_ENABLE_ALL optimizations (what runs per call)."""
    import onnx

    from hrm_export.core.ort_session import open_session

    counts = {}
    for module in ("l_step", STATIC_STEP):
        path = manifest.artifact_path(manifest.find(module, precision, "onnx"))
        with tempfile.TemporaryDirectory() as tmp:
            opt = Path(tmp) / "opt.onnx"
            open_session(path, optimized_path=opt)
            counts[module] = len(onnx.load(str(opt), load_external_data=False).graph.node)
            counts[f"{module}_exported"] = len(onnx.load(str(path), load_external_data=False).graph.node)
    return counts


def run(bundle: str | Path, candidates=CANDIDATES, budget_s: float = 1.0, push_days: int = 3, chunk: int = 64,
        threads: tuple[int, ...] = (1, 2)) -> dict:
    manifest = Manifest.load(bundle)
    manifest.verify_hashes()
    load_start = round(os.getloadavg()[0], 2)
    cells, overhead, nodes, python_us = [], [], {}, {}
    for name, precision in candidates:
        print(f"{name}/{precision}", file=sys.stderr)
        cells += step_cells(manifest, name, precision, budget_s)
        if name.startswith("ort"):
            for th in threads:
                cells += step_cells(manifest, name, precision, budget_s / 2, threads=th)
            nodes[f"{name}/{precision}"] = node_counts(manifest, precision)
        cells += push_cells(manifest, name, precision, push_days)
        python_us[f"{name}/{precision}"] = python_costs(manifest, name, precision, 0.3)
        cells += day_cells(manifest, name, precision, budget_s * 2, chunk)
    for name, precision in candidates:
        for t in POINTS:
            push, step = _find(cells, name, precision, "push", t), _find(cells, name, precision, STATIC_STEP, t)
            if push and step:
                overhead.append({"backend": f"{name}/{precision}", "t": t, "push_p50_ms": push["timing"]["p50_ms"],
                                 "step_p50_ms": step["timing"]["p50_ms"],
                                 "python_ms": round(push["timing"]["p50_ms"] - step["timing"]["p50_ms"], 4)})
    machine = machine_record(next((c["device"] for c in cells if c["device"] != "cpu"), "cpu"))
    machine["load_average_1m"], machine["load_average_1m_end"] = load_start, round(os.getloadavg()[0], 2)
    report = {"bundle": str(bundle), "machine": machine, "cells": cells, "overhead": overhead, "nodes": nodes,
              "python_us": python_us}
    targets = [t for t in load_targets(DEFAULT_TARGETS) if t.module in STREAM_MODULES and t.id.startswith("stream-")]
    report["gate"] = evaluate(report, targets)
    return report


def _find(cells, name, precision, module, seq, threads=0):
    name = f"{name}:threads={threads}" if threads else name
    return next((c for c in cells if (c["backend"], c["precision"], c["module"], c["seq"]) == (name, precision,
                module, seq)), None)


def markdown(report: dict) -> str:
    cells = report["cells"]
    combos = list(dict.fromkeys((c["backend"], c["precision"]) for c in cells if not c.get("threads")))
    lines = ["| backend/precision | figure | " + " | ".join(f"t = {t}" for t in POINTS) + " |",
             "|---|---|" + "---|" * len(POINTS)]
    rows = (("l_step", "l_step, growing past_kv"), (STATIC_STEP, "l_step_static, fixed cache"),
            ("push_growing", "push, growing"), ("push", "push, static"))
    for name, precision in combos:
        for module, title in rows:
            vals = [_find(cells, name, precision, module, t) for t in POINTS]
            if any(vals):
                lines.append(f"| {name}/{precision} | {title} | " + " | ".join(
                    f"{v['timing']['p50_ms']:.3f} / {v['timing']['p99_ms']:.3f}" if v else "—" for v in vals) + " |")
        for th in (1, 2):
            vals = [_find(cells, name, precision, STATIC_STEP, t, th) for t in POINTS]
            if any(vals):
                lines.append(f"| {name}/{precision} | l_step_static, {th} thread{'s' if th > 1 else ''} | " +
                             " | ".join(f"{v['timing']['p50_ms']:.3f}" if v else "—" for v in vals) + " |")
    lines += ["", "| backend/precision | day (H + L 390) | run_day one pass | run_day in chunks | static step @389 | "
              "growing @389 ÷ static @389 | day ÷ static @389 |", "|---|---|---|---|---|---|---|"]
    for name, precision in combos:
        day, one, chunked = (_find(cells, name, precision, m, 390) for m in ("day", "run_day", "run_day_chunked"))
        st, gr = _find(cells, name, precision, STATIC_STEP, 389), _find(cells, name, precision, "l_step", 389)
        p = lambda c: f"{c['timing']['p50_ms']:.2f}" if c else "—"  # noqa: E731
        ratio = lambda a, b: f"×{a['timing']['p50_ms'] / b['timing']['p50_ms']:.1f}" if a and b else "—"  # noqa: E731
        lines.append(f"| {name}/{precision} | {p(day)} | {p(one)} | {p(chunked)} | {p(st)} | {ratio(gr, st)} | "
                     f"{ratio(day, st)} |")
    lines += ["", "| backend/precision | t | push p50 | step p50 | Python (push − step) |", "|---|---|---|---|---|"]
    lines += [f"| {o['backend']} | {o['t']} | {o['push_p50_ms']:.3f} | {o['step_p50_ms']:.3f} | {o['python_ms']:.3f} |"
              for o in report["overhead"]]
    if report.get("python_us"):
        lines += ["", "| backend/precision | token checks µs | decision µs | monitor µs | memory tick µs |",
                  "|---|---|---|---|---|"]
        for k, v in report["python_us"].items():
            lines.append(f"| {k} | {v.get('as_tokens', '—')} | {v.get('decide', '—')} | {v.get('monitor', '—')} | "
                         f"{v.get('memory_tick', '—')} |")
    if report["nodes"]:
        lines += ["", "| backend/precision | l_step nodes (exported → ORT) | l_step_static nodes (exported → ORT) |",
                  "|---|---|---|"]
        for k, n in report["nodes"].items():
            lines.append(f"| {k} | {n['l_step_exported']} → {n['l_step']} | {n[STATIC_STEP + '_exported']} → "
                         f"{n[STATIC_STEP]} |")
    lines += ["", "| target | measured | by | status |", "|---|---|---|---|"]
    lines += [f"| {r['what']} | {r['measured']} | {r['backend']} | {r['status']} |" for r in report["gate"]["results"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hrm_export.bench.streaming", description=__doc__.split("\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("--seconds", type=float, default=1.0, help="budget per cell and design")
    ap.add_argument("--push-days", type=int, default=3, help="days streamed per design for the push latency")
    ap.add_argument("--chunk", type=int, default=64, help="minutes per run_day chunk")
    ap.add_argument("--candidates", default=",".join(f"{n}/{p}" for n, p in CANDIDATES))
    ap.add_argument("--json", help="write the report as JSON here ('-': on stdout, instead of the tables)")
    ap.add_argument("--markdown", type=Path, help="write the tables here too")
    a = ap.parse_args(argv)
    cands = tuple(tuple(c.split("/", 1)) for c in a.candidates.split(","))
    report = run(a.bundle, cands, a.seconds, a.push_days, a.chunk)
    tables = markdown(report)
    if a.markdown:
        a.markdown.write_text(tables + "\n")
    if a.json == "-":
        print(json.dumps(report, indent=1))
    else:
        print(tables)
        if a.json:
            Path(a.json).write_text(json.dumps(report, indent=1))
    return 0 if report["gate"]["passed"] else 3


if __name__ == "__main__":
    sys.exit(main())
