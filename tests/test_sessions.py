"""Sessions on three calendars (XNYS, XLON, XHKG): each repair of the policy and each refusal, the replay
API (session_sample), and a model sized for London reading a London session."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import torch
from calendar_bars import calendar_market

from model_src import HRM, tiny_config
from model_src.data import RepairPolicy, RepairReport, build_samples, session_sample
from model_src.decisions import halting_minutes
from model_src.errors import DataError
from model_src.features import MINUTE_FEATURES

FILLED = MINUTE_FEATURES.index("filled")
TOD_SIN, TOD_COS = MINUTE_FEATURES.index("tod_sin"), MINUTE_FEATURES.index("tod_cos")
OPT_IN = RepairPolicy(allow_over_limit=True)
LENGTH = {"XNYS": 390, "XLON": 510, "XHKG": 330}


@pytest.fixture(scope="module")
def markets():
    """Six weeks of bars per exchange, ending on a regular full session (2024-11-08 is a Friday everywhere)."""
    return {ex: calendar_market(ex, "2024-10-02", "2024-11-08", seed=i) for i, ex in enumerate(LENGTH)}


def _last(minute):
    """Row mask of the file's last session."""
    dates = minute["timestamp"].dt.date
    return (dates == dates.iloc[-1]).to_numpy()


def _sample(market, exchange, **kw):
    kw = {"max_minutes": 600, "max_days": 16, **kw}
    return session_sample(*market, exchange=exchange, **kw)


@pytest.mark.parametrize("exchange", list(LENGTH))
def test_each_calendar_replays_its_sessions_at_their_own_length(markets, exchange):
    daily, minute = markets[exchange]
    s = _sample(markets[exchange], exchange)
    N = LENGTH[exchange]
    bars = minute[_last(minute)]
    assert s.facts.exchange == exchange and s.facts.minutes == N and str(s.date) == "2024-11-08"
    assert s.minutes.shape == (N, 11) and s.minutes[:, FILLED].sum() == 0 and s.report.filled == 0
    assert np.array_equal(s.minute_close, bars["close"].to_numpy())  # every bar, in order, nothing invented
    assert s.prev_close == daily["close"].iloc[-2]
    angle = 2 * np.pi * np.arange(N) / N  # the share of the session elapsed
    np.testing.assert_allclose(s.minutes[:, TOD_SIN], np.sin(angle), atol=1e-6)
    np.testing.assert_allclose(s.minutes[:, TOD_COS], np.cos(angle), atol=1e-6)


def test_the_hong_kong_lunch_break_is_not_filled(markets):
    daily, minute = markets["XHKG"]
    s = _sample(markets["XHKG"], "XHKG")
    afternoon = minute[_last(minute) & (minute["timestamp"].dt.hour >= 13).to_numpy()]
    assert s.minute_close[150] == afternoon["close"].iloc[0]  # minute 150 is the 13:00 bar, not 12:00 + fill
    lunch = minute[_last(minute)].iloc[:60].assign(
        timestamp=pd.date_range("2024-11-08 12:00", periods=60, freq="min", tz="Asia/Hong_Kong"))
    with_lunch = _sample((daily, pd.concat([minute, lunch]).sort_values("timestamp")), "XHKG")
    assert with_lunch.report.dropped_in_break == 60 and with_lunch.report.filled == 0
    assert np.array_equal(with_lunch.minutes, s.minutes)


def test_bars_outside_the_session_are_dropped_and_counted(markets):
    daily, minute = markets["XNYS"]
    day = minute[_last(minute)]
    pre = day.iloc[:30].assign(timestamp=day["timestamp"].iloc[:30] - pd.Timedelta(hours=1))  # 08:30–08:59
    post = day.iloc[:45].assign(timestamp=day["timestamp"].iloc[:45] + pd.Timedelta(hours=6, minutes=30))  # 16:00–
    s = _sample((daily, pd.concat([pre, minute, post])), "XNYS")
    assert (s.report.dropped_before_open, s.report.dropped_after_close) == (30, 45)
    assert np.array_equal(s.minutes, _sample(markets["XNYS"], "XNYS").minutes)


