"""Replay a recorded day through the runtime, as the trading system would see it (what `hrm-export run` does).

Inputs are token files — .npy (an array), .npz (the array named `days` / `minutes`, or its only array),
shaped (D, F_day) / (T, F_min) for one instrument or (B, D, F_day) / (B, T, F_min) for several — or bar
files (.csv / .parquet) that model_src.data turns into tokens. Arrays are loaded with allow_pickle=False.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hrm_export.core.decisions import Timeline
from hrm_export.runtime.errors import InputError
from hrm_export.runtime.runtime import HRMRuntime

BAR_SUFFIXES = (".csv", ".parquet", ".pq")


def load_tokens(path: Path, kind: str) -> np.ndarray:
    """Token array `kind` ("days" | "minutes") from .npy / .npz, with a batch axis (B, N, F)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file", hint=f"pass the {kind} tokens as .npy / .npz (or bars as .csv)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                names = list(loaded.files)
                if kind not in names and len(names) != 1:
                    raise InputError(f"{path}: arrays {names}, none named {kind!r}",
                                     hint=f"save it as np.savez(path, {kind}=array)")
                arr = loaded[kind if kind in names else names[0]]
        else:
            arr = loaded
    except ValueError as e:  # object arrays need pickle: refused, never unpickled
        raise InputError(f"{path}: not a plain numeric array ({e})",
                         hint="save tokens with np.save(path, float32 array)") from None
    except OSError as e:
        raise InputError(f"{path}: not a .npy/.npz file ({e})", hint="save tokens with np.save / np.savez") from None
    return arr[None] if arr.ndim == 2 else arr


def load_bars(
    days_path: Path, minutes_path: Path, date: str | None, lookback: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Daily and minute bar files of one symbol → tokens of one session (the last, or `date`) via model_src.data."""
    try:
        from model_src.data import build_samples, read_bars
    except ImportError as e:
        raise InputError(f"bar files need model_src.data ({e})", hint="pass .npy/.npz tokens instead") from None
    samples = build_samples(read_bars(days_path), read_bars(minutes_path), lookback=lookback)
    if not samples:
        raise InputError(f"{minutes_path}: no session with enough look-back days in {days_path}",
                         hint="give at least one session and the daily bars before it")
    if date is not None:
        samples = [s for s in samples if str(s.date) == date]
        if not samples:
            raise InputError(f"{minutes_path}: no session on {date}", hint="pick a date the files cover")
    s = samples[-1]
    return s.days[None], s.minutes[None], str(s.date)


def load_day(days_path: Path, minutes_path: Path, date: str | None = None,
             lookback: int = 64) -> tuple[np.ndarray, np.ndarray, str]:
    """Tokens of one day from token files or bar files; `lookback` days for bars (the runtime's limit)."""
    if Path(minutes_path).suffix.lower() in BAR_SUFFIXES:
        return load_bars(days_path, minutes_path, date, lookback)
    return load_tokens(days_path, "days"), load_tokens(minutes_path, "minutes"), date or Path(minutes_path).stem


def replay(
    rt: HRMRuntime, days: np.ndarray, minutes: np.ndarray, day: object = None, stream: bool = True,
    step: int = 1, on_push: Callable[[int], None] | None = None,
) -> Timeline:
    """Streaming: start_day, then push `step` minutes at a time (on_push(n) after each); else one run_day."""
    if not stream:
        return rt.run_day(days, minutes, day=day)
    session = rt.start_day(days, day=day)
    parts = []
    for t in range(0, minutes.shape[1], step):
        parts.append(session.push_timeline(minutes[:, t:t + step], start_minute=t))
        if on_push:
            on_push(parts[-1].minutes)
    return _join_minutes(parts)


def _join_minutes(parts: list[Timeline]) -> Timeline:
    """Consecutive timelines of the same instruments → one; the halt state is the last part's."""
    first = parts[0]
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts], axis=1)  # noqa: E731
    return Timeline(first.first_minute, *(cat(n) for n in (
        "action_logits", "action", "confidence", "quantity", "q_halt", "q_continue", "halted")),
        parts[-1].halt_minute)
