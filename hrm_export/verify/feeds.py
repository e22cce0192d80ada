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

from hrm_export.profiles import Profile
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
            pt = _session_rule(pt, cfg, prefer_past=label != "max")
            key = tuple(sorted(pt.items()))
            cases.setdefault(key, Case(f"{p.name}:{label}", key))
        if p.axes["past_minutes"][2] > 0:  # the other end of the max corner: a full cache, one new minute
            pt = {**p.point("max"), "new_minutes": p.axes["new_minutes"][0]}
            pt = _session_rule(pt, cfg, prefer_past=True)
            key = tuple(sorted(pt.items()))
            cases.setdefault(key, Case(f"{p.name}:max-past", key))
    return list(cases.values())


def _session_rule(pt: Point, cfg: HRMConfig, prefer_past: bool) -> Point:
    """Shrink past or new minutes so that past + new ≤ max_minutes (l_step's session rule)."""
    pt = dict(pt)
    over = pt["past_minutes"] + pt["new_minutes"] - cfg.max_minutes
    if over > 0:
        if prefer_past:
            pt["new_minutes"] = max(1, pt["new_minutes"] - over)
            pt["past_minutes"] = cfg.max_minutes - pt["new_minutes"]
        else:
            pt["past_minutes"] = max(0, pt["past_minutes"] - over)
    return pt


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
    D, T = cfg.max_days, cfg.max_minutes
    try:
        from model_src.data import stack_samples, synthetic_samples
    except ImportError:
        return ("gaussian-walk fallback (model_src.data missing)", *_fallback(cfg, seed, n))
    # n + 12 sessions: the first few lack history (skipped by build_samples) and half days are left out
    samples = [s for s in synthetic_samples(n + 12, seed=seed, lookback=D)
               if s.days.shape[0] >= D and s.minutes.shape[0] >= T][:n]
    if not samples:
        return ("gaussian-walk fallback (no full synthetic sessions)", *_fallback(cfg, seed, n))
    days, minutes = stack_samples(samples, crop_minutes=T)  # (N, D, F_day), (N, T, F_min)
    return "model_src.data.synthetic_samples", days[:, -D:].float(), minutes[:, :T].float()


def _fallback(cfg: HRMConfig, seed: int, n: int) -> tuple[Tensor, Tensor]:
    """Feature-like inputs: heavy-tailed returns, trending levels, positive volumes (not plain N(0, 1))."""
    gen = torch.Generator().manual_seed(seed)

    def series(n_steps: int, n_feat: int) -> Tensor:
        shocks = torch.randn(n, n_steps, n_feat, generator=gen) * torch.rand(n, 1, n_feat, generator=gen)
        jumps = (torch.rand(n, n_steps, n_feat, generator=gen) < 0.01) * torch.randn(n, n_steps, n_feat,
                                                                                      generator=gen) * 4
        x = shocks + jumps
        level = x.cumsum(1) / (n_steps ** 0.5)  # slow trends beside the returns
        half = n_feat // 2
        return torch.cat([x[..., :half], level[..., half:-1], x[..., -1:].abs().log1p()], dim=-1)  # last: volume

    return series(cfg.max_days, cfg.n_day_features), series(cfg.max_minutes, cfg.n_minute_features)
