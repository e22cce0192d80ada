"""Decisions as the runtime hands them out: one minute (Decision) or a run of minutes (Timeline).

The rule itself — action, confidence, quantity, ACT halting, the close always halting, non-finite outputs
refused — is `model_src.decisions`, the one definition every consumer calls; this module only packages its
results. The heads are still computed (and reported) after a halt, so a caller can see what the model would
say, but `halted` and `halt_minute` never go back within a day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model_src import decisions as rule
from model_src.decisions import ACTIONS, NOT_HALTED

__all__ = ["ACTIONS", "NOT_HALTED", "Decision", "Timeline", "concat", "timeline"]


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # results are shared with the cache: nobody may edit them in place
    return a


@dataclass(frozen=True)
class Decision:
    """The decision for one minute, for every instrument of the batch (arrays of shape (B,))."""

    minute: int
    action: np.ndarray  # (B,) int: index into ACTIONS
    confidence: np.ndarray  # (B,) max softmax of the action logits
    quantity: np.ndarray  # (B,) ≥ 0
    q_halt: np.ndarray  # (B,)
    q_continue: np.ndarray  # (B,)
    halted: np.ndarray  # (B,) bool: halted at this minute or before (sticky for the day)
    halt_minute: np.ndarray  # (B,) first halting minute, NOT_HALTED (-1) if none yet

    @property
    def action_name(self) -> tuple[str, ...]:
        return tuple(ACTIONS[int(a)] for a in self.action)


@dataclass(frozen=True)
class Timeline:
    """Decisions for the consecutive minutes first_minute .. first_minute+T-1 (arrays of shape (B, T))."""

    first_minute: int
    action_logits: np.ndarray  # (B, T, 3)
    action: np.ndarray  # (B, T)
    confidence: np.ndarray  # (B, T)
    quantity: np.ndarray  # (B, T)
    q_halt: np.ndarray  # (B, T)
    q_continue: np.ndarray  # (B, T)
    halted: np.ndarray  # (B, T) bool
    halt_minute: np.ndarray  # (B,) as of the last minute

    @property
    def batch(self) -> int:
        return self.action.shape[0]

    @property
    def minutes(self) -> int:
        return self.action.shape[1]

    @property
    def last_minute(self) -> int:
        return self.first_minute + self.minutes - 1

    def at(self, minute: int) -> Decision:
        """The decision at absolute session minute `minute`."""
        i = minute - self.first_minute
        if not 0 <= i < self.minutes:
            raise IndexError(f"minute {minute} outside {self.first_minute}..{self.last_minute}")
        halt = np.where((self.halt_minute >= 0) & (self.halt_minute <= minute), self.halt_minute, NOT_HALTED)
        return Decision(
            minute=minute, action=self.action[:, i], confidence=self.confidence[:, i], quantity=self.quantity[:, i],
            q_halt=self.q_halt[:, i], q_continue=self.q_continue[:, i], halted=self.halted[:, i],
            halt_minute=_frozen(halt),
        )

    def last(self) -> Decision:
        return self.at(self.last_minute)

    def rows(self, symbols: list[str] | None = None):
        """One dict per (minute, instrument), in minute order: what `hrm-export run` prints."""
        for i in range(self.minutes):
            for b in range(self.batch):
                yield {
                    "minute": self.first_minute + i,
                    "instrument": symbols[b] if symbols else b,
                    "action": ACTIONS[int(self.action[b, i])],
                    "confidence": round(float(self.confidence[b, i]), 6),
                    "quantity": round(float(self.quantity[b, i]), 6),
                    "q_halt": round(float(self.q_halt[b, i]), 6),
                    "q_continue": round(float(self.q_continue[b, i]), 6),
                    "halted": bool(self.halted[b, i]),
                }


def concat(parts: list[Timeline]) -> Timeline:
    """Stack timelines of instrument chunks (same minutes) along the batch axis."""
    if len(parts) == 1:
        return parts[0]
    cat = lambda name: _frozen(np.concatenate([getattr(p, name) for p in parts], axis=0))  # noqa: E731
    return Timeline(parts[0].first_minute, *(cat(n) for n in (
        "action_logits", "action", "confidence", "quantity", "q_halt", "q_continue", "halted", "halt_minute")))


def timeline(
    action_logits: torch.Tensor, quantity: torch.Tensor, q_values: torch.Tensor,
    first_minute: int, halt_minute: np.ndarray, session_minutes: int,
) -> Timeline:
    """Decisions for new minutes from the heads (B, T, 3), (B, T, 1), (B, T, 2), continuing the halt state
    `halt_minute` (B,) of the minutes before `first_minute`, in a session of `session_minutes` minutes (its
    close halts). Raises NonFiniteOutputError (instrument = row of this batch) before deciding anything."""
    logits = action_logits.detach().float().cpu().numpy()  # (B, T, 3)
    q = q_values.detach().float().cpu().numpy()  # (B, T, 2)
    action, confidence = rule.actions(logits, first_minute)
    qty = rule.quantities(quantity.detach().float().cpu().numpy(), first_minute)
    new_halt = rule.halting_minutes(q, session_minutes, first_minute, halt_minute)  # (B,)
    return Timeline(
        first_minute=first_minute,
        action_logits=_frozen(logits),
        action=_frozen(action),
        confidence=_frozen(confidence),  # float64: the rule computes it so (the C++ runtime too)
        quantity=_frozen(qty),
        q_halt=_frozen(np.ascontiguousarray(q[..., 0])),
        q_continue=_frozen(np.ascontiguousarray(q[..., 1])),
        halted=_frozen(rule.halted(new_halt, first_minute, q.shape[1])),
        halt_minute=_frozen(new_halt),
    )
