"""Checks on tokens before they reach a backend: rank, batch, feature count, finiteness, profile limits.

Everything is checked before any state changes, so a rejected input leaves a session as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hrm_export.runtime.errors import InputError, ProfileError


@dataclass(frozen=True)
class Limits:
    """What one runtime accepts, from the artifacts' profile (or the model's config for from_model)."""

    batch: int  # instruments per backend call; more are split into chunks of this size
    days: int  # look-back days per instrument
    minutes: int  # minutes in one full-session pass (run_day)
    new_minutes: int  # minutes per l_step call; a longer push is split into calls of this size
    total_minutes: int  # minutes one streaming session can hold (past + new)
    profile: str = "model config"

    @classmethod
    def from_axes(cls, axes: dict[str, tuple[int, int, int]], cfg, profile: str) -> Limits:
        top = lambda name, default: int(axes[name][2]) if name in axes else default  # noqa: E731
        new = top("new_minutes", cfg.max_minutes)
        total = min(cfg.max_minutes, top("past_minutes", cfg.max_minutes - 1) + new)
        return cls(top("batch", 64), min(top("days", cfg.max_days), cfg.max_days),
                   min(top("minutes", cfg.max_minutes), cfg.max_minutes), new, total, profile)


def as_tokens(x, name: str, n_features: int, batch: int | None = None) -> torch.Tensor:
    """`x` (B, N, F) as a float32 CPU tensor, or InputError naming what is wrong and how to fix it."""
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise InputError(f"{name}: dtype {x.dtype} is not floating point", hint="pass float32 tokens")
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    elif isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise InputError(f"{name}: dtype {x.dtype} is not floating point", hint="pass float32 tokens")
        x = x.detach().to("cpu", torch.float32)
    else:
        raise InputError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}",
                         hint="pass tokens as an array of shape (batch, steps, features)")
    if x.ndim == 2:
        hint = f"add the instrument axis: {name}[None] for one instrument"
        raise InputError(f"{name}: shape {tuple(x.shape)} has no batch axis; expected (batch, steps, {n_features})",
                         hint=hint)
    if x.ndim != 3:
        raise InputError(f"{name}: shape {tuple(x.shape)} is not (batch, steps, {n_features})",
                         hint="pass a 3-d array: instruments × steps × features")
    if x.shape[2] != n_features:
        raise InputError(f"{name}: {x.shape[2]} features per step, the model takes {n_features}",
                         hint="build tokens with model_src.features for the model's feature set")
    if batch is not None and x.shape[0] != batch:
        raise InputError(f"{name}: batch {x.shape[0]} but this session holds {batch} instrument(s)",
                         hint="push one row per instrument of the session, in the order of start_day")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise InputError(f"{name}: shape {tuple(x.shape)} is empty", hint="pass at least one step per instrument")
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        b, t, f = (int(i) for i in (~finite).nonzero()[0])
        raise InputError(f"{name}: non-finite value {x[b, t, f].item()} at instrument {b}, step {t}, feature {f}",
                         hint="fill or drop missing bars before tokenising (the model has no NaN semantics)")
    return x.contiguous()


def check_days(days: torch.Tensor, limits: Limits) -> None:
    if days.shape[1] > limits.days:
        raise ProfileError(
            f"days: {days.shape[1]} look-back days, profile {limits.profile!r} admits at most {limits.days}",
            hint=f"pass the latest {limits.days} days (days[:, -{limits.days}:]) or export with a larger profile",
        )


def check_session_minutes(minutes: torch.Tensor, limits: Limits) -> None:
    if minutes.shape[1] > limits.minutes:
        raise ProfileError(
            f"minutes: {minutes.shape[1]} minutes, profile {limits.profile!r} admits at most {limits.minutes}",
            hint="a session has at most that many minutes; split the input by trading day",
        )
