"""Minute bars on the calendar's sessions: which bars belong to which session and minute, what the repair
policy fills or refuses, and whether the daily bars are a current, gap-free context for the session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model_src.calendars import (
    AFTER_CLOSE,
    BEFORE_OPEN,
    IN_BREAK,
    INSIDE,
    NO_SESSION,
    SessionFacts,
    SessionTable,
    local_dates,
)
from model_src.errors import DataError
from model_src.repairs import RepairPolicy, RepairReport, SessionReport

FIX_OPT_IN = "or opt in with RepairPolicy(allow_over_limit=True)"


@dataclass
class PlacedSession:
    """The bars of one session of the minute file and what the policy decided about them."""

    index: int  # row of the session in the SessionTable
    facts: SessionFacts
    report: SessionReport
    rows: np.ndarray  # (n,) positions in the minute frame of the bars inside the session, time order
    minute: np.ndarray  # (n,) their trading minute, 0 .. facts.minutes - 1


def local_ns(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ns UTC, datetime64[D] date in the frame's zone) of every bar of a clean frame."""
    ts = frame["timestamp"]
    return ts.dt.as_unit("ns").astype("int64").to_numpy(), local_dates(ts)


def place_bars(minute: pd.DataFrame, table: SessionTable, report: RepairReport, source: str) -> list[PlacedSession]:
    """Put each clean minute bar on its session and trading minute; bars outside the sessions' hours are
    dropped and counted per session. Bars on a date the exchange does not trade are an error: the
    exchange or the time zone is wrong, and no rule could say which session they belong to."""
    t_ns, dates = local_ns(minute)
    session, m, where = table.locate(t_ns, dates)
    off = where == NO_SESSION
    if off.any():
        i = int(np.argmax(off))
        first = minute["timestamp"].iloc[i]
        raise DataError(f"{source}: {int(off.sum())} bar(s) on dates that are not {table.exchange} sessions, the first "
                        f"at {first} ({first:%A}); fix: check the exchange and the time zone of the timestamps (or "
                        f"drop those dates)")
    opens_with_bar = np.unique(session[(where == INSIDE) & (m == 0)])
    p = np.maximum(session, 0)
    at_close = (((where == AFTER_CLOSE) & (t_ns == table.close[p]))
                | ((where == IN_BREAK) & (t_ns == table.break_start[p])))  # the close, or the break's start
    if len(opens_with_bar) == 0 and at_close.any():
        i = int(np.argmax(at_close))
        raise DataError(f"{source}: no session has a bar at its open, and a bar is stamped at the close "
                        f"({minute['timestamp'].iloc[i]}): the bars look stamped with their closing minute; fix: "
                        f"subtract one minute from the timestamps (a bar is stamped with its opening minute)")
    assert (np.diff(session) >= 0).all(), "bars are sorted, so their sessions are too"
    ids, starts = np.unique(session, return_index=True)
    placed = []
    for s, a, b in zip(ids, starts, [*starts[1:], len(session)], strict=True):
        w = where[a:b]
        facts = table.facts(int(s))
        rows = a + np.flatnonzero(w == INSIDE)
        rep = SessionReport(table.exchange, facts.date, facts.minutes, bars=len(rows),
                            dropped_before_open=int((w == BEFORE_OPEN).sum()),
                            dropped_in_break=int((w == IN_BREAK).sum()),
                            dropped_after_close=int((w == AFTER_CLOSE).sum()))
        placed.append(PlacedSession(int(s), facts, rep, rows, m[rows]))
    report.add("bars_before_open_dropped", int((where == BEFORE_OPEN).sum()), "before the session's open")
    report.add("bars_in_break_dropped", int((where == IN_BREAK).sum()), "in the session's lunch break")
    report.add("bars_at_or_after_close_dropped", int((where == AFTER_CLOSE).sum()), "at or after the session's close")
    return placed


