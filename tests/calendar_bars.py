"""Real-shaped bars for any exchange: one bar at every trading minute of the calendar's sessions (lunch
breaks, early closes, DST and holidays as exchange_calendars has them), prices a seeded random walk."""

from __future__ import annotations

import exchange_calendars as xc
import numpy as np
import pandas as pd

from model_src.calendars import calendar_deprecations_silenced


def calendar_market(exchange: str, start: str, end: str, seed: int = 0,
                    symbol: str = "CAL") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(daily, minute) bars of the sessions of `exchange` from `start` to `end`, timestamps in its zone."""
    with calendar_deprecations_silenced():
        cal = xc.get_calendar(exchange, start=start, end=end)
        sessions = cal.sessions  # those from start to end
        stamps = cal.sessions_minutes(sessions[0], sessions[-1])  # (n,) UTC, every trading minute of the sessions
        session_of = cal.minutes_to_sessions(stamps)  # (n,) the session of each trading minute
    rng = np.random.default_rng(seed)
    n = len(stamps)
    first = np.r_[True, session_of[1:] != session_of[:-1]]  # the open of each session
    r = rng.normal(0.0, 4e-4, n) + first * rng.normal(0.0, 4e-3, n)  # minute returns, overnight gap at the open
    close = 100.0 * np.exp(np.cumsum(r))
    # a bar opens at the last close; the first bar of a session opens after the overnight gap, near its close
    open_ = np.where(first, close * np.exp(-rng.normal(0.0, 2e-4, n)), np.r_[100.0, close[:-1]])
    wick = np.abs(rng.normal(0.0, 2e-4, (2, n)))
    minute = pd.DataFrame({
        "timestamp": stamps.tz_convert(cal.tz), "open": open_, "high": np.maximum(open_, close) * np.exp(wick[0]),
        "low": np.minimum(open_, close) * np.exp(-wick[1]), "close": close,
        "volume": np.round(rng.lognormal(8.0, 0.5, n)), "symbol": symbol,
    })
    g = minute.groupby(np.asarray(session_of), sort=True)
    daily = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(), "low": g["low"].min(),
                          "close": g["close"].last(), "volume": g["volume"].sum()})
    daily.insert(0, "timestamp", pd.DatetimeIndex(daily.index).tz_localize(cal.tz))  # session dates
    daily = daily.reset_index(drop=True).assign(symbol=symbol)
    return daily, minute
