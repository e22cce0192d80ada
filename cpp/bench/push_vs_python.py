"""One-minute push latency, C++ runtime against the Python runtime, same bundle, backend, precision and batch.

    .venv/bin/python cpp/bench/push_vs_python.py engines/default [--precision fp32,int8-cpu] [--seconds 2]

For each precision: the Python runtime's Session.push of one minute at minute 0 (right after start_day) and
at minute 389 (after 389 pushed minutes), timed with hrm_export.core.timing.time_call on forks of a prepared
session (a shallow copy: push replaces the K/V cache, never edits it), alternated in rounds with
`hrm_run --bench`, which times the same pushes in C++ the same way. Each side's figure is the median of its
per-round p50s; the ratio is the median of the per-round ratios Python / C++ (a round's two sides run seconds
apart, so they see the same load on a shared machine). Batch 1 on ONNX Runtime CPU, intra-op threads as the
runtimes default. Prints a table, or JSON with --json. A benchmark command, not a test.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CPP_RUN = Path(__file__).resolve().parents[1] / "build" / "hrm_run"


def python_push_ms(rt, days: np.ndarray, minutes: np.ndarray, at: int, seconds: float) -> float:
    from hrm_export.core.timing import MAX_WARMUP, time_call

    base = rt.start_day(days)
    if at:
        base.push(minutes[:, :at], start_minute=0)
    one = minutes[:, at:at + 1]
    forks = [copy.copy(base) for _ in range(500 + MAX_WARMUP)]  # made outside the clock
    return time_call(lambda: forks.pop().push(one, start_minute=at), budget_s=seconds).p50_ms


def cpp_push_ms(bundle: Path, days_file: Path, minutes_file: Path, precision: str, seconds: float) -> dict[int, float]:
    out = subprocess.run([str(CPP_RUN), str(bundle), "--days", str(days_file), "--minutes", str(minutes_file),
                          "--backend", "ort-cpu", "--precision", precision, "--bench", "--seconds", str(seconds)],
                         capture_output=True, text=True, check=True).stdout
    return {c["seq"]: c["timing"]["p50_ms"] for c in json.loads(out)["cells"] if c["module"] == "push"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("--precision", default="fp32,int8-cpu")
    p.add_argument("--seconds", type=float, default=2.0, help="timed seconds per cell and round")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if not CPP_RUN.is_file():
        sys.exit(f"error: {CPP_RUN} is missing\nhint: build it: make cpp")

    from hrm_export.core.machine import machine_record
    from hrm_export.runtime import HRMRuntime

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for precision in a.precision.split(","):
            rt = HRMRuntime.open(a.bundle, backend="ort-cpu", precision=precision)
            g = np.random.default_rng(0)
            days = g.standard_normal((1, rt.limits.days, rt.cfg.n_day_features)).astype(np.float32)
            minutes = g.standard_normal((1, rt.limits.total_minutes, rt.cfg.n_minute_features)).astype(np.float32)
            np.save(days_file := Path(tmp) / "days.npy", days)
            np.save(minutes_file := Path(tmp) / "minutes.npy", minutes)
            last = minutes.shape[1] - 1
            py = {0: [], last: []}
            cpp = {0: [], last: []}
            for _ in range(a.rounds):  # alternate, so both sides see the same drift of a shared machine
                for at in py:
                    py[at].append(python_push_ms(rt, days, minutes, at, a.seconds))
                for at, ms in cpp_push_ms(a.bundle, days_file, minutes_file, precision, a.seconds).items():
                    cpp[at].append(ms)
            rt.close()
            for at in py:
                p50_py, p50_cpp = statistics.median(py[at]), statistics.median(cpp[at])
                ratio = statistics.median(p / c for p, c in zip(py[at], cpp[at], strict=True))
                rows.append({"precision": precision, "minute": at, "python_p50_ms": round(p50_py, 4),
                             "cpp_p50_ms": round(p50_cpp, 4), "python_over_cpp": round(ratio, 2),
                             "python_rounds_ms": [round(x, 4) for x in py[at]],
                             "cpp_rounds_ms": [round(x, 4) for x in cpp[at]]})
    report = {"bundle": str(a.bundle), "backend": "ort-cpu", "batch": 1, "method": f"{a.rounds} alternated rounds of "
              f"{a.seconds} s per cell: medians of the rounds' p50s and of their ratios",
              "machine": machine_record("cpu"), "rows": rows}
    if a.json:
        print(json.dumps(report, indent=2))
        return
    print(f"push of one minute, batch 1, ort-cpu, {a.bundle} — {report['method']}")
    print(f"{'precision':<10} {'minute':>6} {'python p50 ms':>14} {'C++ p50 ms':>11} {'python/C++':>11}")
    for r in rows:
        print(f"{r['precision']:<10} {r['minute']:>6} {r['python_p50_ms']:>14.3f} {r['cpp_p50_ms']:>11.3f} "
              f"{r['python_over_cpp']:>11.2f}")


if __name__ == "__main__":
    main()