def test_a_session_longer_than_the_model_is_refused_in_one_line(markets):
    with pytest.raises(DataError, match=r"^XLON sessions have 510 minutes \(2024-11-08 08:00–16:30 Europe/London\); "
                                        r"the model takes 390: fix: train/export a model with max_minutes=510$"):
        session_sample(*markets["XLON"], exchange="XLON", max_minutes=390)
    with pytest.raises(DataError, match="XLON sessions have 510 minutes"):
        build_samples(*markets["XLON"], exchange="XLON", max_minutes=390)
    assert session_sample(*markets["XHKG"], exchange="XHKG", max_minutes=390, max_days=16).minutes.shape[0] == 330


def test_a_model_sized_for_london_reads_a_london_session():
    """HRMConfig.max_minutes sizes the minute axis: a tiny model with 510 positions takes the whole session
    and its ACT rule halts, at the latest, on the close (minute 509, the 16:29 bar)."""
    market = calendar_market("XLON", "2024-10-02", "2024-11-08", seed=5)
    s = session_sample(*market, exchange="XLON", max_minutes=510, max_days=16)
    torch.manual_seed(0)
    model = HRM(tiny_config(max_minutes=510, max_days=16)).eval()
    with torch.no_grad():
        logits, quantity, q, _, _ = model(torch.from_numpy(s.days[None]), torch.from_numpy(s.minutes[None]))
    assert logits.shape == (1, 510, 3) and torch.isfinite(logits).all() and torch.isfinite(q).all()
    halt = halting_minutes(q.numpy(), s.facts.minutes)
    assert 0 <= halt[0] <= 509 and s.facts.clock(509) == "16:29"


@pytest.mark.parametrize(("drop", "kept"), [(19, True), (20, False)])  # the limit of a 390-minute session is 19
def test_missing_minutes_inside_are_filled_up_to_the_limit(markets, drop, kept):
    daily, minute = markets["XNYS"]
    rows = np.flatnonzero(_last(minute))[100:100 + drop]
    report = RepairReport("test")
    samples = build_samples(daily, minute.drop(index=minute.index[rows]), lookback=16, report=report)
    last = report.sessions[-1]
    assert last.filled_inside == drop and (samples[-1].date == last.date) == kept
    if kept:
        assert samples[-1].minutes[100:100 + drop, FILLED].all() and samples[-1].minutes[:, FILLED].sum() == drop
        assert np.all(samples[-1].minute_close[100:100 + drop] == minute["close"].iloc[rows[0] - 1])
    else:
        assert last.refused.startswith("20 of 390 minutes would be invented (20 missing inside), over the limit of "
                                       "19 (5%); fix: use complete one-minute bars, or opt in")
        assert report.as_dict()["sessions_refused_over_fill_limit"] == 1
        opted = build_samples(daily, minute.drop(index=minute.index[rows]), lookback=16, policy=OPT_IN)
        assert opted[-1].report.filled == 20 and opted[-1].minutes.shape == (390, 11)


def test_a_session_that_starts_late_is_refused_not_padded(markets):
    daily, minute = markets["XNYS"]
    late = minute.drop(index=minute.index[np.flatnonzero(_last(minute))[:150]])  # the first bar at 12:00
    with pytest.raises(DataError, match=r"^XNYS 2024-11-08: 150 of 390 minutes would be invented \(starts 150 minutes "
                                        r"late, first bar 12:00\), over the limit of 19"):
        session_sample(daily, late, date="2024-11-08", max_days=16)
    s = session_sample(daily, late, date="2024-11-08", max_days=16, policy=OPT_IN)  # the caller's call: visible
    assert s.report.filled_at_open == 150 and s.minutes[:150, FILLED].all() and s.minutes.shape == (390, 11)
    assert np.all(s.minute_close[:150] == s.prev_close)


def test_a_few_minutes_missing_at_the_close_are_filled(markets):
    daily, minute = markets["XLON"]
    short = minute.drop(index=minute.index[np.flatnonzero(_last(minute))[-3:]])
    s = _sample((daily, short), "XLON")
    assert s.report.filled_at_close == 3 and not s.report.partial and s.minutes.shape == (510, 11)
    assert s.minutes[-3:, FILLED].all() and np.all(s.minute_close[-3:] == s.minute_close[-4])


