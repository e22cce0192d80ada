"""The decision rule: how the heads' outputs become trading decisions. The one definition.

Every consumer calls these functions: the runtime (per day and streaming), verify and the precision judge
(reference and candidate alike), the trainer's validation, `hrm-export run`, and the Triton models; the C++
runtime mirrors them and its conformance tests hold it to them. The rule is part of the model's contract,
so it lives with the model (hrm_export imports it from here; model_src imports nothing from hrm_export).

Per minute t, from action_logits (…, 3), quantity (…, 1) and q_values (…, 2) = [q_halt, q_continue]:
    action[t]     = argmax of the logits (short 0 / flat 1 / long 2; the lowest index wins an exact tie)
    confidence[t] = max softmax of the logits, computed in float64
    quantity[t]   = quantity[t, 0] (≥ 0: a softplus head)
ACT halting, per instrument and session:
    the halting minute is the first minute t with q_halt[t] > q_continue[t] (strictly); the halt is sticky for
    the rest of the session (later minutes never un-commit it; a new day clears it). A session that reaches its
    close without q_halt ever winning halts at the close, its last minute (session_minutes − 1): the close
    always commits (docs/act.md). Before the close a session with no halt yet is NOT_HALTED (−1).
Non-finite outputs never become decisions: every function here raises NonFiniteOutputError naming the output,
the instrument and the minute.

All functions take numpy arrays (torch tensors: pass `.numpy()`), shapes at the end of each line.
"""

from __future__ import annotations

import numpy as np

from model_src.errors import NonFiniteOutputError

ACTIONS = ("short", "flat", "long")  # the index of action_logits' last axis
SHORT, FLAT, LONG = 0, 1, 2
NOT_HALTED = -1


def check_finite(name: str, x: np.ndarray, first_minute: int = 0) -> None:
    """Raise NonFiniteOutputError naming `name`, the instrument and the session minute of the first NaN/Inf.

    x is (B, T, ...) with T the minutes of this call, the first of which is session minute `first_minute`."""
    bad = ~np.isfinite(x)
    if bad.any():
        b, t = (int(i) for i in np.argwhere(bad)[0][:2])
        raise NonFiniteOutputError(f"{name}: non-finite value {x[np.unravel_index(np.argmax(bad), x.shape)]} at "
                                   f"instrument {b}, minute {first_minute + t}", output=name, instrument=b,
                                   minute=first_minute + t)


def actions(action_logits: np.ndarray, first_minute: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(B, T, 3) logits → action (B, T) int64 and confidence (B, T) float64."""
    logits = np.asarray(action_logits, dtype=np.float64)
    check_finite("action_logits", logits, first_minute)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=-1, keepdims=True)
    return logits.argmax(axis=-1).astype(np.int64), probs.max(axis=-1)


def quantities(quantity: np.ndarray, first_minute: int = 0) -> np.ndarray:
    """(B, T, 1) quantity head → (B, T) float64."""
    q = np.asarray(quantity, dtype=np.float64)
    check_finite("quantity", q, first_minute)
    return q[..., 0]


def halting_minutes(q_values: np.ndarray, session_minutes: int | np.ndarray, first_minute: int = 0,
                    halted_at: np.ndarray | None = None) -> np.ndarray:
    """The ACT halting minute of each instrument after these minutes → (B,) int64 (NOT_HALTED if none yet).

    q_values (B, T, 2) are the Q-head outputs of session minutes first_minute .. first_minute+T-1;
    session_minutes (an int, or (B,) per instrument) is the session's length, so its close is minute
    session_minutes - 1; halted_at (B,) is the halt state before first_minute (None: no halt yet).
    Minutes of the window at or past an instrument's close are ignored (padding of a shorter session)."""
    q = np.asarray(q_values, dtype=np.float64)
    B, T = q.shape[:2]
    check_finite("q_values", q, first_minute)
    close = np.broadcast_to(np.asarray(session_minutes, dtype=np.int64) - 1, (B,))  # (B,)
    minute = first_minute + np.arange(T)[None, :]  # (1, T)
    wants = (q[..., 0] > q[..., 1]) & (minute <= close[:, None])  # (B, T)
    first_here = np.where(wants.any(axis=1), first_minute + wants.argmax(axis=1), NOT_HALTED)  # (B,)
    at_close = np.where((first_minute <= close) & (close <= first_minute + T - 1), close, NOT_HALTED)  # (B,)
    now = np.where(first_here >= 0, first_here, at_close)
    if halted_at is None:
        return now.astype(np.int64)
    before = np.asarray(halted_at, dtype=np.int64)
    return np.where(before >= 0, before, now).astype(np.int64)


def halted(halt_minute: np.ndarray, first_minute: int, minutes: int) -> np.ndarray:
    """(B,) halting minutes → (B, T) bool: whether each instrument has halted at or before each minute."""
    minute = first_minute + np.arange(minutes)[None, :]  # (1, T)
    h = np.asarray(halt_minute)[:, None]  # (B, 1)
    return (h >= 0) & (minute >= h)
