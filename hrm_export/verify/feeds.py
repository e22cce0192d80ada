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

from hrm_export.core.market_inputs import SOURCE, sample_days
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
    days, minutes = sample_days(cfg, n, seed)  # (N, D, F_day), (N, T, F_min)
    return SOURCE, torch.from_numpy(days.copy()), torch.from_numpy(minutes.copy())
