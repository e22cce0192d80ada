"""Peak memory of a day: one-pass L against minute chunks through the static cache.

    python -m hrm_export.bench.day_memory BUNDLE [--batch 8,128] [--chunk 64] [--precision int8-cpu] [--json F]

Each (batch, design) runs in a fresh child process (`--one`), so that one peak does not hide another: it opens the
bundle (ONNX Runtime CPU, the throughput profile, which admits batch 128 in one call), records its RSS, runs one
`run_day` over `batch` synthetic-market days and reports the peak RSS (ru_maxrss) and the wall time of the call.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import psutil
import torch


def one(bundle: str, batch: int, chunk: int, precision: str, profile: str) -> dict:
    from hrm_export.core.market_inputs import sample_days
    from hrm_export.runtime import HRMRuntime

    rt = HRMRuntime.open(bundle, backend="ort-cpu", precision=precision, profile=profile, cache_size=1)
    days, minutes = sample_days(rt.cfg, batch, seed=0)
    days, minutes = torch.from_numpy(days), torch.from_numpy(minutes)
    opened_mb = psutil.Process().memory_info().rss / 2**20
    t0 = time.perf_counter()
    rt.run_day(days, minutes, chunk_minutes=chunk or None)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"batch": batch, "design": f"chunks of {chunk}" if chunk else "one pass", "chunk": chunk,
            "seconds": round(seconds, 3), "rss_after_open_mb": round(opened_mb, 1), "peak_rss_mb": round(peak_mb, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hrm_export.bench.day_memory", description=__doc__.split("\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("--batch", default="8,128")
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--precision", default="int8-cpu")
    ap.add_argument("--profile", default="throughput")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: this batch, --chunk 0 for one pass
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one(a.bundle, a.one, a.chunk, a.precision, a.profile)))
        return 0
    rows = []
    for batch in (int(b) for b in a.batch.split(",")):
        for chunk in (0, a.chunk):
            cmd = [sys.executable, "-m", "hrm_export.bench.day_memory", a.bundle, "--one", str(batch), "--chunk",
                   str(chunk), "--precision", a.precision, "--profile", a.profile]
            done = subprocess.run(cmd, capture_output=True, text=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else
                        {"batch": batch, "chunk": chunk, "error": done.stderr.strip().splitlines()[-1:]})
            print(rows[-1], file=sys.stderr)
    print("| batch | design | run_day s | RSS after open MB | peak RSS MB |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r.get('design', r.get('error'))} | {r.get('seconds', '—')} | "
              f"{r.get('rss_after_open_mb', '—')} | {r.get('peak_rss_mb', '—')} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
