"""The model card behind `hrm-export info`: parameter counts by part held against the plan."""

from __future__ import annotations

from pathlib import Path

from model_src.checkpoint import DEFAULT_CHECKPOINT, read_config
from model_src.config import HRMConfig
from model_src.model import HRM, PLAN_PARAMS, parameter_table

BYTES_PER_PARAM = {"fp32": 4, "bf16": 2, "int8": 1}
PART_NAMES = {"h": "H-module", "l": "L-module", "conditioning": "conditioning + heads", "total": "total"}


def resolve_checkpoint(checkpoint: Path | None) -> Path | None:
    """The checkpoint to use: the given one, else the built-in default if it exists, else None (random init)."""
    if checkpoint is not None:
        return checkpoint
    return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else None


def model_card(checkpoint: Path | None = None) -> dict:
    path = resolve_checkpoint(checkpoint)
    cfg = read_config(path) if path else HRMConfig()
    with __import__("torch").device("meta"):  # counting needs shapes only, not weights
        counts = parameter_table(HRM(cfg))
    parts = []
    for part, n in counts.items():
        plan = PLAN_PARAMS[part]
        bound = part == "conditioning"  # the plan gives an upper bound (< 1M) for this part
        parts.append({
            "part": PART_NAMES[part],
            "params": n,
            "plan": f"<{plan / 1e6:.1f}M" if bound else f"≈{plan / 1e6:.1f}M",
            "delta": ("within" if n < plan else "OVER") if bound else f"{100 * (n - plan) / plan:+.1f}%",
            "within_5pct": n < plan if bound else abs(n - plan) / plan <= 0.05,
            "bytes": {p: n * b for p, b in BYTES_PER_PARAM.items()},
        })
    return {"checkpoint": str(path) if path else "none (random init, default config)", "parts": parts,
            "config": cfg.to_dict()}
