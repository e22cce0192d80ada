"""Training data: day samples → tensors and labels, a split by date, deterministic minute crops.

Everything a batch needs is a pure function of (seed, epoch, sample index): which samples form step k's
batch (torch's DistributedSampler over the sample indices) and where each sample's minute crop starts.
So a resumed run, a single-process run and an N-process DDP run see the same global batch at every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from model_src.errors import DataError
from model_src.labels import LabelConfig, session_labels


@dataclass
class DataSpec:
    """Where the samples come from; recorded in checkpoints so `--describe` can rebuild the split."""

    source: str = "synthetic"  # "synthetic" or "bars"
    n_days: int = 400  # synthetic only
    data_seed: int = 0  # synthetic only
    daily_path: str = ""  # bars only
    minute_path: str = ""  # bars only
    lookback: int = 64
    val_fraction: float = 0.15
    tz: str = ""  # bars only: the zone of naive timestamps, e.g. "America/New_York"


def load_samples(spec: DataSpec) -> list:
    """The DaySamples of `spec`, sorted by date."""
    from model_src import data  # the data layer (pandas) is only needed when training

    if spec.source == "synthetic":
        samples = data.synthetic_samples(spec.n_days, seed=spec.data_seed, lookback=spec.lookback)
    elif spec.source == "bars":
        if not (spec.daily_path and spec.minute_path):
            raise DataError("--data bars needs both --daily-bars FILE and --minute-bars FILE")
        daily = data.read_bars(Path(spec.daily_path), tz=spec.tz or None)
        minute = data.read_bars(Path(spec.minute_path), tz=spec.tz or None)
        samples = data.build_samples(daily, minute, lookback=spec.lookback)
    else:
        raise DataError(f"unknown data source {spec.source!r}; use synthetic or bars")
    if len(samples) < 2:
        raise DataError(f"{len(samples)} day sample(s) from {spec.source}; need at least 2 (train and validation)")
    return sorted(samples, key=lambda s: (str(s.date), s.symbol))


def split_by_date(samples: list, val_fraction: float) -> tuple[list, list]:
    """The last `val_fraction` of dates are validation; all symbols of a date land on the same side."""
    dates = sorted({str(s.date) for s in samples})
    n_val = min(len(dates) - 1, max(1, round(len(dates) * val_fraction)))
    first_val = dates[len(dates) - n_val]
    train = [s for s in samples if str(s.date) < first_val]
    val = [s for s in samples if str(s.date) >= first_val]
    return train, val


class DayTensors:
    """A list of day samples as padded tensors with per-minute labels."""

    def __init__(self, samples: list, labels: LabelConfig):
        if len({s.days.shape for s in samples}) != 1:
            raise DataError("day samples have different look-back shapes; build them with one --lookback")
        self.horizon = labels.horizon
        self.dates = [str(s.date) for s in samples]
        self.lengths = torch.tensor([s.minutes.shape[0] for s in samples])  # (N,)
        N, T = len(samples), int(self.lengths.max())
        F = samples[0].minutes.shape[1]
        self.days = torch.from_numpy(np.stack([s.days for s in samples])).float()  # (N, D, F_day)
        self.minutes = torch.zeros(N, T, F)  # (N, T, F_min), zero-padded after each session's end
        self.action = torch.full((N, T), -100, dtype=torch.long)  # -100: padding, ignored by the losses
        self.quantity = torch.zeros(N, T)
        for i, s in enumerate(samples):
            n = s.minutes.shape[0]
            a, q = session_labels(s.minute_close, labels)
            self.minutes[i, :n] = torch.from_numpy(np.asarray(s.minutes, dtype=np.float32))
            self.action[i, :n] = torch.from_numpy(a)
            self.quantity[i, :n] = torch.from_numpy(q)

    def __len__(self) -> int:
        return len(self.dates)

    def crop_starts(self, idx: list[int], crop: int, seed: int, epoch: int) -> Tensor:
        """Crop start per sample, a function of (seed, epoch, sample) only."""
        starts = []
        for i in idx:
            room = max(0, int(self.lengths[i]) - crop)
            starts.append(int(np.random.default_rng([seed, epoch, i]).integers(0, room + 1)))
        return torch.tensor(starts)

    def window(self, idx: list[int], starts: Tensor, crop: int) -> dict[str, Tensor]:
        """Minutes [start, start+crop) of each sample, their absolute positions and labels."""
        ii = torch.tensor(idx)
        cols = starts[:, None] + torch.arange(crop)  # (B, L) absolute minute of the session
        cols = cols.clamp(max=self.minutes.shape[1] - 1)
        rows = ii[:, None].expand_as(cols)
        return {
            "days": self.days[ii],  # (B, D, F_day)
            "minutes": self.minutes[rows, cols],  # (B, L, F_min)
            "positions": cols,  # (B, L)
            "action": self.action[rows, cols],  # (B, L)
            "quantity": self.quantity[rows, cols],  # (B, L)
            "session_end": starts + crop >= self.lengths[ii],  # (B,) the window reaches the close
            "full_horizon": cols + self.horizon <= self.lengths[ii][:, None] - 1,  # (B, L) horizon ends by the close
        }

    def full(self, idx: list[int]) -> dict[str, Tensor]:
        """Whole sessions (validation), padded to the longest in `idx`."""
        T = int(self.lengths[idx].max())
        return self.window(idx, torch.zeros(len(idx), dtype=torch.long), T)

    def class_counts(self) -> Tensor:
        a = self.action[self.action >= 0]
        return torch.bincount(a, minlength=3)
