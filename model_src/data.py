"""OHLCV bars → day samples: sessions from the exchange's calendar, bars placed on them, tokens cut.

`session_sample` is what a replay calls: (daily file, minute file, exchange, date or the last complete
session, tz, the model's max_minutes / max_days, repair policy) → one day's tokens with the session's facts
and repair report. `build_samples` makes every session of the files into samples, for training. Both read
bars through model_src.bars, place them with model_src.sessions and cut tokens with model_src.features.

Every repair is counted in a RepairReport and logged on the "model_src.data" logger; anything that cannot
be repaired safely raises DataError with one line naming the file, the row or session, and the fix.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model_src.bars import PRICES, check_daily, check_minute_interval, clean_bars, read_bars
from model_src.calendars import (
    DEFAULT_EXCHANGE,
    INSIDE,
    SessionFacts,
    SessionTable,
    exchange_name,
    local_dates,
)
from model_src.errors import DataError
from model_src.features import N_DAY_FEATURES, day_feature_rows, minute_features
from model_src.repairs import RepairPolicy, RepairReport, SessionReport
from model_src.sessions import (
    PlacedSession,
    fill_session,
    judge_context,
    judge_fills,
    local_ns,
    place_bars,
    session_date,
)

__all__ = ["DaySample", "RepairPolicy", "RepairReport", "build_samples", "clean_bars", "daily_from_minutes",
           "read_bars", "session_sample", "stack_samples", "synthetic_samples"]

logger = logging.getLogger("model_src.data")

MIN_HISTORY_DAYS = 5  # sessions with fewer daily tokens of history than this are skipped
SUSPICIOUS_GAP = 0.2  # |log(first open / previous daily close)| above this is logged as a likely basis mismatch


@dataclass
class DaySample:
    """One session of one symbol: the model's inputs and the closes the labels are computed from."""

    symbol: str
    date: dt.date
    days: np.ndarray  # (D, F_day) float32, daily tokens of the D sessions before `date` (zero rows pad short history)
    minutes: np.ndarray  # (T, F_min) float32, minute tokens of this session, T = its trading minutes
    minute_close: np.ndarray  # (T,) float64, closes after repair
    prev_close: float  # close of the last daily bar before `date`: the previous session's
    facts: SessionFacts | None = None  # the calendar's session: exchange, open, close, break, length
    report: SessionReport | None = None  # what was filled and dropped in this session


@dataclass
class _Plan:
    """A daily and a minute frame of one symbol, cleaned and placed on one exchange's sessions."""

    table: SessionTable
    symbol: str
    source: str  # the minute frame's
    day_rows: np.ndarray  # (N, F_day) day_feature_rows of the daily bars
    d_dates: np.ndarray  # (N,) datetime64[D] session date of each daily bar
    d_close: np.ndarray  # (N,)
    bars: dict[str, np.ndarray]  # the minute frame's columns, (n,) each
    placed: list[PlacedSession]


def _exchange(exchange: str | None, *frames: pd.DataFrame) -> str:
    """The exchange named by the caller, else the one the frames were read for, else XNYS."""
    if exchange is not None:
        return exchange_name(exchange)
    named = sorted({f.attrs["exchange"] for f in frames if f.attrs.get("exchange")})
    if len(named) > 1:
        raise DataError(f"the bars were read for different exchanges {named}; fix: read both files for one exchange")
    return exchange_name(named[0] if named else DEFAULT_EXCHANGE)


