"""Deterministic verification feeds: the profile points to test and realistic market inputs at each.

Points: every profile's min, opt and max plus a few seeded random points in between; l_step points respect
past + new ≤ the session length. Inputs come from the synthetic market of `model_src.data` (bars → features),
so the models see the value ranges of real features, not only Gaussian noise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor

from hrm_export.core.errors import UserError
from hrm_export.core.profiles import Profile
from hrm_export.core.session_rule import fit_session
from model_src.config import HRMConfig

Point = dict[str, int]  # axis name -> value


@dataclass(frozen=True)
class Case:
    label: str  # e.g. "latency:max" or "throughput:rand1"
    point: tuple[tuple[str, int], ...]

    @property
    def axes(self) -> Point:
        return dict(self.point)


def profile_cases(profiles: list[Profile], cfg: HRMConfig, seed: int, n_random: int = 2) -> list[Case]:
    """min/opt/max and `n_random` seeded points of each profile, deduplicated, session rule applied."""
    rng = random.Random(seed)
    cases: dict[tuple, Case] = {}
    for p in profiles:
        points = [(w, p.point(w)) for w in ("min", "opt", "max")]
        for i in range(n_random):
            points.append((f"rand{i}", {a: rng.randint(lo, hi) for a, (lo, _, hi) in p.axes.items()}))
        for label, pt in points:
            pt = fit_session(pt, cfg.max_minutes, prefer_past=label != "max")
            key = tuple(sorted(pt.items()))
            cases.setdefault(key, Case(f"{p.name}:{label}", key))
        if p.axes["past_minutes"][2] > 0:  # the other end of the max corner: a full cache, one new minute
            pt = {**p.point("max"), "new_minutes": p.axes["new_minutes"][0]}
            pt = fit_session(pt, cfg.max_minutes, prefer_past=True)
            key = tuple(sorted(pt.items()))
            cases.setdefault(key, Case(f"{p.name}:max-past", key))
    return list(cases.values())


class MarketInputs:
    """A pool of realistic (days, minutes) samples, sliced and tiled to any (B, D) / (B, T)."""

    def __init__(self, cfg: HRMConfig, seed: int, pool: int = 32):
        self.cfg = cfg
        self.source, days, minutes = _pool(cfg, seed, pool)
        self.days, self.minutes = days, minutes  # (N, max_days, F_day), (N, max_minutes, F_min)

    def batch(self, B: int, D: int, T: int, offset: int = 0) -> tuple[Tensor, Tensor]:
        """days (B, D, F_day): the latest D days; minutes (B, T, F_min): the session's first T minutes."""
        idx = (torch.arange(B) + offset) % self.days.shape[0]
        return self.days[idx, -D:].contiguous(), self.minutes[idx, :T].contiguous()


def _pool(cfg: HRMConfig, seed: int, n: int) -> tuple[str, Tensor, Tensor]:
    from model_src.data import stack_samples, synthetic_samples

    D, T = cfg.max_days, cfg.max_minutes
    # The synthetic market's sessions are 390 minutes. A model for longer sessions (XLON: 510) is fed `per`
    # consecutive sessions joined along the minute axis: every token keeps the value range of real features,
    # which is what parity needs; the joined day is not a real session, and verify does not claim it is.
    per = -(-T // 390)
    # n·per + 12 sessions: the first few lack history (skipped by build_samples)
    samples = [s for s in synthetic_samples(n * per + 12, seed=seed, lookback=D)
               if s.days.shape[0] >= D and s.minutes.shape[0] == 390][:n * per]
    if len(samples) < per:
        raise UserError(f"the synthetic market has no {T}-minute feeds for this model",
                        hint="verify a model whose max_minutes is at most the synthetic session (390)")
    samples = samples[:len(samples) // per * per]
    days, minutes = stack_samples(samples)  # (N·per, D, F_day), (N·per, 390, F_min)
    minutes = minutes.reshape(len(samples) // per, per * 390, -1)[:, :T]  # (N, T, F_min)
    return "model_src.data.synthetic_samples", days[::per, -D:].float(), minutes.float()
