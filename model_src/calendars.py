"""Exchange sessions from `exchange_calendars`: which dates trade, when each session opens and closes, its
lunch break, early closes, and where a bar falls on the session's minute axis.

The minute axis counts *trading* minutes from the open: minute 0 is the bar stamped at the open, and a lunch
break is not on the axis (XHKG: 09:30–12:00 is minutes 0–149, 13:00–16:00 is minutes 150–329). A session's
length is its number of trading minutes: 390 for a regular XNYS day, 210 for its half days, 510 for XLON,
330 for XHKG. Exchanges are named by ISO MIC (XNYS, XLON, XHKG, ...; aliases such as NYSE resolve).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
import warnings
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import numpy as np
import pandas as pd

from model_src.errors import DataError

DEFAULT_EXCHANGE = "XNYS"
WEEKDAYS_NY = "WEEKDAYS-NY"  # every weekday 09:30–16:00 New York, no holidays: the synthetic market's calendar
NS_PER_MINUTE = 60 * 10**9

# where a timestamp falls relative to the sessions (SessionTable.locate)
INSIDE, BEFORE_OPEN, IN_BREAK, AFTER_CLOSE, NO_SESSION = range(5)


class _WeekdaysNewYork(xc.ExchangeCalendar):
    """A regular New York session on every weekday: model_src.synthetic's market has no holidays."""

    name = WEEKDAYS_NY
    tz = ZoneInfo("America/New_York")
    open_times = ((None, dt.time(9, 30)),)
    close_times = ((None, dt.time(16)),)


def exchange_name(exchange: str) -> str:
    """The canonical MIC of `exchange` (aliases resolved), or a DataError naming the known ones."""
    if exchange == WEEKDAYS_NY:
        return exchange
    try:
        return xc.resolve_alias(str(exchange).strip().upper())
    except xc.errors.InvalidCalendarName:
        pass
    names = ", ".join(n for n in xc.get_calendar_names(include_aliases=False) if n[0] == "X")
    raise DataError(f"unknown exchange {exchange!r}; fix: name it by ISO MIC, one of {names}")


_SILENCING = threading.Lock()  # catch_warnings swaps process-wide state: overlapping uses would undo each other


@contextlib.contextmanager
def calendar_deprecations_silenced():
    """exchange_calendars 4.x reads tz-aware Series through `.values`, which pandas 3.1 deprecates: its warning,
    about its code, would reach every caller (stacklevel 1, so no module filter can name it). Wrap its calls.
    One at a time: threads that build calendars at once (the Triton load bench's clients) would otherwise
    restore each other's filters mid-build."""
    with _SILENCING, warnings.catch_warnings():
        warnings.simplefilter("ignore", category=getattr(pd.errors, "Pandas4Warning", FutureWarning))
        yield


@functools.lru_cache(maxsize=16)
def _calendar(exchange: str, first_year: int, last_year: int) -> xc.ExchangeCalendar:
    start, end = f"{first_year}-01-01", f"{last_year}-12-31"
    try:
        with calendar_deprecations_silenced():
            if exchange == WEEKDAYS_NY:
                return _WeekdaysNewYork(start=start, end=end)
            return xc.get_calendar(exchange, start=start, end=end)
    except (ValueError, xc.errors.CalendarError) as e:  # dates outside what the calendar knows
        raise DataError(f"{exchange} calendar cannot cover {first_year}–{last_year} "
                        f"({str(e).splitlines()[0]}); fix: use bars inside the calendar's range") from None


def exchange_zone(exchange: str) -> str:
    """The IANA time zone of an exchange, e.g. Europe/London for XLON."""
    name = exchange_name(exchange)
    return str(_calendar(name, 2020, 2020).tz)


@dataclass(frozen=True)
class SessionFacts:
    """One session of one exchange, from its calendar. Times are in the exchange's zone."""

    exchange: str
    date: dt.date
    open: pd.Timestamp
    close: pd.Timestamp
    break_start: pd.Timestamp | None
    break_end: pd.Timestamp | None
    minutes: int  # trading minutes, the lunch break excluded: the session's length on the model's minute axis
    early_close: bool

    def clock(self, minute: int) -> str:
        """Local wall time (HH:MM) of trading minute `minute`; `minutes` gives the close."""
        t = self.open + pd.Timedelta(minutes=int(minute))
        if self.break_start is not None and t >= self.break_start:
            t += self.break_end - self.break_start
        return t.strftime("%H:%M")

    def describe(self) -> str:
        lunch = f", break {self.break_start:%H:%M}–{self.break_end:%H:%M}" if self.break_start is not None else ""
        early = ", early close" if self.early_close else ""
        return (f"{self.exchange} {self.date} {self.open:%H:%M}–{self.close:%H:%M} {self.open.tzinfo}{lunch}, "
                f"{self.minutes} minutes{early}")


