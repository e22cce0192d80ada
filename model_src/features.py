"""Tokens from OHLCV bars: 8 features per daily bar, 11 per minute of a session.

Every feature is causal by construction: it is built from cumulative sums, rolling windows that end at
the current bar, or values of the current and earlier bars. The tests perturb every later bar and check
that nothing earlier changes (docs/features.md lists each formula and its units).

Units are chosen so that a typical US equity gives values of order 1: day returns in percent, minute
returns in units of 10 basis points. Every feature is clipped to ±CLIP so that one bad tick cannot blow
up a token.
"""

from __future__ import annotations

import numpy as np

from model_src.config import N_DAY_FEATURES, N_MINUTE_FEATURES

DAY_FEATURES = (
    "ret",  # log(close / previous close), %
    "gap",  # log(open / previous close), %
    "intraday",  # log(close / open), %
    "range",  # log(high / low), %
    "close_loc",  # where the close sits in the day's range, -1 (low) .. +1 (high)
    "volume_z",  # log-volume z-score against the 20 previous days
    "rv5",  # realized volatility: RMS of the last 5 daily log returns, %
    "ret5",  # log(close / close 5 days earlier) / √5, % per √day (comparable to ret)
)
MINUTE_FEATURES = (
    "ret_1m",  # log(close / previous minute's close), 10 bp
    "ret_open",  # log(close / session open), %
    "ret_prev_close",  # log(close / previous session's close), %
    "range",  # log(high / low), 10 bp
    "body",  # log(close / open) of the minute bar, 10 bp
    "volume_z",  # log-volume z-score against this session's earlier minutes
    "vwap_dev",  # log(close / session VWAP so far), %
    "rv15",  # RMS of the last 15 one-minute log returns, 10 bp
    "tod_sin",  # sin(2π · trading minutes since the open / the session's trading minutes)
    "tod_cos",  # cos(2π · trading minutes since the open / the session's trading minutes)
    "filled",  # 1 where the minute was repaired by forward fill, else 0
)
assert len(DAY_FEATURES) == N_DAY_FEATURES and len(MINUTE_FEATURES) == N_MINUTE_FEATURES

PCT = 100.0  # log-return → percent
TEN_BP = 1000.0  # log-return → units of 10 basis points
CLIP = 10.0

# The valid range of each feature, [low, high], as the formulas below bound it: everything is clipped to ±CLIP;
# a log range (high/low) and an RMS are >= 0; the close's place in the day's range and the time of day are on
# [-1, 1]; `filled` is a 0/1 flag. A token outside these ranges was not made by this module (raw prices pushed
# as tokens, a unit mix-up): bundles record the ranges (manifest `token_ranges`) and the runtime refuses such
# tokens. Zero rows (the look-back padding) are inside every range.
DAY_RANGES = {"range": (0.0, CLIP), "close_loc": (-1.0, 1.0), "rv5": (0.0, CLIP)}
MINUTE_RANGES = {"range": (0.0, CLIP), "rv15": (0.0, CLIP), "tod_sin": (-1.0, 1.0), "tod_cos": (-1.0, 1.0),
                 "filled": (0.0, 1.0)}


def token_ranges(n_day_features: int = N_DAY_FEATURES, n_minute_features: int = N_MINUTE_FEATURES
                 ) -> dict[str, dict[str, list[float]]]:
    """{"days": {feature: [low, high]}, "minutes": {...}} in token order: what a token of each book may hold.
    {} for a model whose feature counts are not these features' (its tokens come from elsewhere)."""
    if (n_day_features, n_minute_features) != (N_DAY_FEATURES, N_MINUTE_FEATURES):
        return {}
    book = lambda names, ranges: {n: list(ranges.get(n, (-CLIP, CLIP))) for n in names}  # noqa: E731
    return {"days": book(DAY_FEATURES, DAY_RANGES), "minutes": book(MINUTE_FEATURES, MINUTE_RANGES)}
SESSION_MINUTES = 390  # a regular XNYS session; the default session length where no calendar gives one
DAY_VOLUME_WINDOW = 20  # days of past volume behind the daily volume z-score
MIN_VOLUME_HISTORY = 5  # fewer past days than this: volume z-score is 0 (no information)
VOLUME_STD_FLOOR = 0.1  # in log-volume; keeps a constant-volume history from dividing by ~0
RV_DAYS = 5
RV_MINUTES = 15


