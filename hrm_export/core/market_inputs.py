"""Realistic model inputs from the seeded synthetic market: sample days whose tokens have the value ranges of
real features (the runtime refuses tokens outside them). Verify's feeds, INT8 calibration, the precision judge
and the Triton load bench all draw their days here.
"""

from __future__ import annotations

import functools

import numpy as np

from hrm_export.core.errors import UserError
from model_src.config import HRMConfig

SYNTHETIC_SESSION = 390  # minutes of one synthetic-market session
SOURCE = "model_src.data.synthetic_samples"


def sample_days(cfg: HRMConfig, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` days of the market: days (n, max_days, F_day) and minutes (n, max_minutes, F_min), float32, read-only.

    Full sessions only (half days are skipped, not cropped). A model for sessions longer than the synthetic
    one (XLON: 510) gets consecutive sessions joined along the minute axis: every token keeps the value range
    of real features, which is what parity and load need; the joined day is not a real session."""
    days, minutes = _sample_days(cfg.max_days, cfg.max_minutes, n, seed)
    return days.copy(), minutes.copy()  # the cached pool stays as it was, whatever a caller does to its copy


@functools.lru_cache(maxsize=8)  # verify and the load bench ask for the same pool several times
def _sample_days(D: int, T: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from model_src.data import stack_samples, synthetic_samples

    per = -(-T // SYNTHETIC_SESSION)  # sessions per sample day
    # n·per + 12 sessions: the first few lack history (skipped by build_samples), a few are half days
    samples = [s for s in synthetic_samples(int(n * per * 1.1) + 12, seed=seed, lookback=D)
               if s.minutes.shape[0] == SYNTHETIC_SESSION][-n * per:]
    if len(samples) < n * per:
        raise UserError(f"only {len(samples) // per} full sample days of {T} minutes available, {n} asked",
                        hint="ask for fewer days")
    days, minutes = stack_samples(samples)  # (n·per, D, F_day), (n·per, 390, F_min)
    days = days[per - 1::per].numpy().astype(np.float32)  # each joined day's look-back: before its last session
    minutes = minutes.reshape(n, per * SYNTHETIC_SESSION, -1)[:, :T].numpy().astype(np.float32)
    days.setflags(write=False)
    minutes.setflags(write=False)
    return days, minutes