def _plan(daily: pd.DataFrame, minute: pd.DataFrame, exchange: str | None, report: RepairReport,
          tz: str | None = None) -> _Plan:
    ex = _exchange(exchange, daily, minute)
    for frame in (daily, minute):  # what read_bars repaired in the files (re-cleaning below repairs nothing)
        report.merge(frame.attrs.get("repairs", {}))
    d_src, m_src = str(daily.attrs.get("source", "daily bars")), str(minute.attrs.get("source", "minute bars"))
    daily, d_rep = clean_bars(daily, source=d_src, tz=tz, exchange=ex)
    minute, m_rep = clean_bars(minute, source=m_src, tz=tz, exchange=ex)
    report.merge(d_rep.counts)
    report.merge(m_rep.counts)
    symbol = str(minute.attrs.get("symbol") or daily.attrs.get("symbol") or "UNKNOWN")

    check_daily(daily, d_src)
    d_utc = daily["timestamp"].dt.tz_convert("UTC")
    d_dates = local_dates(daily["timestamp"])
    if ((d_utc.dt.hour == 0) & (d_utc.dt.minute == 0)).all() and (d_dates != local_dates(d_utc)).all():
        # 00:00 UTC west of Greenwich is the evening before: each bar would land before its own session,
        # so the day tokens of session d would contain day d's close (look-ahead)
        raise DataError(f"{d_src}: daily bars are stamped at 00:00 UTC, which is the previous date in "
                        f"{daily['timestamp'].dt.tz}; fix: stamp them with their session date (e.g. write dates "
                        f"without a time)")
    dup_date = pd.Series(d_dates).duplicated(keep="last").to_numpy()
    if dup_date.any():  # two stamps on one date (e.g. 00:00 and 16:00): keep the later bar
        daily, d_dates = daily[~dup_date].reset_index(drop=True), d_dates[~dup_date]
        report.add("duplicate_daily_dates", int(dup_date.sum()), "kept the last bar of each date")

    check_minute_interval(minute, m_src)
    m_dates = local_dates(minute["timestamp"])
    table = SessionTable(ex, min(d_dates[0], m_dates[0]), max(d_dates[-1], m_dates[-1]))
    off = ~np.isin(d_dates, table.dates)
    if off.any():
        d = pd.Timestamp(d_dates[int(np.argmax(off))])
        raise DataError(f"{d_src}: {int(off.sum())} daily bar(s) on dates that are not {table.exchange} sessions, "
                        f"the first on {d:%Y-%m-%d} ({d:%A}); fix: check the exchange and the daily stamps (a "
                        f"session's bar is stamped with its date in {table.zone})")
    rows = day_feature_rows(*(daily[c].to_numpy() for c in (*PRICES, "volume")))
    placed = place_bars(minute, table, report, m_src)
    bars = {c: minute[c].to_numpy() for c in (*PRICES, "volume", "filled")}
    return _Plan(table, symbol, m_src, rows, d_dates, daily["close"].to_numpy(), bars, placed)


def _judge(plan: _Plan, s: PlacedSession, lookback: int, min_history: int, policy: RepairPolicy,
           report: RepairReport) -> int:
    """Decide whether session s becomes a sample; record the verdict in its report; k daily bars precede it."""
    kind, reason = judge_fills(s, policy)  # always: the report counts the fills even of a refused session
    k, c_kind, c_reason = judge_context(s, plan.table, plan.d_dates, lookback, min_history)
    kind, reason = (c_kind, c_reason) if c_kind else (kind, reason)
    report.sessions.append(s.report)
    if kind:
        s.report.refused = reason
        key = "sessions_skipped_short_history" if kind == "short_history" else f"sessions_refused_{kind}"
        report.add(key, 1, log=False)
        if kind != "short_history":
            logger.warning("%s: %s %s refused: %s", plan.source, plan.table.exchange, s.facts.date, reason)
    return k


def _cut(plan: _Plan, s: PlacedSession, k: int, lookback: int, report: RepairReport) -> DaySample:
    """The tokens of session s, whose daily context is the k daily bars before it."""
    history = plan.day_rows[1:k]  # row 0 has no previous close
    prev_close = float(plan.d_close[k - 1])
    a = fill_session({c: v[s.rows] for c, v in plan.bars.items()}, s, prev_close)
    report.add("missing_minutes_filled", s.report.filled, log=False)  # one summary line per build
    report.add("partial_sessions_kept", int(s.report.partial), log=False)
    if abs(np.log(a["open"][0] / prev_close)) > SUSPICIOUS_GAP:
        report.add("suspicious_gaps", 1, log=False)
        logger.warning("%s: %s opens %.1f%% away from the previous daily close %g; are the daily and minute "
                       "bars on the same price basis (both split-adjusted or both raw)?", plan.source, s.facts.date,
                       100 * (a["open"][0] / prev_close - 1), prev_close)
    days = np.zeros((lookback, N_DAY_FEATURES), np.float32)
    take = history[-lookback:]
    days[lookback - len(take):] = take
    feats = minute_features(a["open"], a["high"], a["low"], a["close"], a["volume"], a["minute"], a["filled"],
                            prev_close, session_minutes=s.facts.minutes)
    return DaySample(plan.symbol, s.facts.date, days, feats.astype(np.float32), a["close"], prev_close,
                     s.facts, s.report)


