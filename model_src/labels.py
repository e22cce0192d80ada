"""Training targets from the session's minute closes, and the ACT Q-learning targets.

Per minute t of a session with closes c[0..T-1] and horizon h:

    r[t]        = log(c[min(t+h, T-1)] / c[t])          forward log-return, truncated at the close
    action[t]   = 0 (short) if r < -band, 2 (long) if r > band, else 1 (flat)
    quantity[t] = min(|r[t]| / quantity_scale, quantity_clip)   ≥ 0

Truncating the horizon at the close (rather than masking the last h minutes) matches what a trader can
do: a position opened at t is flat by the close, so the return it can earn runs from t to min(t+h, close).
The last minute therefore has r = 0 and is always flat. The labels of minute t use closes t..t+h only;
the model's inputs at t are features of minutes ≤ t (causal L-module), so no label leaks into an input.

ACT targets follow HRM's ACT Q-learning (see docs/act.md): q_halt's target is whether the decision taken
now (argmax of the action logits) is right; q_continue's target is the value of the next minute,
discount·sigmoid(max(q_halt[t+1], q_continue[t+1])), detached; at the session's last minute continuing is
not possible, so it is forced to halt (continue target 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

SHORT, FLAT, LONG = 0, 1, 2


@dataclass(frozen=True)
class LabelConfig:
    horizon: int = 30  # minutes ahead
    band: float = 1e-3  # |r| ≤ band (log-return) is flat; 10 bp
    quantity_scale: float = 2e-3  # |r| of 20 bp maps to quantity 1
    quantity_clip: float = 3.0

    def __post_init__(self) -> None:
        assert self.horizon >= 1, f"horizon must be >= 1 minute, got {self.horizon}"
        assert self.band >= 0, f"band must be >= 0, got {self.band}"
        assert self.quantity_scale > 0 and self.quantity_clip > 0, "quantity_scale and quantity_clip must be > 0"


def forward_returns(close: np.ndarray, horizon: int) -> np.ndarray:
    """(T,) closes → (T,) log-return from minute t to min(t+horizon, T-1)."""
    close = np.asarray(close, dtype=np.float64)
    T = close.shape[0]
    ahead = np.minimum(np.arange(T) + horizon, T - 1)
    return np.log(close[ahead] / close)


def action_labels(returns: np.ndarray, band: float) -> np.ndarray:
    """(T,) log-returns → (T,) int64 classes short/flat/long."""
    labels = np.full(returns.shape, FLAT, dtype=np.int64)
    labels[returns > band] = LONG
    labels[returns < -band] = SHORT
    return labels


def quantity_targets(returns: np.ndarray, cfg: LabelConfig) -> np.ndarray:
    return np.minimum(np.abs(returns) / cfg.quantity_scale, cfg.quantity_clip).astype(np.float32)


def session_labels(close: np.ndarray, cfg: LabelConfig) -> tuple[np.ndarray, np.ndarray]:
    """(T,) minute closes → action (T,) int64, quantity (T,) float32."""
    r = forward_returns(close, cfg.horizon)
    return action_labels(r, cfg.band), quantity_targets(r, cfg)


def act_targets(
    action_logits: Tensor, q_values: Tensor, action: Tensor, session_end: Tensor, discount: float = 0.98,
    full_horizon: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """ACT Q-learning targets for every minute of a (B, T) window.

    action_logits (B, T, 3), q_values (B, T, 2) = [q_halt, q_continue] logits, action (B, T) labels with
    -100 on padding, session_end (B,) bool: whether the window reaches the session's last minute.

    Returns halt_target (B, T), continue_target (B, T), continue_mask (B, T). Where the next minute is in the
    window the continue target is bootstrapped from it; at the session's last minute it is 0 (halting is
    forced); where the next minute lies outside the window (a crop inside the session) it is masked out.
    `discount` (per minute) prices waiting: without it (1.0, HRM's form) waiting for the close, whose
    truncated-horizon label is always flat and so trivially right, is worth more than any decision before it.
    `full_horizon` (B, T) bool marks minutes whose horizon ends before the close; halting elsewhere earns 0,
    for the same reason: a decision committed in the last `horizon` minutes has no full trade left to win.
    """
    with torch.no_grad():
        valid = action >= 0  # (B, T)
        halt_target = (action_logits.argmax(-1) == action).float()  # (B, T)
        if full_horizon is not None:
            halt_target = halt_target * full_horizon
        q = q_values.float()
        next_value = discount * torch.sigmoid(torch.maximum(q[:, 1:, 0], q[:, 1:, 1]))  # (B, T-1)
        next_valid = torch.cat([valid[:, 1:], torch.zeros_like(valid[:, :1])], dim=1)  # (B, T)
        continue_target = torch.cat([next_value, torch.zeros_like(next_value[:, :1])], dim=1) * next_valid
        # the session's last minute: a valid minute followed by padding, or the window's end at the close
        at_close = valid & ~next_valid
        at_close[:, -1] &= session_end
        continue_mask = (valid & next_valid) | at_close
    return halt_target, continue_target, continue_mask.float()