def local_dates(ts: pd.Series) -> np.ndarray:
    """(n,) datetime64[D]: the date of each aware timestamp in its own zone (fast: no datetime.date objects)."""
    return ts.dt.tz_localize(None).to_numpy().astype("datetime64[D]")


def _ns(times) -> np.ndarray:
    """Timestamps (any unit, aware) → int64 nanoseconds since the epoch (UTC); NaT → -1."""
    idx = pd.DatetimeIndex(times).as_unit("ns")
    return np.where(idx.isna(), -1, idx.asi8)


class SessionTable:
    """The sessions of `exchange` from `first` to `last` (dates), as arrays for vectorized look-ups."""

    def __init__(self, exchange: str, first, last):
        self.exchange = exchange_name(exchange)
        first, last = pd.Timestamp(first), pd.Timestamp(last)
        cal = _calendar(self.exchange, first.year - 1, last.year + 1)  # a year either side: look-back, next day
        self.zone = str(cal.tz)
        self.dates = cal.sessions.values.astype("datetime64[D]")  # (S,) session dates
        self.open = _ns(cal.opens)  # (S,) int64 ns UTC
        self.close = _ns(cal.closes)
        self.break_start = _ns(cal.break_starts)  # -1 where the session has no break
        self.break_end = _ns(cal.break_ends)
        self.early = np.isin(self.dates, cal.early_closes.values.astype("datetime64[D]"))  # (S,) bool
        brk = np.where(self.break_start >= 0, self.break_end - self.break_start, 0)
        self.minutes = ((self.close - self.open - brk) // NS_PER_MINUTE).astype(np.int64)  # (S,)

    def index(self, date) -> int | None:
        date = np.datetime64(date, "D")
        i = int(np.searchsorted(self.dates, date))
        return i if i < len(self.dates) and self.dates[i] == date else None

    def facts(self, i: int) -> SessionFacts:
        local = lambda ns: pd.Timestamp(int(ns), tz="UTC").tz_convert(self.zone)  # noqa: E731
        has_break = self.break_start[i] >= 0
        return SessionFacts(self.exchange, self.dates[i].astype(object), local(self.open[i]), local(self.close[i]),
                            local(self.break_start[i]) if has_break else None,
                            local(self.break_end[i]) if has_break else None,
                            int(self.minutes[i]), bool(self.early[i]))

    def locate(self, t_ns: np.ndarray, local_dates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bars at `t_ns` (int64 ns UTC, opening minute) with their dates (datetime64[D]) in the exchange zone →
        (session index, trading minute, where) per bar. `where` is INSIDE, BEFORE_OPEN / AFTER_CLOSE (of the
        session on that date), IN_BREAK, or NO_SESSION (the date is not a session); minute is -1 outside."""
        prev = np.searchsorted(self.open, t_ns, side="right") - 1  # the last session opened at or before t
        on_date = np.searchsorted(self.dates, local_dates)  # the session on the bar's own date, if any
        on_date_ok = (on_date < len(self.dates)) & (self.dates[np.minimum(on_date, len(self.dates) - 1)]
                                                     == local_dates)
        p = np.maximum(prev, 0)
        inside = (prev >= 0) & (t_ns < self.close[p])
        has_break = self.break_start[p] >= 0
        in_break = inside & has_break & (t_ns >= self.break_start[p]) & (t_ns < self.break_end[p])
        after_break = inside & has_break & (t_ns >= self.break_end[p])
        minute = (t_ns - self.open[p]) // NS_PER_MINUTE
        minute = minute - np.where(after_break, (self.break_end[p] - self.break_start[p]) // NS_PER_MINUTE, 0)
        session = np.where(inside, p, np.where(on_date_ok, on_date, -1))
        where = np.full(len(t_ns), NO_SESSION)
        outside = ~inside & on_date_ok
        where[outside & (t_ns < self.open[np.minimum(on_date, len(self.dates) - 1)])] = BEFORE_OPEN
        where[outside & (t_ns >= self.close[np.minimum(on_date, len(self.dates) - 1)])] = AFTER_CLOSE
        where[in_break] = IN_BREAK
        where[inside & ~in_break] = INSIDE
        return session, np.where(where == INSIDE, minute, -1), where
