"""Raw minute bars → minute tokens while streaming, with exactly the features of the offline pipeline.

model_src.features computes a session's minute features causally (row t uses bars ≤ t only), so the
tokens of the new minutes are the last rows of the features over every bar so far. Recomputing over at
most 390 bars costs microseconds and cannot drift from the offline tokens the model was trained on.
A missing minute is the caller's to fill (a flat bar at the last close, volume 0, filled=1), as
model_src.data does offline: the stream must stay one bar per minute.
"""

from __future__ import annotations

import numpy as np

from hrm_export.runtime.errors import InputError

FIELDS = ("open", "high", "low", "close", "volume")


class BarStream:
    """The raw bars of one session for B instruments, and the previous session's close of each."""

    def __init__(self, prev_close):
        prev = np.atleast_1d(np.asarray(prev_close, dtype=np.float64))
        if prev.ndim != 1 or not np.all(np.isfinite(prev)) or not np.all(prev > 0):
            raise InputError(f"prev_close {prev_close!r}: expected one positive finite close per instrument",
                             hint="pass the previous session's close of each instrument to start_day")
        self.prev_close = prev  # (B,)
        self.bars = {f: np.zeros((len(prev), 0)) for f in (*FIELDS, "filled")}  # (B, T) each

    def tokens(self, new: dict, session_minutes: int) -> tuple[np.ndarray, dict]:
        """Tokens (B, T_new, F_min) of the new bars and the bar arrays to keep if the push succeeds.
        `session_minutes` is today's length from the calendar: the time-of-day features are the share of it."""
        from model_src.features import minute_features

        B = len(self.prev_close)
        cols = {}
        for f in (*FIELDS, "filled"):
            if f not in new:
                if f == "filled":
                    cols[f] = np.zeros_like(cols["close"])
                    continue
                raise InputError(f"bars: no {f!r} field", hint=f"pass bars with fields {', '.join(FIELDS)}")
            a = np.asarray(new[f], dtype=np.float64)
            a = a.reshape(B, -1) if a.ndim <= 1 and a.size % B == 0 else a  # (T,) for one instrument → (1, T)
            if a.ndim != 2 or a.shape[0] != B:
                raise InputError(f"bars: {f} has shape {np.shape(new[f])}, expected ({B}, new_minutes)",
                                 hint="one row of bars per instrument of the session")
            cols[f] = a
        shapes = {a.shape for a in cols.values()}
        if len(shapes) != 1:
            raise InputError(f"bars: fields have different shapes {sorted(shapes)}", hint="one value per bar per field")
        prices = np.stack([cols[f] for f in ("open", "high", "low", "close")])
        if not np.all(np.isfinite(prices)) or not np.all(prices > 0) or not np.all(np.isfinite(cols["volume"])):
            raise InputError("bars: non-finite or non-positive price, or non-finite volume",
                             hint="repair the bar (model_src.data.clean_bars) before pushing it")
        if np.any(cols["high"] < cols["low"]) or np.any(cols["volume"] < 0):
            raise InputError("bars: high below low, or negative volume", hint="repair the bar before pushing it")
        merged = {f: np.concatenate([self.bars[f], cols[f]], axis=1) for f in cols}  # (B, T + T_new)
        T, t_new = merged["close"].shape[1], cols["close"].shape[1]
        out = np.stack([
            minute_features(*(merged[f][b] for f in FIELDS), np.arange(T), merged["filled"][b], self.prev_close[b],
                            session_minutes=session_minutes)
            for b in range(B)
        ])[:, T - t_new:]  # (B, T_new, F_min)
        return out.astype(np.float32), merged

    def commit(self, merged: dict) -> None:
        self.bars = merged
