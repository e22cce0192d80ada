"""Does a trained model use its daily book? Two measures, reported by `python -m model_src.train --describe`.

- Conditioning sensitivity: run every validation day's minutes with the FiLM γ, β of another validation day
  and count the minutes whose action (model_src.decisions.actions) changes. The other day is π(i), π a
  uniformly random derangement of the validation days (no day keeps its own γ, β) drawn by rejection from
  numpy's default_rng(SWAP_SEED). A model that ignores its H-module scores 0.
- H-ablation gap: validation accuracy of the full model minus that of its ablation twin, the same
  architecture trained by the same command with `--ablate-film` (γ, β held at zero), on the same data,
  seed and steps. `twin_mismatch` names any training option in which the two runs differ.
"""

from __future__ import annotations

import numpy as np
import torch

from model_src.decisions import actions

SWAP_SEED = 0
OPTION_DEFAULTS = {"min_lookback": 0}  # what a checkpoint from before an option existed was trained with
# Provenance keys that must agree between a model and its ablation twin (everything that shapes training).
TWIN_KEYS = ("data", "labels", "seed", "crop_minutes", "batch_size", "world_size", "steps", "optim", "amp",
             "act_discount", "init", "train_only", "min_lookback")


def swap_permutation(n: int, seed: int = SWAP_SEED) -> np.ndarray:
    """(n,) a uniformly random derangement: π[i] != i for every i (n ≥ 2)."""
    assert n >= 2, f"a swap needs at least 2 days, got {n}"
    rng = np.random.default_rng(seed)
    while True:  # a random permutation is a derangement with probability ≈ 1/e
        perm = rng.permutation(n)
        if (perm != np.arange(n)).all():
            return perm


@torch.no_grad()
def conditioning_sensitivity(model, data, batch_size: int = 4, seed: int = SWAP_SEED) -> dict:
    """Share of valid validation minutes whose action changes when day i runs with day π(i)'s γ, β."""
    model.eval()
    days, minutes, action = data.days, data.minutes, data.action  # (N, D, F_day), (N, T, F_min), (N, T)
    _, gamma, beta = model.h(days)  # (N, Cl) each
    perm = torch.from_numpy(swap_permutation(len(days), seed))
    changed = total = 0
    for k in range(0, len(days), batch_size):
        sl = slice(k, k + batch_size)
        own, _, _ = model.l(minutes[sl], gamma[sl], beta[sl])  # (B, T, 3)
        swapped, _, _ = model.l(minutes[sl], gamma[perm[sl]], beta[perm[sl]])
        valid = (action[sl] >= 0).numpy()  # (B, T)
        a, _ = actions(own.numpy())
        b, _ = actions(swapped.numpy())
        changed += int(((a != b) & valid).sum())
        total += int(valid.sum())
    return {"share_changed": round(changed / max(1, total), 4), "minutes": total, "days": len(days),
            "swap": f"day i runs with the γ, β of day π(i), π a random derangement of the validation days "
                    f"(numpy default_rng({seed}), rejection)"}


def twin_mismatch(full: dict, twin: dict) -> str | None:
    """None if `twin` (checkpoint provenance) is `full`'s ablation twin, else what differs, in one line."""
    if not twin.get("ablate_film"):
        return "it was not trained with --ablate-film"
    if full.get("ablate_film"):
        return "the model itself was trained with --ablate-film"
    full, twin = {**OPTION_DEFAULTS, **full}, {**OPTION_DEFAULTS, **twin}
    diff = [k for k in TWIN_KEYS if full.get(k) != twin.get(k)]
    if diff:
        return "its training differs in " + ", ".join(f"{k} ({twin.get(k)!r} vs {full.get(k)!r})" for k in diff)
    return None


def h_ablation_gap(model, provenance: dict, twin_path: str, data) -> dict:
    """Validation accuracy of `model` (trained with `provenance`) and of its ablation twin at `twin_path`, both
    by model_src.train_health.health on the same whole-session validation days; the gap in accuracy points."""
    from model_src.atomic import file_sha256
    from model_src.checkpoint import checkpoint_metadata, load_checkpoint
    from model_src.errors import CheckpointError
    from model_src.train_health import health

    twin = load_checkpoint(twin_path)  # first: names a missing or unreadable file in one line
    twin_meta = checkpoint_metadata(twin_path)
    why = twin_mismatch(provenance, twin_meta)
    if why is None and twin.cfg != model.cfg:
        why = "its HRMConfig differs"
    if why:
        raise CheckpointError(f"{twin_path}: not the ablation twin of this model: {why}; train it with the same "
                              f"command plus --ablate-film")
    full_acc = health(model, data)["val_accuracy"]
    twin_acc = health(twin, data)["val_accuracy"]
    return {"val_accuracy": full_acc, "twin_val_accuracy": twin_acc,
            "gap_points": round(100 * (full_acc - twin_acc), 2), "validation_days": len(data),
            "twin_sha256": file_sha256(twin_path), "twin_command": twin_meta.get("command"),
            "twin_steps": twin_meta.get("steps")}