def _rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum of x[max(0, t-window+1) .. t] for each t: a difference of one forward cumulative sum, so the
    value at t is a function of x[..t] only."""
    c = np.cumsum(x)
    out = c.copy()
    out[window:] = c[window:] - c[:-window]
    return out


def _past_zscore(x: np.ndarray, window: int | None, min_count: int, floor: float) -> np.ndarray:
    """(x[t] - mean) / std where mean, std come from x[t-window .. t-1] (all earlier values if window is
    None); 0 where fewer than min_count earlier values exist."""
    n = np.arange(len(x), dtype=np.float64)  # number of earlier values at t
    s1 = np.concatenate([[0.0], np.cumsum(x)[:-1]])  # sums of x[..t-1]
    s2 = np.concatenate([[0.0], np.cumsum(x * x)[:-1]])
    if window is not None:  # drop what slid out of the window: sums of x[t-window .. t-1]
        s1 = s1 - np.concatenate([np.zeros(window), s1[:-window]])[: len(x)]
        s2 = s2 - np.concatenate([np.zeros(window), s2[:-window]])[: len(x)]
        n = np.minimum(n, window)
    ok = n >= min_count
    safe_n = np.where(ok, n, 1.0)
    mean = s1 / safe_n
    var = np.maximum(s2 / safe_n - mean * mean, 0.0)
    z = (x - mean) / np.maximum(np.sqrt(var), floor)
    return np.where(ok, z, 0.0)


def day_feature_rows(open_, high, low, close, volume) -> np.ndarray:
    """(N,) arrays of consecutive daily bars → (N, 8) float64; row j uses bars ≤ j only.

    Row 0 has no previous close: it is NaN and never used as a token.
    """
    o, h, lo, c = (np.asarray(a, dtype=np.float64) for a in (open_, high, low, close))
    v = np.asarray(volume, dtype=np.float64)
    N = len(c)
    prev_c = np.concatenate([[np.nan], c[:-1]])
    ret = np.log(c / prev_c)  # (N,)
    span = h - lo
    close_loc = np.where(span > 0, 2.0 * (c - lo) / np.where(span > 0, span, 1.0) - 1.0, 0.0)
    r0 = np.nan_to_num(ret)  # row 0's NaN return must not poison the cumulative sums below
    rv5 = np.sqrt(_rolling_sum(r0 * r0, RV_DAYS) / np.minimum(np.arange(N), RV_DAYS).clip(min=1))
    back = np.maximum(np.arange(N) - RV_DAYS, 0)
    # divided by √(days spanned) so that it has the scale of a one-day return and is rarely clipped
    ret5 = np.log(c / c[back]) / np.sqrt(np.maximum(np.arange(N) - back, 1))
    vol_z = _past_zscore(np.log1p(v), DAY_VOLUME_WINDOW, MIN_VOLUME_HISTORY, VOLUME_STD_FLOOR)
    rows = np.stack([
        ret * PCT,
        np.log(o / prev_c) * PCT,
        np.log(c / o) * PCT,
        np.log(h / lo) * PCT,
        close_loc,
        vol_z,
        rv5 * PCT,
        ret5 * PCT,
    ], axis=1)  # (N, 8)
    rows = np.clip(rows, -CLIP, CLIP)
    rows[0] = np.nan
    return rows


def minute_features(open_, high, low, close, volume, minute_of_session, filled, prev_close: float,
                    session_minutes: int = SESSION_MINUTES) -> np.ndarray:
    """One session's minute bars, (T,) each → (T, 11) float64; row t uses minutes ≤ t and the previous
    session's close only. `minute_of_session` is trading minutes since the open (0 .. session_minutes - 1;
    a lunch break is not counted); `session_minutes` is the session's length from the exchange calendar,
    known before the open, so the time-of-day features stay causal."""
    o, h, lo, c = (np.asarray(a, dtype=np.float64) for a in (open_, high, low, close))
    v = np.asarray(volume, dtype=np.float64)
    # the first minute's one-minute return is measured from its own open: the overnight gap is carried
    # by ret_prev_close, and mixing it into ret_1m would make minute 0 an outlier every day
    prev = np.concatenate([o[:1], c[:-1]])
    r1 = np.log(c / prev)  # (T,)
    typical = (h + lo + c) / 3.0
    cum_v = np.cumsum(v)
    cum_pv = np.cumsum(typical * v)
    vwap = np.where(cum_v > 0, cum_pv / np.where(cum_v > 0, cum_v, 1.0), c)  # no volume yet: VWAP = close
    n_rv = np.minimum(np.arange(1, len(c) + 1), RV_MINUTES)
    rv = np.sqrt(np.maximum(_rolling_sum(r1 * r1, RV_MINUTES), 0.0) / n_rv)
    # the share of the session elapsed, on the unit circle: 390 for a regular XNYS day keeps the tokens the
    # default model was trained on; other lengths map their open and close to the same angles (docs/features.md)
    angle = 2.0 * np.pi * np.asarray(minute_of_session, dtype=np.float64) / session_minutes
    feats = np.stack([
        r1 * TEN_BP,
        np.log(c / o[0]) * PCT,
        np.log(c / prev_close) * PCT,
        np.log(h / lo) * TEN_BP,
        np.log(c / o) * TEN_BP,
        _past_zscore(np.log1p(v), None, 2, 0.25),
        np.log(c / vwap) * PCT,
        rv * TEN_BP,
        np.sin(angle),
        np.cos(angle),
        np.asarray(filled, dtype=np.float64),
    ], axis=1)  # (T, 11)
    return np.clip(feats, -CLIP, CLIP)
