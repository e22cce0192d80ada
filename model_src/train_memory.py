"""Peak host memory of training steps, per batch size: what to expect before starting a run.

    python -m model_src.train_memory --config default --batch-sizes 1 2 4 8 --crop 64 --amp bf16

Each row runs in a fresh process (so the peaks do not mix): build the model and AdamW, run --steps
training steps of the real loss on random inputs of the row's shape, report the process's peak RSS
(resource.getrusage ru_maxrss) and the RSS after building the model (before AdamW allocates its moments).
Inputs' values do not change memory.
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


def one_row(config: str, batch: int, crop: int, amp: str, grad_ckpt: bool, steps: int) -> dict:
    from model_src.config import HRMConfig, tiny_config
    from model_src.model import HRM
    from model_src.train import WindowForward, autocast, deep_supervision_loss

    torch.manual_seed(0)
    cfg = tiny_config() if config == "tiny" else HRMConfig()
    model = HRM(cfg)
    model.l.gradient_checkpointing = grad_ckpt
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    fwd = WindowForward(model)
    base_rss = psutil.Process().memory_info().rss
    batch_t = {"days": torch.randn(batch, cfg.max_days, cfg.n_day_features),
               "minutes": torch.randn(batch, crop, cfg.n_minute_features),
               "positions": torch.arange(crop).expand(batch, crop),
               "action": torch.randint(0, 3, (batch, crop)), "quantity": torch.rand(batch, crop),
               "session_end": torch.zeros(batch, dtype=torch.bool)}
    t0 = time.time()
    for _ in range(steps):
        with autocast(torch.device("cpu"), amp):
            logits, qty, qv, _ = fwd(batch_t["days"], batch_t["minutes"], batch_t["positions"])
        deep_supervision_loss(logits, qty, qv, batch_t, 0.5, 0.5).total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"config": config, "batch": batch, "crop_minutes": crop, "amp": amp, "grad_checkpointing": grad_ckpt,
            "model_built_rss_mib": round(base_rss / 2**20), "peak_rss_mib": round(peak_kib / 1024),
            "s_per_step": round((time.time() - t0) / steps, 2)}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m model_src.train_memory", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=["tiny", "default"], default="default")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--crop", type=int, default=64, help="minutes per window")
    p.add_argument("--amp", choices=["bf16", "off"], default="bf16")
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p.add_argument("--row", action="store_true", help=argparse.SUPPRESS)  # internal: measure one row
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.row:
        print(json.dumps(one_row(a.config, a.batch_sizes[0], a.crop, a.amp, a.grad_checkpointing, a.steps)))
        return
    rows = []
    for b in a.batch_sizes:
        cmd = [sys.executable, "-m", "model_src.train_memory", "--row", "--config", a.config, "--batch-sizes", str(b),
               "--crop", str(a.crop), "--amp", a.amp, "--steps", str(a.steps), "--threads", str(a.threads)]
        if a.grad_checkpointing:
            cmd.append("--grad-checkpointing")
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        if a.json:
            print(json.dumps(rows[-1]), flush=True)
    if not a.json:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"training memory, {a.config} config, host RSS, {a.threads} threads")
        for col in rows[0]:
            t.add_column(col)
        for r in rows:
            t.add_row(*(str(v) for v in r.values()))
        Console().print(t)


if __name__ == "__main__":
    main()
