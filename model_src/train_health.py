"""Health of a trained checkpoint: is it a model worth exporting, or a degenerate one?

Parity and INT8 calibration are only meaningful on a model whose FiLM γ varies by day and changes its
decisions, whose action logits are not tied, whose ACT head halts at varied minutes and whose accuracy beats
the majority class. `python -m model_src.train --describe CKPT [--ablation-twin TWIN] [--json]` rebuilds the
checkpoint's validation split from its provenance metadata and prints these numbers, with the conditioning
sensitivity and the H-ablation gap of model_src.train_conditioning.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from model_src.checkpoint import checkpoint_metadata, load_checkpoint
from model_src.decisions import halting_minutes
from model_src.labels import LabelConfig
from model_src.train_data import DataSpec, DayTensors, load_samples, split_by_date


def _pct(x: np.ndarray) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(x, q)), 4) for q in (5, 25, 50, 75, 95)}


@torch.no_grad()
def health(model, data: DayTensors, batch_size: int = 4) -> dict:
    """Whole-session forward over `data`: FiLM γ spread, action margins, halting minutes, accuracy."""
    from model_src.train import WindowForward

    fwd = WindowForward(model.eval())
    gammas, margins, halts, correct, total, halt_correct = [], [], [], 0, 0, 0
    for k in range(0, len(data), batch_size):
        idx = list(range(k, min(k + batch_size, len(data))))
        b = data.full(idx)
        logits, _, q_values, gamma = fwd(b["days"], b["minutes"], b["positions"])
        valid = b["action"] >= 0  # (B, T)
        top2 = logits.topk(2, dim=-1).values  # (B, T, 2)
        margins.append((top2[..., 0] - top2[..., 1])[valid].numpy())
        pred = logits.argmax(-1)
        correct += int((pred == b["action"])[valid].sum())
        total += int(valid.sum())
        h = torch.from_numpy(halting_minutes(q_values.float().numpy(), valid.sum(1).numpy()))  # (B,)
        rows = torch.arange(len(idx))
        halt_correct += int((pred[rows, h] == b["action"][rows, h]).sum())
        halts.append(h.numpy())
        gammas.append(gamma.numpy())
    gamma = np.concatenate(gammas)  # (N, Cl)
    margin, halt = np.concatenate(margins), np.concatenate(halts)
    counts = data.class_counts().numpy()
    hist, edges = np.histogram(halt, bins=[0, 15, 30, 60, 120, 240, 390, 100000])
    return {
        "validation_days": len(data),
        "film_gamma": {"std_across_days_mean": round(float(gamma.std(0).mean()), 5),
                       "std_across_days_max": round(float(gamma.std(0).max()), 5),
                       "abs_mean": round(float(np.abs(gamma).mean()), 5)},
        "action_margin": {**_pct(margin), "frac_below_0.01": round(float((margin < 0.01).mean()), 4)},
        "halting_minute": {**_pct(halt.astype(float)), "distinct": int(len(np.unique(halt))),
                           "histogram": {f"{int(a)}-{int(b) - 1}": int(n)
                                         for a, b, n in zip(edges[:-1], edges[1:], hist, strict=True) if n}},
        "val_accuracy": round(correct / max(1, total), 4),
        "val_halt_accuracy": round(halt_correct / max(1, len(halt)), 4),
        "val_majority_baseline": round(float(counts.max() / counts.sum()), 4),
        "val_class_fractions": [round(float(c / counts.sum()), 4) for c in counts],
    }


def describe(path: str, as_json: bool = False, twin: str | None = None) -> dict:
    """Health, conditioning sensitivity and the H-ablation gap (measured against `twin`, else as recorded)."""
    from model_src.train_conditioning import conditioning_sensitivity, h_ablation_gap

    torch.set_num_threads(max(1, torch.get_num_threads()))
    meta = checkpoint_metadata(path)
    model = load_checkpoint(path)
    if "data" not in meta:
        raise SystemExit(f"{path}: no training provenance in its metadata; --describe needs a checkpoint of "
                         "python -m model_src.train")
    spec, labels = DataSpec(**meta["data"]), LabelConfig(**meta["labels"])
    _, val = split_by_date(load_samples(spec), spec.val_fraction)
    data = DayTensors(val, labels)
    stats = {"checkpoint": str(path), "steps": meta.get("steps"), "ablate_film": bool(meta.get("ablate_film")),
             **health(model, data), "conditioning_sensitivity": conditioning_sensitivity(model, data)}
    if twin:
        stats["h_ablation"] = {**h_ablation_gap(model, meta, twin, data), "measured": "now"}
    elif "h_ablation" in meta:
        stats["h_ablation"] = {**meta["h_ablation"], "measured": "at export (recorded in the metadata)"}
    if as_json:
        print(json.dumps(stats, indent=2))
        return stats
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"health of {path} ({stats['validation_days']} validation days, whole sessions)")
    table.add_column("stat")
    table.add_column("value")
    for key, value in stats.items():
        if key not in ("checkpoint",):
            table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    Console().print(table)
    return stats
