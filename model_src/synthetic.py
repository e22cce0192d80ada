"""A seeded synthetic market in which the daily history decides what the minutes will do.

A session is six *legs* of LEG = 65 minutes, starting at minutes 0, 65, ..., 325 (the clock, not the price,
says where a leg is). Each leg, for an impulse direction d = ±1 drawn at random:

    minutes  0–2    impulse: the price moves from wherever it is to d·IMPULSE (15 bp) from the session open
    minutes  3–29   pause: noise around d·IMPULSE, on PAUSE_VOLUME (0.3×) volume
    minutes 30–32   step: the leg follows through, to d·LEVEL (50 bp ±20 %) from the open, or fades, to −d·LEVEL
    minutes 33–64   hold: noise around that level, until the next impulse

A leg follows through with probability P_FOLLOW (0.9) when its bit is set, 1 − P_FOLLOW when not. The bits
are the day's *tape*, read from the latest day token's ret5 (the 5-day log-return over √5, in % per √day),
computed by model_src.features.day_feature_rows itself on the daily bars before the session:

    legs 1, 3, 5 (minutes 0, 130, 260)    trending: |ret5| ≥ TREND_CUT (its median here: set on half the days)
    legs 2, 4, 6 (minutes 65, 195, 325)   up:       ret5 > 0

So the tape of session d is a function of the H-module's input for d. Both bits persist from day to day
(consecutive ret5 share 4 of their 5 days) and are independent of each other.

During a pause the 30-minute label is decided by a step that has not happened yet: along d if the leg's bit
is set, against d if not. An L-module told the bits (by FiLM γ, β) can call it; one that is not sees a coin,
because the session does not show them:
- volatility, volume, the gap and the impulses do not depend on them;
- every impulse resets the price to d·IMPULSE from the open, so a pause looks the same whatever the earlier
  legs did, and the thin pause volume makes a follow-through and a fade leg weigh about equally in the
  session VWAP (vwap_dev): neither ret_open nor vwap_dev tells the bit;
- the session does show how its earlier legs ended, each right about its bit 9 times in 10; the bits
  alternate by leg so that the previous leg, the only one a training crop can hold next to a pause, says
  nothing about the next (docs/training.md measures what an L-module could still learn across legs).

Minute log-return: r[t] = m(t) + sigma_day · u(t) · eps[t], eps ~ N(0, 1), where m(t) is the legs' move
(impulse and step, each spread evenly over its 3 minutes), u(t) the intraday U-shape of volatility (mean
square 1) and sigma_day = BASE_SIGMA · exp(N(0, 0.15)). The overnight gap is N(0, GAP_NOISE), independent of
everything else. Labels (model_src.labels, 30-minute horizon, 10 bp band) are short/flat/long ≈ 44/12/44 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from model_src.calendars import WEEKDAYS_NY
from model_src.features import DAY_FEATURES, day_feature_rows

NY = "America/New_York"
SESSION_MINUTES = 390
REGIMES = ("range-down", "range-up", "trending-down", "trending-up")  # the tape, in daily["regime"] for analysis
BASE_SIGMA = 3.5e-4  # minute noise, log (≈0.7 % per day)
LEG = 65  # minutes per leg: 6 legs per session
IMPULSE = 1.5e-3  # |log price − open| after an impulse
IMPULSE_MINUTES = 3
STEP_AT = 30  # leg minute at which the step starts
STEP_MINUTES = 3
LEVEL = 5.0e-3  # |log price − open| after the step, either way (scaled per leg by U(0.8, 1.2))
P_FOLLOW = 0.9  # a leg whose bit is set follows through with this probability, else with 1 − P_FOLLOW
TREND_CUT = 0.52  # |ret5| (% per √day) at or above which the tape is trending: ≈ its median on this market
GAP_NOISE = 4e-3
PAUSE_VOLUME = 0.3  # volume multiple of the pause minutes: little trades at the pause level, so the session
# VWAP, which the L-module sees, weighs a follow-through and a fade leg about equally (and the impulse has no
# volume spike, which would weigh the impulse level)
BASE_VOLUME = 1e6  # shares per day
START_PRICE = 100.0
START_DATE = "2021-01-04"
RET5 = DAY_FEATURES.index("ret5")
RET5_DAYS = 7  # daily bars handed to day_feature_rows for the latest ret5 (it reads 6; one spare)


def _u_shape(early: float, late: float, width_early: float, width_late: float) -> np.ndarray:
    t = np.arange(SESSION_MINUTES)
    return 1.0 + early * np.exp(-t / width_early) + late * np.exp(-(SESSION_MINUTES - 1 - t) / width_late)


VOL_SHAPE = _u_shape(1.5, 0.8, 25, 25)
VOL_SHAPE /= np.sqrt(np.mean(VOL_SHAPE**2))  # keeps the day's variance at BASE_SIGMA² · 390
VOLUME_SHAPE = _u_shape(2.0, 2.5, 30, 20)
VOLUME_SHAPE /= VOLUME_SHAPE.mean()


@dataclass
class Market:
    """Everything the generator drew, for analysis and tests; the data layer sees only the bars."""

    trending: np.ndarray  # (D,) bool: |ret5| ≥ TREND_CUT, the even legs' bit
    up: np.ndarray  # (D,) bool: ret5 > 0, the odd legs' bit
    ret5: np.ndarray  # (D,) the ret5 token the tape was read from (NaN where there is no earlier day)
    minute_return: np.ndarray  # (D, T) log-returns
    drift: np.ndarray  # (D, T) the legs' deterministic move m(t) in the returns
    impulse: np.ndarray  # (D, T) int8: d at an impulse minute, else 0
    direction: np.ndarray  # (D, T) int8: the current leg's impulse direction d
    since_impulse: np.ndarray  # (D, T) minute of the current leg (0 at its impulse)
    follows: np.ndarray  # (D, T) int8: +1 the current leg follows through, -1 it fades
    gap: np.ndarray  # (D,) log(open / previous close)
    sigma: np.ndarray  # (D,) the day's minute noise scale


def _legs(rng: np.random.Generator, follows_odds: tuple[bool, bool], noise: np.ndarray):
    """One session's noise (T,) → returns r, move m, impulse, direction, leg minute, follows: (T,) each.

    follows_odds: whether the even legs (0, 2, 4) and the odd legs (1, 3, 5) follow through P_FOLLOW of the time."""
    T = len(noise)
    r, drift, impulse = noise.copy(), np.zeros(T), np.zeros(T, np.int8)
    direction, since, follows = np.zeros(T, np.int8), np.zeros(T, np.int64), np.zeros(T, np.int8)
    for t0 in range(0, T, LEG):
        d = 1 if rng.random() < 0.5 else -1
        follow = rng.random() < (P_FOLLOW if follows_odds[(t0 // LEG) % 2] else 1 - P_FOLLOW)
        y0 = r[:t0].sum()  # log price relative to the open before the leg
        k = slice(t0, t0 + IMPULSE_MINUTES)
        drift[k] = (d * IMPULSE - y0) / IMPULSE_MINUTES  # the impulse carries the price to d·IMPULSE
        impulse[k] = d
        level = (d if follow else -d) * LEVEL * rng.uniform(0.8, 1.2)
        step = slice(t0 + STEP_AT, t0 + STEP_AT + STEP_MINUTES)
        drift[step] = (level - d * IMPULSE) / STEP_MINUTES
        end = min(T, t0 + LEG)
        r[t0:end] += drift[t0:end]
        direction[t0:end], follows[t0:end] = d, 1 if follow else -1
        since[t0:end] = np.arange(end - t0)
    return r, drift, impulse, direction, since, follows


def simulate_market(n_days: int, seed: int = 0) -> tuple[Market, dict[str, np.ndarray]]:
    """The generator: its hidden state (Market) and the bars as (D, T) arrays (open, high, low, close, volume)."""
    assert n_days >= 1, f"n_days must be >= 1, got {n_days}"
    rng = np.random.default_rng(seed)
    D, T = n_days, SESSION_MINUTES
    sigma = BASE_SIGMA * np.exp(rng.normal(0.0, 0.15, D))  # (D,) day-to-day volatility noise
    gaps = GAP_NOISE * rng.standard_normal(D)  # (D,)
    day_volume = BASE_VOLUME * np.exp(rng.normal(0.0, 0.2, D))  # (D,)
    m = Market(trending=np.zeros(D, bool), up=np.zeros(D, bool), ret5=np.full(D, np.nan),
               minute_return=np.zeros((D, T)), drift=np.zeros((D, T)), impulse=np.zeros((D, T), np.int8),
               direction=np.zeros((D, T), np.int8), since_impulse=np.zeros((D, T), np.int64),
               follows=np.zeros((D, T), np.int8), gap=gaps, sigma=sigma)
    bars = {k: np.zeros((D, T)) for k in ("open", "high", "low", "close", "volume")}
    daily = {k: np.zeros(D) for k in ("open", "high", "low", "close", "volume")}
    prev_close = START_PRICE
    for d in range(D):  # sequential: the tape of day d is read from the daily bars before it
        if d >= 2:  # day_feature_rows' row 0 has no previous close: the first token is row 1
            recent = slice(max(0, d - RET5_DAYS), d)  # ret5 of the latest row reads its last 6 closes only
            rows = day_feature_rows(*(daily[k][recent] for k in ("open", "high", "low", "close", "volume")))
            m.ret5[d] = rows[-1, RET5]
        m.trending[d] = bool(abs(np.nan_to_num(m.ret5[d])) >= TREND_CUT)
        m.up[d] = bool(np.nan_to_num(m.ret5[d]) > 0)
        noise = rng.standard_normal(T) * sigma[d] * VOL_SHAPE  # (T,)
        r, m.drift[d], imp, m.direction[d], m.since_impulse[d], m.follows[d] = _legs(rng, (m.trending[d], m.up[d]),
                                                                                     noise)
        m.impulse[d] = imp
        pause = (m.since_impulse[d] >= IMPULSE_MINUTES) & (m.since_impulse[d] < STEP_AT)  # (T,)
        m.minute_return[d] = r
        log_open = np.log(prev_close) + gaps[d]
        log_close = log_open + np.cumsum(r)  # (T,)
        close = np.exp(log_close)
        open_ = np.exp(np.concatenate([[log_open], log_close[:-1]]))
        wick = np.abs(rng.standard_normal((2, T))) * 0.3 * sigma[d] * VOL_SHAPE
        shock = np.abs(noise) / (sigma[d] * VOL_SHAPE)  # big moves trade more
        volume = np.round(day_volume[d] / T * VOLUME_SHAPE * np.exp(rng.normal(0.0, 0.4, T))
                          * (0.7 + 0.3 * shock) * np.where(pause, PAUSE_VOLUME, 1.0))
        bars["open"][d], bars["close"][d], bars["volume"][d] = open_, close, volume
        bars["high"][d] = np.maximum(open_, close) * np.exp(wick[0])
        bars["low"][d] = np.minimum(open_, close) * np.exp(-wick[1])
        daily["open"][d], daily["close"][d], daily["volume"][d] = open_[0], close[-1], volume.sum()
        daily["high"][d], daily["low"][d] = bars["high"][d].max(), bars["low"][d].min()
        prev_close = close[-1]
    return m, bars


def synthetic_market(n_days: int, seed: int = 0, symbol: str = "SYN") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(daily_bars, minute_bars) in the bar schema for `n_days` sessions of 390 minutes, New York time.

    Deterministic for a seed. The tape of each day is in `daily["regime"]` (for analysis; the data layer
    ignores it). Both frames carry a `symbol` column.
    """
    m, bars = simulate_market(n_days, seed)
    D, T = bars["close"].shape
    dates = pd.bdate_range(START_DATE, periods=D, tz=NY)  # midnight New York of each session date
    opens = dates.tz_convert(None).to_numpy()[:, None]  # (D, 1) UTC
    stamps = opens + pd.to_timedelta(9 * 60 + 30 + np.arange(T), unit="min").to_numpy()  # (D, T)
    minute = pd.DataFrame({
        "timestamp": pd.DatetimeIndex(stamps.ravel(), tz="UTC").tz_convert(NY),
        **{k: bars[k].ravel() for k in ("open", "high", "low", "close", "volume")}, "symbol": symbol,
    })
    daily = pd.DataFrame({
        "timestamp": dates,
        "open": bars["open"][:, 0], "high": bars["high"].max(axis=1), "low": bars["low"].min(axis=1),
        "close": bars["close"][:, -1], "volume": bars["volume"].sum(axis=1), "symbol": symbol,
        "regime": np.asarray(REGIMES)[2 * m.trending + m.up],
    })
    # the market trades every weekday (no holidays): its frames name that calendar, so the data layer does not
    # hold them to XNYS, whose holidays the simulation does not know
    minute.attrs.update(source=f"synthetic_market(seed={seed}) minute bars", symbol=symbol, exchange=WEEKDAYS_NY)
    daily.attrs.update(source=f"synthetic_market(seed={seed}) daily bars", symbol=symbol, exchange=WEEKDAYS_NY)
    return daily, minute
