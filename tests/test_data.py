"""Bar files → day samples: schema, messy-data behaviour, no look-ahead, stacking, and real bars (the SPY
excerpt, whose tokens are pinned bit for bit). Calendars, file defects and the repair policy have their own
files: test_calendars.py, test_bar_files.py, test_sessions.py."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from calendar_bars import calendar_market

from model_src.calendars import WEEKDAYS_NY
from model_src.config import N_DAY_FEATURES, N_MINUTE_FEATURES
from model_src.data import (
    DaySample,
    RepairReport,
    build_samples,
    clean_bars,
    daily_from_minutes,
    read_bars,
    session_sample,
    stack_samples,
    synthetic_samples,
)
from model_src.errors import DataError
from model_src.features import MINUTE_FEATURES
from model_src.synthetic import synthetic_market

DATA = Path(__file__).parent / "data"
FILLED = MINUTE_FEATURES.index("filled")
CLOSE_1559_DEC17 = 372.21  # line 1173 of intraday_1min_2020-12.csv
N_DAYS = 10  # sessions 6..9 have the 5 days of history a sample needs


@pytest.fixture(scope="module")
def market():
    return synthetic_market(N_DAYS, seed=7)


@pytest.fixture(scope="module")
def reference(market):
    return build_samples(*market, lookback=8)


def _csv(tmp_path, df, name="bars.csv"):
    out = df.copy()
    out["timestamp"] = out["timestamp"].map(lambda t: t.isoformat())
    path = tmp_path / name
    out.to_csv(path, index=False)
    return path


def _last_session(minute):
    return slice(len(minute) - 390, len(minute))


# ---------------------------------------------------------------- API and shapes


def test_samples_have_the_agreed_shapes(reference):
    assert len(reference) == N_DAYS - 6
    s = reference[0]
    assert isinstance(s, DaySample) and s.symbol == "SYN"
    assert s.days.shape == (8, N_DAY_FEATURES) and s.days.dtype == np.float32
    assert s.minutes.shape == (390, N_MINUTE_FEATURES) and s.minutes.dtype == np.float32
    assert s.minute_close.shape == (390,) and s.minute_close.dtype == np.float64
    assert isinstance(s.prev_close, float)
    assert (s.days[:3] == 0).all() and (s.days[3:] != 0).any()  # 5 days of history, left-padded to 8
    days, minutes = stack_samples(reference)
    assert days.shape == (len(reference), 8, 8) and minutes.shape == (len(reference), 390, 11)
    assert str(days.dtype) == "torch.float32" and str(minutes.dtype) == "torch.float32"


def test_synthetic_samples_are_build_samples_of_the_market(reference, market):
    again = synthetic_samples(N_DAYS, seed=7, lookback=8)
    assert [s.date for s in again] == [s.date for s in reference]
    assert all(np.array_equal(a.minutes, b.minutes) and np.array_equal(a.days, b.days)
               for a, b in zip(again, reference, strict=True))


def test_prev_close_is_the_previous_daily_close(reference, market):
    daily, _ = market
    s = reference[-1]
    assert s.prev_close == daily["close"].iloc[-2]
    assert s.minute_close[-1] == daily["close"].iloc[-1]


# ---------------------------------------------------------------- no look-ahead through the whole pipeline


@pytest.mark.parametrize("t", [0, 59, 389])
def test_minute_tokens_ignore_later_bars(market, reference, t):
    daily, minute = market
    pert = minute.copy()
    later = np.arange(len(minute)) > len(minute) - 390 + t  # after minute t of the last session
    rng = np.random.default_rng(t)
    n = int(later.sum())
    move = np.exp(rng.normal(0, 0.05, n))  # one factor per bar keeps it a consistent bar (low <= open, close <= high)
    for c in ("open", "high", "low", "close"):
        pert.loc[later, c] *= move
    pert.loc[later, "high"] *= np.exp(np.abs(rng.normal(0, 0.01, n)))
    pert.loc[later, "volume"] = rng.integers(0, 10**6, later.sum())
    got = build_samples(daily, pert, lookback=8)[-1]
    assert np.array_equal(got.minutes[: t + 1], reference[-1].minutes[: t + 1])
    assert np.array_equal(got.days, reference[-1].days)
    if t < 389:
        assert not np.array_equal(got.minutes[t + 1:], reference[-1].minutes[t + 1:])


def test_day_tokens_ignore_bars_on_or_after_the_session_date(market, reference):
    daily, minute = market
    d = 7  # perturb daily bars of sessions 7.. : the sample of session 7 must not change
    pert = daily.copy()
    for c in ("open", "high", "low", "close", "volume"):
        pert.loc[d:, c] *= 1.5
    got = build_samples(pert, minute, lookback=8)
    assert np.array_equal(got[1].days, reference[1].days)  # session 7 is sample 1
    assert got[1].prev_close == reference[1].prev_close
    assert not np.array_equal(got[2].days, reference[2].days)


# ---------------------------------------------------------------- messy files


def test_unsorted_rows_are_sorted_and_counted(tmp_path, market, reference, caplog):
    daily, minute = market
    shuffled = minute.sample(frac=1.0, random_state=0)
    with caplog.at_level(logging.INFO, logger="model_src.data"):
        bars = read_bars(_csv(tmp_path, shuffled), exchange=WEEKDAYS_NY)
    assert bars.attrs["repairs"]["unsorted_rows"] > 0.9 * len(minute)
    assert "unsorted_rows" in caplog.text
    got = build_samples(daily, bars, lookback=8)
    np.testing.assert_allclose(got[-1].minutes, reference[-1].minutes, atol=1e-5)  # CSV round trip of floats


def test_duplicate_timestamps_keep_the_last_row(market):
    _, minute = market
    dup = minute.iloc[[100]].copy()
    dup[["open", "high", "low", "close"]] = dup[["open", "high", "low", "close"]] * 1.001
    bars, report = clean_bars(pd.concat([minute, dup]))
    assert report.as_dict() == {"unsorted_rows": 1, "duplicate_timestamps": 1}  # appended: also out of order
    assert len(bars) == len(minute)
    assert bars["close"].iloc[100] == dup["close"].iloc[0]


def test_missing_minutes_are_forward_filled_with_flag(market, reference):
    daily, minute = market
    sess = _last_session(minute)
    drop = [sess.start + 0, sess.start + 100, sess.start + 101, sess.start + 102]
    report = RepairReport("test")
    got = build_samples(daily, minute.drop(index=drop), lookback=8, report=report)[-1]
    assert report.as_dict()["missing_minutes_filled"] == 4
    assert got.minutes.shape == (390, 11)
    f = got.minutes[:, FILLED]
    assert set(np.flatnonzero(f)) == {0, 100, 101, 102}
    close99 = minute["close"].iloc[sess.start + 99]
    assert np.all(got.minute_close[100:103] == close99)  # forward fill of the last close
    assert got.minute_close[0] == got.prev_close  # before the first bar: the previous session's close
    # minutes after the last gap see the same bars as before: only the cumulative features (VWAP, volume
    # statistics, session open) may differ, the bar-local ones are identical
    bar_local = [MINUTE_FEATURES.index(n) for n in ("range", "body", "tod_sin", "tod_cos")]
    np.testing.assert_array_equal(got.minutes[103:, bar_local], reference[-1].minutes[103:, bar_local])
    assert np.isfinite(got.minutes).all()


def test_zero_volume_is_allowed(market):
    daily, minute = market
    quiet = minute.copy()
    quiet.loc[quiet.index[-390:], "volume"] = 0.0
    got = build_samples(daily, quiet, lookback=8)[-1]
    assert np.isfinite(got.minutes).all()
    assert np.all(got.minutes[:, MINUTE_FEATURES.index("vwap_dev")] == 0)  # no volume: VWAP is the close


def test_bar_with_a_missing_price_is_a_missing_minute(tmp_path, market, reference):
    daily, minute = market
    bad = minute.copy()
    row = len(minute) - 390 + 200  # minute 200 of the last session
    bad.loc[row, "close"] = np.nan
    bad.loc[row, "high"] = np.nan
    bars = read_bars(_csv(tmp_path, bad), exchange=WEEKDAYS_NY)
    assert bars.attrs["repairs"] == {"bars_missing_price_dropped": 1} and len(bars) == len(minute) - 1
    report = RepairReport("test")
    got = build_samples(daily, bars, lookback=8, report=report)[-1]
    assert report.as_dict()["bars_missing_price_dropped"] == 1  # the file's repair is in the build's report
    assert got.report.filled_inside == 1 and got.minutes[200, FILLED] == 1 and got.minutes[:, FILLED].sum() == 1
    assert got.minute_close[200] == pytest.approx(minute["close"].iloc[row - 1])  # flat at the last close
    np.testing.assert_allclose(got.minutes[:200], reference[-1].minutes[:200], atol=1e-5)  # CSV round trip


def test_non_positive_price_names_file_line_and_fix(tmp_path, market):
    _, minute = market
    bad = minute.copy()
    bad.loc[300, "low"] = 0.0
    with pytest.raises(DataError, match=r"bars\.csv line 302: non-positive or infinite price .*low=0.*fix: correct"):
        read_bars(_csv(tmp_path, bad))
    bad.loc[300, "low"] = -1.0
    with pytest.raises(DataError, match=r"row 300: non-positive"):
        clean_bars(bad)


def test_bar_at_the_close_is_dropped(market, reference):
    daily, minute = market
    extra = minute.iloc[[-1]].copy()
    extra["timestamp"] = extra["timestamp"] + pd.Timedelta(minutes=1)  # a 16:00 closing-auction bar
    pre = minute.iloc[[0]].copy()
    pre["timestamp"] = pre["timestamp"] - pd.Timedelta(minutes=5)  # a 09:25 pre-market bar
    report = RepairReport("test")
    got = build_samples(daily, pd.concat([pre, minute, extra]), lookback=8, report=report)
    assert report.as_dict()["bars_at_or_after_close_dropped"] == 1
    assert report.as_dict()["bars_before_open_dropped"] == 1
    assert np.array_equal(got[-1].minutes, reference[-1].minutes)


def test_half_day_is_a_session_of_its_own_length_and_stacking_says_how():
    daily, minute = calendar_market("XNYS", "2024-10-01", "2024-11-29", seed=3)  # ends on the day after Thanksgiving
    report = RepairReport("test")
    samples = build_samples(daily, minute, lookback=8, report=report)
    half = samples[-1]
    assert half.facts.early_close and half.facts.close.strftime("%H:%M") == "13:00"
    assert half.minutes.shape == (210, 11) and half.report.filled == 0 and not half.report.partial
    assert {s.minutes.shape[0] for s in samples[:-1]} == {390}
    with pytest.raises(DataError, match=r"210\.\.390 minutes.*crop_minutes=210"):
        stack_samples(samples)
    days, minutes = stack_samples(samples, crop_minutes=210)
    assert minutes.shape == (len(samples), 210, 11)
    with pytest.raises(DataError, match="crop_minutes between 1 and 210"):
        stack_samples(samples, crop_minutes=300)


def test_sessions_without_enough_history_are_skipped(market):
    report = RepairReport("test")
    samples = build_samples(*market, lookback=8, report=report)
    assert report.as_dict()["sessions_skipped_short_history"] == 6 and len(samples) == N_DAYS - 6
    assert len(build_samples(*market, lookback=8, min_history=1)) == N_DAYS - 2


def test_time_zones_are_converted_to_new_york(tmp_path, market, reference):
    daily, minute = market
    utc = minute.assign(timestamp=minute["timestamp"].dt.tz_convert("UTC"))
    assert np.array_equal(build_samples(daily, utc, lookback=8)[-1].minutes, reference[-1].minutes)
    naive = minute.assign(timestamp=minute["timestamp"].dt.tz_localize(None))
    path = _csv(tmp_path, naive)
    with pytest.raises(DataError, match=r"line 2: naive timestamp .*fix: pass tz='America/New_York'"):
        read_bars(path)
    bars = read_bars(path, tz="America/New_York")
    assert bars["timestamp"].equals(minute["timestamp"].reset_index(drop=True))
    tokyo = read_bars(path, tz="Asia/Tokyo")  # the same wall times in another zone are other instants
    assert tokyo["timestamp"].iloc[0].strftime("%H:%M") == "19:30"
    london = read_bars(path, tz="America/New_York", exchange="XLON")  # converted to the exchange's zone
    assert london["timestamp"].iloc[0].strftime("%H:%M %Z") == "14:30 GMT" and london.attrs["exchange"] == "XLON"


def test_parquet_round_trip(tmp_path, market):
    pytest.importorskip("pyarrow")
    _, minute = market
    path = tmp_path / "bars.parquet"
    minute.to_parquet(path)
    bars = read_bars(path)
    pd.testing.assert_frame_equal(bars[["open", "close"]], minute[["open", "close"]].reset_index(drop=True))


def test_unusable_files_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_bars(tmp_path / "missing.csv")
    (tmp_path / "bars.xlsx").write_bytes(b"x")
    with pytest.raises(DataError, match="use .csv or .parquet"):
        read_bars(tmp_path / "bars.xlsx")
    (tmp_path / "cols.csv").write_text("when,price\n2024-01-02,1\n")
    with pytest.raises(DataError, match=r"missing column\(s\).*fix: provide timestamp"):
        read_bars(tmp_path / "cols.csv")


# ---------------------------------------------------------------- real bars (tests/data/ATTRIBUTION)


def test_real_minute_bars_become_tokens(caplog):
    with pytest.raises(DataError, match="naive timestamp"):
        read_bars(DATA / "intraday_1min_2020-12.csv")
    minute = read_bars(DATA / "intraday_1min_2020-12.csv", tz="America/New_York")
    assert len(minute) == 4 * 391 and minute.attrs["repairs"] == {}
    daily = daily_from_minutes(minute)
    assert len(daily) == 4
    report = RepairReport("real")
    with caplog.at_level(logging.INFO, logger="model_src.data"):
        samples = build_samples(daily, minute, lookback=4, min_history=1, report=report)
    assert report.as_dict()["bars_at_or_after_close_dropped"] == 4  # the 16:00 bar of each session
    assert [s.dropped_after_close for s in report.sessions] == [1, 1, 1, 1]
    assert "bars_at_or_after_close_dropped: 4" in caplog.text
    assert [str(s.date) for s in samples] == ["2020-12-17", "2020-12-18"]
    for s in samples:
        assert s.minutes.shape == (390, 11) and np.isfinite(s.minutes).all() and np.isfinite(s.days).all()
        assert np.abs(s.minutes).max() <= 10 and s.minutes[:, FILLED].sum() == 0
    assert samples[0].minute_close[-1] == CLOSE_1559_DEC17  # the session ends with the 15:59 bar
    days, minutes = stack_samples(samples)
    assert minutes.shape == (2, 390, 11)


def test_a_regular_new_york_session_keeps_its_tokens_bit_for_bit():
    """The default model was trained on these tokens: the calendar, the repair policy and the file checks
    must not move a bit of a regular 390-minute XNYS session (golden arrays made at commit 6686265, before
    calendars: tests/data/spy_tokens_6686265.npz; the last test of this file rebuilds the daily-only one)."""
    golden = np.load(DATA / "spy_tokens_6686265.npz")
    minute = read_bars(DATA / "intraday_1min_2020-12.csv", tz="America/New_York")
    samples = build_samples(daily_from_minutes(minute), minute, lookback=4, min_history=1)
    assert all(s.facts.minutes == 390 and s.facts.exchange == "XNYS" for s in samples)
    assert np.array_equal(np.stack([s.minutes for s in samples]), golden["minutes"])
    assert np.array_equal(np.stack([s.days for s in samples]), golden["days"])
    assert np.array_equal(np.stack([s.minute_close for s in samples]), golden["minute_close"])
    one = session_sample(daily_from_minutes(minute), minute, max_days=4, min_history=1)  # the replay path
    assert one.date == samples[-1].date and np.array_equal(one.minutes, golden["minutes"][-1])


def test_real_daily_bars_become_day_tokens():
    daily = read_bars(DATA / "daily_2017_2018.csv", tz="America/New_York")
    assert len(daily) == 502 and daily["timestamp"].iloc[0].strftime("%Y-%m-%d %H:%M") == "2017-01-03 00:00"
    # one synthetic session stamped on the next business day after the file: its day tokens are real days
    last = daily["timestamp"].iloc[-1] + pd.Timedelta(days=2)
    times = pd.date_range(last + pd.Timedelta(hours=9, minutes=30), periods=390, freq="min")
    px = float(daily["close"].iloc[-1])
    minute = pd.DataFrame({"timestamp": times, "open": px, "high": px, "low": px, "close": px, "volume": 1.0})
    (s,) = build_samples(daily, minute, lookback=64)
    assert s.days.shape == (64, 8) and np.isfinite(s.days).all() and (s.days != 0).any(axis=1).all()
    assert s.prev_close == px
    assert str(s.date) == "2019-01-02"  # after the New Year holiday: its previous session is 2018-12-31
    assert np.array_equal(s.days, np.load(DATA / "spy_tokens_6686265.npz")["daily_days"])  # pinned bit for bit
    dates_only = read_bars(DATA / "daily_2017_2018.csv")  # date-only stamps name sessions: no tz needed
    assert dates_only["timestamp"].equals(daily["timestamp"])


def test_offsets_that_change_with_daylight_saving_are_read(tmp_path):
    path = tmp_path / "dst.csv"
    path.write_text("timestamp,open,high,low,close,volume\n"
                    "2021-03-12T09:30:00-05:00,10,10,10,10,5\n"
                    "2021-03-15T09:30:00-04:00,11,11,11,11,5\n")
    bars = read_bars(path)
    assert [t.strftime("%Y-%m-%d %H:%M") for t in bars["timestamp"]] == ["2021-03-12 09:30", "2021-03-15 09:30"]


def test_timestamps_that_cannot_be_trusted_are_refused(market):
    _, minute = market
    epoch = minute.assign(timestamp=minute["timestamp"].astype("int64") // 10**9)
    with pytest.raises(DataError, match=r"row 0: numeric timestamp .*fix: convert it"):
        clean_bars(epoch)
    odd = minute.assign(timestamp=minute["timestamp"] + pd.Timedelta(seconds=30))
    with pytest.raises(DataError, match="not on a whole minute; fix: stamp each bar with its opening minute"):
        build_samples(market[0], odd)
    inf = minute.copy()
    inf.loc[5, "high"] = np.inf
    with pytest.raises(DataError, match="row 5: non-positive or infinite price"):
        clean_bars(inf)


def test_daily_and_minute_bars_on_different_price_bases_are_flagged(market, caplog):
    daily, minute = market
    halved = daily.copy()  # e.g. split-adjusted daily bars with raw minute bars
    for c in ("open", "high", "low", "close"):
        halved[c] = halved[c] / 2
    report = RepairReport("test")
    with caplog.at_level(logging.WARNING, logger="model_src.data"):
        build_samples(halved, minute, lookback=8, report=report)
    assert report.as_dict()["suspicious_gaps"] == N_DAYS - 6
    assert "same price basis" in caplog.text


def test_stamps_that_would_shift_bars_are_refused(market):
    daily, minute = market
    utc_midnight = daily.assign(timestamp=daily["timestamp"].dt.tz_localize(None).dt.tz_localize("UTC"))
    with pytest.raises(DataError, match="00:00 UTC, which is the previous date in America/New_York; fix:"):
        build_samples(utc_midnight, minute)
    end_stamped = minute.assign(timestamp=minute["timestamp"] + pd.Timedelta(minutes=1))
    with pytest.raises(DataError, match="stamped with their closing minute; fix: subtract one minute"):
        build_samples(daily, end_stamped)
    # the first and the last day partial: still no session has a bar at its open, and one has a bar at the close
    cut = end_stamped.iloc[100:-50]
    with pytest.raises(DataError, match="stamped with their closing minute"):
        build_samples(daily, cut)


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    import sys

    (tmp_path / "bars.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` raise ImportError
    with pytest.raises(DataError, match=r"bars\.parquet: reading Parquet needs pyarrow; fix: pip install"):
        read_bars(tmp_path / "bars.parquet")