def test_a_partial_last_day_is_passed_over_and_never_padded(markets):
    daily, minute = markets["XNYS"]
    partial = minute.drop(index=minute.index[np.flatnonzero(_last(minute))[120:]])  # the data ends at 11:29
    report = RepairReport("test")
    s = session_sample(daily, partial, max_days=16, report=report)  # the last complete session
    assert str(s.date) == "2024-11-07" and report.sessions[0].date == dt.date(2024, 11, 8)
    assert report.sessions[0].partial and "passed over" in report.sessions[0].refused
    with pytest.raises(DataError, match=r"^XNYS 2024-11-08: partial session: the bars end at 11:29, the close is 16:00 "
                                        r"\(270 minutes without bars, the limit is 19\); fix: replay a complete"):
        session_sample(daily, partial, date="2024-11-08", max_days=16)
    kept = session_sample(daily, partial, date="2024-11-08", max_days=16, policy=OPT_IN)
    assert kept.report.partial and kept.minutes.shape == (120, 11) and kept.report.filled == 0
    full = session_sample(daily, minute, date="2024-11-08", max_days=16)
    assert np.array_equal(kept.minutes, full.minutes[:120])  # the same tokens: the close is known in advance


def test_london_bars_read_as_new_york_are_refused_not_cut():
    """The bug this layer exists for: London's 08:00–16:30 is 03:00/04:00–11:30 New York. The bars inside
    XNYS hours are its first two hours; the session is partial and refused, never replayed as a New York day."""
    daily, minute = calendar_market("XLON", "2024-10-02", "2024-11-08", seed=4)
    market = (daily.assign(timestamp=daily["timestamp"].dt.tz_localize(None)), minute)  # daily: dates only
    with pytest.raises(DataError, match=r"no complete XNYS session; the last, 2024-11-08: partial session: the bars "
                                        r"end at 11:29, the close is 16:00"):
        session_sample(*market, exchange="XNYS")
    daily, minute = calendar_market("XHKG", "2024-10-02", "2024-11-08", seed=4)
    hongkong = (daily.assign(timestamp=daily["timestamp"].dt.tz_localize(None)), minute)
    with pytest.raises(DataError, match=r"bar\(s\) on dates that are not XNYS sessions, the first at 2024-10-06 "
                                        r"21:30:00-04:00 \(Sunday\)"):  # Monday morning in Hong Kong
        session_sample(*hongkong, exchange="XNYS")


def test_minute_bars_on_a_holiday_are_refused(markets):
    daily, minute = markets["XNYS"]
    day = minute[_last(minute)]
    holiday = day.assign(timestamp=day["timestamp"] + pd.Timedelta(days=20))  # Thanksgiving, 2024-11-28
    with pytest.raises(DataError, match=r"390 bar\(s\) on dates that are not XNYS sessions, the first at 2024-11-28 "
                                        r"09:30:00-05:00 \(Thursday\); fix: check the exchange"):
        build_samples(daily, pd.concat([minute, holiday]))


def test_the_daily_context_must_be_current_and_whole(markets):
    daily, minute = markets["XNYS"]
    stale = daily.iloc[:-4]  # ends on 2024-11-04: the sessions from 2024-11-06 lack their previous close
    report = RepairReport("test")
    samples = build_samples(stale, minute, lookback=16, report=report)
    assert str(samples[-1].date) == "2024-11-05" and report.as_dict()["sessions_refused_stale_daily"] == 3
    with pytest.raises(DataError, match=r"^XNYS 2024-11-08: the daily bars end on 2024-11-04, and it needs the daily "
                                        r"bar of 2024-11-07, the previous XNYS session; fix: extend the daily file"):
        session_sample(stale, minute, max_days=16)
    gap = daily.drop(index=daily.index[-6])  # 2024-11-01 missing
    with pytest.raises(DataError, match=r"lack the XNYS session 2024-11-01 inside its 16-day look-back; fix: add"):
        session_sample(gap, minute, max_days=16)
    s = session_sample(gap, minute, max_days=3)  # 3 tokens need the 4 daily bars of 2024-11-04..07, not the gap
    assert str(s.date) == "2024-11-08"


