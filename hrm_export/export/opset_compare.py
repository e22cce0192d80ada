"""Why the default opset is 23: ONNX Runtime CPU latency of the same module exported at two opsets.

    python -m hrm_export.export.opset_compare [--opsets 18,23] [--repeats 20] [--threads 0]

Exports l_module and l_step of the default-size model (random init: timing does not depend on the weights) at
each opset into a temporary directory and times them interleaved (A, B, A, B, …, core.timing) so that load from
other processes hits both alike. Prints the median and p90 per module × opset as a table (--json for machines).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from hrm_export.core.machine import machine_summary
from hrm_export.core.ort_session import onnx_infer
from hrm_export.core.reference import random_init_model
from hrm_export.core.specs import module_specs
from hrm_export.core.timing import time_interleaved
from hrm_export.export.onnx_module import export_module
from model_src.model import LStep

# The operating points that matter on a CPU: a full-day pass and one streaming minute on a full cache.
POINTS = {"l_module": {"batch": 1, "minutes": 390}, "l_step": {"batch": 1, "new_minutes": 1, "past_minutes": 389}}


def _feeds(spec, cfg, point: dict[str, int]):
    g = torch.Generator().manual_seed(0)
    return {t.name: torch.randn(*(point.get(a, a) if isinstance(a, str) else a for a in t.axes), generator=g).numpy()
            for t in spec.inputs}


def compare(opsets: list[int], repeats: int, threads: int) -> list[dict]:
    model = random_init_model()
    cfg, specs = model.cfg, module_specs(model.cfg)
    torch_modules = {"l_module": model.l, "l_step": LStep(model.l)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for module, point in POINTS.items():
            paths = {}
            for opset in opsets:
                paths[opset] = Path(tmp) / f"{module}.{opset}.onnx"
                export_module(torch_modules[module], specs[module], cfg, paths[opset], opset)
            feeds = _feeds(specs[module], cfg, point)
            infers = {o: onnx_infer({module: p}, intra_op_threads=threads) for o, p in paths.items()}
            timed = time_interleaved({o: (lambda f=f, m=module, x=feeds: f(m, x)) for o, f in infers.items()},
                                     budget_s=0.0, min_iters=repeats, max_iters=repeats)
            rows += [{"module": module, "point": point, "opset": o, "median_ms": t.p50_ms, "p90_ms": t.p90_ms,
                      "repeats": t.iterations} for o, t in timed.items()]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--opsets", default="18,23")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0: one per core)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = compare([int(o) for o in args.opsets.split(",")], args.repeats, args.threads)
    machine = machine_summary()
    if args.json:
        print(json.dumps({"machine": machine, "backend": "ort-cpu", "precision": "fp32", "rows": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"ONNX Runtime CPU fp32, default-size model, {machine}; median / p90 of {args.repeats} runs")
    for col in ("module", "point", "opset", "median ms", "p90 ms"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["module"], ", ".join(f"{k}={v}" for k, v in r["point"].items()), str(r["opset"]),
                  f"{r['median_ms']:.1f}", f"{r['p90_ms']:.1f}")
    Console().print(t)


if __name__ == "__main__":
    main()