def judge_fills(s: PlacedSession, policy: RepairPolicy) -> tuple[str, str]:
    """Count the minutes the session's bars leave empty and apply the policy (docs/features.md, "Repair
    policy"): gaps at the open, inside and at the close are filled within the limit; over it the session
    is refused unless the caller opted in; bars that stop before the close by more than the limit make
    a partial session, which is never padded to the close. Returns (kind, reason) of a refusal, or ("", "")."""
    r, f, N = s.report, s.facts, s.facts.minutes
    if len(s.minute) == 0:
        return "no_bars", (f"no bars between the open {f.open:%H:%M} and the close {f.close:%H:%M} "
                           f"({r.dropped} outside); fix: give the session's regular-hours bars")
    first, last = int(s.minute[0]), int(s.minute[-1])
    limit = policy.limit(N)
    trailing = N - 1 - last
    r.filled_at_open, r.filled_inside = first, (last - first + 1) - len(s.minute)
    r.partial = trailing > limit
    r.filled_at_close = 0 if r.partial else trailing
    if policy.allow_over_limit:
        return "", ""
    if r.partial:
        return "partial", (f"partial session: the bars end at {f.clock(last)}, the close is {f.close:%H:%M} "
                           f"({trailing} minutes without bars, the limit is {limit}); fix: replay a complete "
                           f"session, {FIX_OPT_IN} to keep its {last + 1} minutes")
    if r.filled > limit:
        parts = [f"starts {first} minutes late, first bar {f.clock(first)}" if first else "",
                 f"{r.filled_inside} missing inside" if r.filled_inside else "",
                 f"{trailing} missing at the close" if trailing else ""]
        return "over_fill_limit", (f"{r.filled} of {N} minutes would be invented ({'; '.join(p for p in parts if p)}"
                                   f"), over the limit of {limit} ({policy.max_filled:.0%}); fix: use complete "
                                   f"one-minute bars, {FIX_OPT_IN} or a higher max_filled")
    return "", ""


def fill_session(bars: dict[str, np.ndarray], s: PlacedSession, prev_close: float) -> dict[str, np.ndarray]:
    """One session's bars → gap-free arrays on the minute axis, from the open to the close (to the last bar
    of a partial session). A missing minute becomes a flat bar at the last close before it (the previous
    daily close before the first bar), volume 0, filled=1: only the past is used, so no look-ahead.
    `bars` holds the session's columns (n,) each: open, high, low, close, volume, filled."""
    m = s.minute  # (n,) trading minutes, sorted and unique
    T = int(m[-1]) + 1 if s.report.partial else s.facts.minutes
    present = np.zeros(T, bool)
    present[m] = True
    # index of the last present bar at or before each minute (-1: none yet)
    last = np.maximum.accumulate(np.where(present, np.arange(T), -1))
    close_at = np.full(T, np.nan)
    close_at[m] = bars["close"]
    fill = np.where(last >= 0, close_at[np.maximum(last, 0)], prev_close)
    out = {"close": fill.copy()}
    for c in ("open", "high", "low"):
        arr = fill.copy()
        arr[m] = bars[c]
        out[c] = arr
    out["close"][m] = bars["close"]
    out["volume"] = np.zeros(T)
    out["volume"][m] = bars["volume"]
    out["filled"] = np.ones(T)
    out["filled"][m] = bars["filled"]
    out["minute"] = np.arange(T)
    return out


def judge_context(s: PlacedSession, table: SessionTable, d_dates: np.ndarray, lookback: int,
                  min_history: int) -> tuple[int, str, str]:
    """(k, kind, reason): k daily bars lie strictly before the session; kind and reason are "" when the last
    min(lookback, k-1) tokens and the previous close come from the sessions right before it, else why not.

    Day token j needs bars j-1 and j, so the last n tokens use the n+1 daily bars before the session: they
    must be the n+1 sessions of the calendar before it, the last being the previous session (current)."""
    ex = table.exchange
    k = int(np.searchsorted(d_dates, table.dates[s.index], side="left"))
    if k - 1 < min_history:
        return k, "short_history", (f"{max(k - 1, 0)} day tokens of history before it, fewer than "
                                    f"min_history={min_history}; fix: give daily bars from earlier sessions")
    n = min(lookback, k - 1)
    need = table.dates[max(s.index - n - 1, 0):s.index]
    have = d_dates[k - n - 1:k]
    if len(need) and have[-1] != need[-1]:
        return k, "stale_daily", (f"the daily bars end on {have[-1]}, and it needs the daily bar of {need[-1]}, "
                                  f"the previous {ex} session; fix: extend the daily file to {need[-1]}")
    missing = sorted(set(need) - set(have))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        return k, "daily_gap", (f"the daily bars lack the {ex} session {missing[0]}{more} inside its {n}-day "
                                f"look-back; fix: add the missing daily bars")
    return k, "", ""


def session_date(date: str | dt.date, table: SessionTable, placed: list[PlacedSession],
                 source: str) -> PlacedSession:
    """The placed session on `date` (YYYY-MM-DD), or a DataError saying why there is none."""
    try:
        day = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date))
    except ValueError:
        raise DataError(f"date {date!r} is not YYYY-MM-DD; fix: e.g. --date 2024-01-02") from None
    hit = [s for s in placed if s.facts.date == day]
    if hit:
        return hit[0]
    span = f"{placed[0].facts.date}..{placed[-1].facts.date}" if placed else "no session"
    if table.index(day) is None:
        raise DataError(f"{day} ({day:%A}) is not a {table.exchange} session; fix: pick a session the minute "
                        f"file covers ({span})")
    raise DataError(f"{source}: no bars on {day}; fix: pick a session the file covers ({span})")