def _check_length(sessions: list[PlacedSession], max_minutes: int | None) -> None:
    """A session longer than the model's minute axis is refused, never truncated or shifted."""
    longest = max(sessions, key=lambda s: s.facts.minutes, default=None)
    if max_minutes is not None and longest is not None and longest.facts.minutes > max_minutes:
        f = longest.facts
        raise DataError(f"{f.exchange} sessions have {f.minutes} minutes ({f.date} {f.open:%H:%M}–{f.close:%H:%M} "
                        f"{f.open.tzinfo}); the model takes {max_minutes}: fix: train/export a model with "
                        f"max_minutes={f.minutes}")


def build_samples(daily: pd.DataFrame, minute: pd.DataFrame, lookback: int = 64,
                  min_history: int = MIN_HISTORY_DAYS, report: RepairReport | None = None,
                  exchange: str | None = None, max_minutes: int | None = None,
                  policy: RepairPolicy = RepairPolicy()) -> list[DaySample]:
    """Day samples for every session of `minute` that the policy and the daily context allow.

    Sessions come from the exchange's calendar (default: the exchange the frames were read for, else XNYS).
    Day tokens of session d come from daily bars strictly before d (the last `lookback`, left-padded with
    zero rows when history is shorter), which must be the calendar's sessions right before d; minute tokens
    from that session's bars, one per trading minute. With `max_minutes`, a session longer than that is an
    error. Pass a RepairReport to collect the counts and every session's report, refused ones included.
    """
    assert lookback >= 1 and min_history >= 1, "lookback and min_history must be >= 1"
    report = report if report is not None else RepairReport(str(minute.attrs.get("source", "minute bars")))
    plan = _plan(daily, minute, exchange, report)
    _check_length(plan.placed, max_minutes)
    samples = []
    for s in plan.placed:
        k = _judge(plan, s, lookback, min_history, policy, report)
        if not s.report.refused:
            samples.append(_cut(plan, s, k, lookback, report))
    logger.info("%s: %d day samples of %s on %s; repairs %s", report.source, len(samples), plan.symbol,
                plan.table.exchange, report.as_dict())
    return samples


def session_sample(daily: str | Path | pd.DataFrame, minute: str | Path | pd.DataFrame,
                   exchange: str = DEFAULT_EXCHANGE, date: str | dt.date | None = None, tz: str | None = None,
                   max_minutes: int = 390, max_days: int = 64, policy: RepairPolicy = RepairPolicy(),
                   min_history: int = MIN_HISTORY_DAYS, report: RepairReport | None = None) -> DaySample:
    """The tokens of one session for a model with `max_minutes` / `max_days`: the session on `date`, or the
    last complete session of the minute file (bars reaching the close; a partial last day is passed over).

    `daily` and `minute` are bar files (read with `tz` for naive timestamps) or frames. The sample's `facts`
    and `report` say which session it is and what was repaired; `report` (if given) also collects the
    file-level counts. Every reason to refuse is a one-line DataError that says what to fix or configure.
    """
    read = lambda x: read_bars(x, tz=tz, exchange=exchange) if isinstance(x, (str, Path)) else x  # noqa: E731
    daily, minute = read(daily), read(minute)
    report = report if report is not None else RepairReport(str(minute.attrs.get("source", "minute bars")))
    plan = _plan(daily, minute, exchange, report, tz=tz)
    if date is not None:
        s = session_date(date, plan.table, plan.placed, plan.source)
    else:
        complete = []
        for s in plan.placed:
            judge_fills(s, policy)
            if not s.report.partial and s.report.bars:
                complete.append(s)
        if not complete:
            last = plan.placed[-1]
            _, reason = judge_fills(last, RepairPolicy(policy.max_filled))
            raise DataError(f"{plan.source}: no complete {plan.table.exchange} session; the last, {last.facts.date}: "
                            f"{reason}")
        s = complete[-1]
        for later in plan.placed[plan.placed.index(s) + 1:]:  # passed over: said in the report, not hidden
            later.report.refused = later.report.refused or "partial session: passed over for the last complete one"
            report.sessions.append(later.report)
    _check_length([s], max_minutes)
    k = _judge(plan, s, max_days, min_history, policy, report)
    if s.report.refused:
        raise DataError(f"{plan.table.exchange} {s.facts.date}: {s.report.refused}")
    sample = _cut(plan, s, k, max_days, report)
    logger.info("%s: %s; %s", plan.source, s.facts.describe(), s.report.line())
    return sample


