"""Sessions from exchange_calendars: lengths, early closes, lunch breaks, DST, and where a bar falls."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from model_src.calendars import (
    AFTER_CLOSE,
    BEFORE_OPEN,
    IN_BREAK,
    INSIDE,
    NO_SESSION,
    SessionTable,
    exchange_name,
    exchange_zone,
)
from model_src.errors import DataError


def _facts(exchange, date):
    day = dt.date.fromisoformat(date)
    table = SessionTable(exchange, day, day)
    return table.facts(table.index(day))


@pytest.mark.parametrize(("exchange", "date", "minutes", "hours", "early"), [
    ("XNYS", "2024-11-27", 390, "09:30–16:00", False),
    ("XNYS", "2024-11-29", 210, "09:30–13:00", True),  # the day after Thanksgiving
    ("XLON", "2024-12-20", 510, "08:00–16:30", False),
    ("XLON", "2024-07-01", 510, "08:00–16:30", False),  # British Summer Time: the same local hours
    ("XLON", "2024-12-24", 270, "08:00–12:30", True),
    ("XHKG", "2024-12-20", 330, "09:30–16:00", False),  # 150 + 180: the lunch hour is not on the axis
    ("XHKG", "2024-12-24", 150, "09:30–12:00", True),  # a half day has no break
])
def test_session_lengths_come_from_the_calendar(exchange, date, minutes, hours, early):
    f = _facts(exchange, date)
    assert f.minutes == minutes and f"{f.open:%H:%M}–{f.close:%H:%M}" == hours and f.early_close == early
    assert f.clock(minutes) == f"{f.close:%H:%M}" and f.clock(0) == f"{f.open:%H:%M}"


def test_a_lunch_break_is_not_on_the_minute_axis():
    f = _facts("XHKG", "2024-12-20")
    assert (f.break_start.strftime("%H:%M"), f.break_end.strftime("%H:%M")) == ("12:00", "13:00")
    assert f.clock(149) == "11:59" and f.clock(150) == "13:00" and f.clock(329) == "15:59"
    assert "break 12:00–13:00, 330 minutes" in f.describe()


def test_bars_are_located_on_sessions_and_trading_minutes():
    table = SessionTable("XHKG", dt.date(2024, 12, 20), dt.date(2024, 12, 23))
    local = pd.DatetimeIndex(["2024-12-20 09:00", "2024-12-20 09:30", "2024-12-20 11:59", "2024-12-20 12:30",
                              "2024-12-20 13:00", "2024-12-20 15:59", "2024-12-20 16:00", "2024-12-21 10:00",
                              "2024-12-23 09:31"]).tz_localize("Asia/Hong_Kong")
    session, minute, where = table.locate(local.as_unit("ns").asi8, np.asarray(local.date))
    assert where.tolist() == [BEFORE_OPEN, INSIDE, INSIDE, IN_BREAK, INSIDE, INSIDE, AFTER_CLOSE, NO_SESSION, INSIDE]
    assert minute.tolist() == [-1, 0, 149, -1, 150, 329, -1, -1, 1]
    assert [str(table.dates[i]) for i in session[[0, 6, 8]]] == ["2024-12-20", "2024-12-20", "2024-12-23"]


def test_daylight_saving_moves_utc_not_the_session():
    table = SessionTable("XNYS", dt.date(2024, 3, 8), dt.date(2024, 3, 11))  # US clocks change on 2024-03-10
    opens = [table.facts(table.index(dt.date(2024, 3, d))).open for d in (8, 11)]
    assert [o.strftime("%H:%M") for o in opens] == ["09:30", "09:30"]
    assert [o.tz_convert("UTC").strftime("%H:%M") for o in opens] == ["14:30", "13:30"]


def test_exchanges_are_named_by_mic():
    assert exchange_name("xlon") == "XLON" and exchange_name("NYSE") == "XNYS"  # case and aliases
    assert exchange_zone("XHKG") == "Asia/Hong_Kong"
    with pytest.raises(DataError, match=r"unknown exchange 'LONDON'; fix: name it by ISO MIC, one of .*XLON"):
        exchange_name("LONDON")
    with pytest.raises(DataError, match=r"XHKG calendar cannot cover 1949–1951 .*fix: use bars inside"):
        SessionTable("XHKG", dt.date(1950, 1, 3), dt.date(1950, 1, 4))