def test_dates_that_are_not_sessions_of_the_file(markets):
    with pytest.raises(DataError, match=r"^2024-11-09 \(Saturday\) is not a XNYS session; fix: pick a session the "
                                        r"minute file covers \(2024-10-02\.\.2024-11-08\)"):
        session_sample(*markets["XNYS"], date="2024-11-09")
    with pytest.raises(DataError, match=r"no bars on 2024-11-11; fix: pick a session the file covers"):
        session_sample(*markets["XNYS"], date="2024-11-11")
    with pytest.raises(DataError, match=r"date '11/08/2024' is not YYYY-MM-DD"):
        session_sample(*markets["XNYS"], date="11/08/2024")


def test_the_report_holds_every_session_and_the_file_repairs(markets):
    daily, minute = markets["XLON"]
    messy = pd.concat([minute, minute.iloc[[500]]]).reset_index(drop=True)  # a duplicate out of order
    report = RepairReport("test")
    samples = build_samples(daily, messy, lookback=16, report=report, exchange="XLON")
    counts = report.as_dict()
    assert counts["duplicate_timestamps"] == 1 and counts["unsorted_rows"] == 1
    assert counts["sessions_skipped_short_history"] == 6 and len(samples) == len(report.sessions) - 6
    assert [s.date for s in report.sessions] == sorted(daily["timestamp"].dt.date)
    line = report.sessions[-1].line()
    assert line == "XLON 2024-11-08: 510 bars for 510 minutes; filled 0; dropped 0"
    assert report.sessions[0].as_dict()["refused"].startswith("0 day tokens of history before it")


def test_a_session_without_a_bar_between_open_and_close_is_refused(markets):
    daily, minute = markets["XNYS"]
    day = minute[_last(minute)]
    early = day.iloc[:60].assign(timestamp=day["timestamp"].iloc[:60] - pd.Timedelta(hours=2))  # 07:30–08:29 only
    only_premarket = pd.concat([minute[~_last(minute)], early])
    report = RepairReport("test")
    build_samples(daily, only_premarket, lookback=16, report=report)
    assert report.sessions[-1].refused.startswith("no bars between the open 09:30 and the close 16:00 (60 outside)")
    assert report.as_dict()["sessions_refused_no_bars"] == 1
    with pytest.raises(DataError, match=r"^XNYS 2024-11-08: no bars between the open 09:30 and the close 16:00"):
        session_sample(daily, only_premarket, date="2024-11-08", max_days=16)


def test_daily_bars_repairs_and_refusals(markets):
    daily, minute = markets["XHKG"]
    late_stamp = daily.iloc[[-3]].assign(timestamp=daily["timestamp"].iloc[-3] + pd.Timedelta(hours=16))
    report = RepairReport("test")
    again = build_samples(pd.concat([daily, late_stamp]).sort_values("timestamp"), minute, lookback=16,
                          exchange="XHKG", report=report)  # a second bar on one date: the later one is kept
    assert report.as_dict()["duplicate_daily_dates"] == 1
    assert np.array_equal(again[-1].days, build_samples(daily, minute, lookback=16, exchange="XHKG")[-1].days)
    sunday = daily.iloc[[-1]].assign(timestamp=daily["timestamp"].iloc[-1] + pd.Timedelta(days=2))  # 2024-11-10
    with pytest.raises(DataError, match=r"1 daily bar\(s\) on dates that are not XHKG sessions, the first on "
                                        r"2024-11-10 \(Sunday\); fix: check the exchange and the daily stamps"):
        build_samples(pd.concat([daily, sunday]), minute, exchange="XHKG")


def test_cells_and_frames_that_are_not_one_instrument(markets):
    daily, minute = markets["XNYS"]
    quiet = minute.astype({"volume": float})
    quiet.loc[quiet.index[-5], "volume"] = np.nan  # an empty volume cell: 0, counted
    report = RepairReport("test")
    s = build_samples(daily, quiet, lookback=16, report=report)[-1]
    assert report.as_dict()["nan_volume"] == 1 and s.report.filled == 0
    negative = minute.astype({"volume": float})
    negative.loc[negative.index[7], "volume"] = -3.0
    with pytest.raises(DataError, match=r"row 7: volume -3; fix: correct the row \(volume must be finite and >= 0"):
        build_samples(daily, negative)
    two = pd.concat([minute.iloc[:10], minute.iloc[10:20].assign(symbol="OTHER")])
    with pytest.raises(DataError, match=r"2 symbols \['CAL', 'OTHER'\]; fix: one symbol per file/frame"):
        build_samples(daily, two)