def daily_from_minutes(minute: pd.DataFrame, exchange: str | None = None) -> pd.DataFrame:
    """Daily bars aggregated from the minute bars inside each session (for data sets without a daily file)."""
    ex = _exchange(exchange, minute)
    minute, _ = clean_bars(minute, source=minute.attrs.get("source", "minute bars"), exchange=ex)
    t_ns, dates = local_ns(minute)
    table = SessionTable(ex, dates[0], dates[-1])
    session, _, where = table.locate(t_ns, dates)
    inside = where == INSIDE
    g = minute[inside].groupby(session[inside], sort=True)
    daily = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(), "low": g["low"].min(),
                          "close": g["close"].last(), "volume": g["volume"].sum()})
    stamps = pd.DatetimeIndex(pd.to_datetime(table.dates[daily.index.to_numpy()])).tz_localize(table.zone)
    daily.insert(0, "timestamp", stamps)  # midnight of each session date in the exchange's zone
    daily = daily.reset_index(drop=True)
    daily.attrs.update(source=f"daily bars from {minute.attrs.get('source')}", symbol=minute.attrs.get("symbol"),
                       exchange=ex)
    return daily


def synthetic_samples(n_days: int, seed: int = 0, lookback: int = 64) -> list[DaySample]:
    """Day samples of the seeded synthetic market; the first MIN_HISTORY_DAYS + 1 sessions have too little
    history and are skipped, so n_days sessions give n_days - 6 samples. The market trades every weekday (no
    holidays): its frames name that calendar, which build_samples reads from them."""
    from model_src.synthetic import synthetic_market

    return build_samples(*synthetic_market(n_days, seed=seed), lookback=lookback)


def stack_samples(samples: list[DaySample], crop_minutes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples → days (B, D, F_day), minutes (B, T, F_min) float32 tensors.

    All sessions must have the same number of minutes; with half days in the list, pass crop_minutes=N
    to keep the first N minutes of every session (N ≤ the shortest session).
    """
    if not samples:
        raise DataError("stack_samples: no samples; fix: build samples from sessions with enough history")
    day_shapes = sorted({s.days.shape for s in samples})
    if len(day_shapes) > 1:
        raise DataError(f"stack_samples: day tokens have shapes {day_shapes}; fix: build all samples with one lookback")
    lengths = sorted({s.minutes.shape[0] for s in samples})
    if crop_minutes is not None:
        if not 1 <= crop_minutes <= lengths[0]:
            raise DataError(f"stack_samples: crop_minutes={crop_minutes} but the shortest session has {lengths[0]} "
                            f"minutes; fix: crop_minutes between 1 and {lengths[0]}")
        lengths = [crop_minutes]
    elif len(lengths) > 1:
        raise DataError(f"stack_samples: sessions have {lengths[0]}..{lengths[-1]} minutes (half days?); fix: "
                        f"stack_samples(samples, crop_minutes={lengths[0]}) or filter samples by length")
    T = lengths[0]
    days = torch.from_numpy(np.stack([s.days for s in samples]).astype(np.float32))  # (B, D, F_day)
    minutes = torch.from_numpy(np.stack([s.minutes[:T] for s in samples]).astype(np.float32))  # (B, T, F_min)
    return days, minutes
