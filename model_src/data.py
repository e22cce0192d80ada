"""OHLCV bars → day samples: reading, repairing messy files, and cutting sessions into model tokens.

Bar schema (docs/features.md): timestamp (timezone-aware), open, high, low, close, volume; optional
`symbol` (one per frame) and `filled` (1 for a repaired bar). Timestamps are converted to New York time;
a minute bar is stamped with its opening minute, the regular session is 09:30–16:00 (390 bars).

Every repair is counted in a RepairReport and logged on the "model_src.data" logger; anything that
cannot be repaired safely raises DataError with one line naming the file, the row and the fix.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model_src.errors import DataError
from model_src.features import N_DAY_FEATURES, SESSION_MINUTES, day_feature_rows, minute_features

logger = logging.getLogger("model_src.data")

NY = "America/New_York"
SESSION_OPEN_MINUTE = 9 * 60 + 30  # 09:30 New York, in minutes after midnight
PRICES = ("open", "high", "low", "close")
COLUMNS = ("timestamp", *PRICES, "volume")
TIMESTAMP_ALIASES = ("date", "datetime", "time")  # common names for the timestamp column in vendor files
MIN_HISTORY_DAYS = 5  # sessions with fewer daily tokens of history than this are skipped
SUSPICIOUS_GAP = 0.2  # |log(first open / previous daily close)| above this is logged as a likely basis mismatch
PARQUET_HINT = "pip install 'hrm-export[data]' (pyarrow)"


@dataclass
class RepairReport:
    """What was repaired or dropped, with counts; `counts` keys are documented in docs/features.md."""

    source: str
    counts: Counter = field(default_factory=Counter)

    def add(self, what: str, n: int, detail: str = "", log: bool = True) -> None:
        if n:
            self.counts[what] += int(n)
            if log:
                logger.info("%s: %s: %d%s", self.source, what, n, f" ({detail})" if detail else "")

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)


# ---------------------------------------------------------------- reading and cleaning


def read_bars(path: str | Path, tz: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet bar file and repair it (see clean_bars); the report is in `.attrs["repairs"]`.

    `tz` names the zone of naive timestamps (e.g. "America/New_York"); without it naive timestamps are an
    error, because guessing the zone shifts every bar by hours.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; fix: check the path")
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith((".csv", ".csv.gz", ".txt")):
        try:
            df = pd.read_csv(path)
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not a readable CSV ({str(e).splitlines()[0]}); fix: write comma-separated "
                            f"columns {', '.join(COLUMNS)} with a header line") from None
        first_line = 2  # data row 0 is on line 2, after the header
    elif suffixes.endswith((".parquet", ".pq")):
        try:
            import pyarrow  # noqa: F401  (pandas needs it for Parquet)
        except ImportError:
            raise DataError(f"{path}: reading Parquet needs pyarrow; fix: {PARQUET_HINT}") from None
        df = pd.read_parquet(path)
        first_line = None
    else:
        raise DataError(f"{path}: unknown bar file type {path.suffix!r}; fix: use .csv or .parquet")
    df, _ = clean_bars(df, source=str(path), tz=tz, first_line=first_line)
    df.attrs["symbol"] = df.attrs.get("symbol") or path.name.split(".")[0]
    return df


def clean_bars(df: pd.DataFrame, source: str = "bars", tz: str | None = None,
               first_line: int | None = None) -> tuple[pd.DataFrame, RepairReport]:
    """Validate and repair bars: New York timestamps, sorted, unique, NaN-free, positive prices.

    Returns the clean frame (columns timestamp, open, high, low, close, volume, filled) and the report.
    `first_line` is the file line of data row 0 (CSV), so that errors name the line a person can open.
    Idempotent: cleaning a clean frame changes nothing and reports nothing.
    """
    report = RepairReport(source)
    where = (lambda i: f"{source} line {i + first_line}") if first_line else (lambda i: f"{source} row {i}")
    df = df.rename(columns={c: str(c).strip().lower() for c in df.columns})
    if "timestamp" not in df.columns:
        alias = next((a for a in TIMESTAMP_ALIASES if a in df.columns), None)
        df = df.rename(columns={alias: "timestamp"}) if alias else df
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing} (has {list(df.columns)}); fix: provide "
                        f"{', '.join(COLUMNS)} (timestamp may also be called {'/'.join(TIMESTAMP_ALIASES)})")
    symbol = df.attrs.get("symbol")
    if "symbol" in df.columns:
        symbols = df["symbol"].dropna().unique()
        if len(symbols) > 1:
            raise DataError(f"{source}: {len(symbols)} symbols {list(symbols[:5])}; fix: one symbol per file/frame")
        symbol = str(symbols[0]) if len(symbols) else symbol
    out = pd.DataFrame({"timestamp": _ny_timestamps(df["timestamp"], where, tz)})
    for col in (*PRICES, "volume"):
        out[col] = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
    out["filled"] = (pd.to_numeric(df["filled"], errors="coerce").fillna(0).to_numpy(np.int8)
                     if "filled" in df.columns else np.zeros(len(df), np.int8))
    out["_row"] = np.arange(len(df))  # position in the file, for messages after sorting

    ts = out["timestamp"]
    if not ts.is_monotonic_increasing:
        # a row is out of order when an earlier row has a later timestamp; stable sort keeps file order
        # among equal timestamps, so "keep last" below keeps the row that comes last in the file
        late = int((ts < ts.cummax().shift(1)).sum())
        out = out.sort_values("timestamp", kind="stable", ignore_index=True)
        report.add("unsorted_rows", late, "sorted by timestamp")
    dup = out["timestamp"].duplicated(keep="last")
    if dup.any():
        out = out[~dup.to_numpy()].reset_index(drop=True)
        report.add("duplicate_timestamps", int(dup.sum()), "kept the last row of each timestamp")
    out = _repair_nan(out, where, report)
    prices = out[list(PRICES)].to_numpy()
    bad = ((prices <= 0) | ~np.isfinite(prices)).any(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        vals = ", ".join(f"{c}={out.at[i, c]:g}" for c in PRICES)
        raise DataError(f"{where(int(out.at[i, '_row']))}: non-positive or infinite price ({vals}); fix: correct "
                        f"or drop this row (prices must be > 0; back-adjust splits/dividends multiplicatively)")
    if (out["volume"] < 0).any():
        i = int(np.argmax((out["volume"] < 0).to_numpy()))
        raise DataError(f"{where(int(out.at[i, '_row']))}: negative volume {out.at[i, 'volume']:g}; "
                        f"fix: correct the row (volume must be >= 0; 0 is allowed)")
    out = out.drop(columns="_row")
    out.attrs.update(source=source, repairs=report.as_dict(), symbol=symbol)
    return out, report


def _ny_timestamps(col: pd.Series, where, tz: str | None) -> pd.Series:
    """Parse a timestamp column to tz-aware New York time; naive values need an explicit `tz`."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert(NY).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(col):  # epoch numbers: seconds or ms or ns is a guess we will not make
        raise DataError(f"{where(0)}: numeric timestamp {col.iloc[0]!r}; fix: convert it, e.g. "
                        f"pd.to_datetime(df.timestamp, unit='s', utc=True), and write ISO 8601 with an offset")
    try:
        parsed = pd.to_datetime(col)
    except (ValueError, TypeError):
        try:  # mixed UTC offsets (e.g. -05:00 and -04:00 across a DST change) parse only as UTC
            parsed = pd.to_datetime(col, utc=True, format="mixed")
        except (ValueError, TypeError):
            bad = pd.to_datetime(col, errors="coerce", utc=True, format="mixed").isna().to_numpy()
            i = int(np.argmax(bad))
            raise DataError(f"{where(i)}: unreadable timestamp {col.iloc[i]!r}; fix: write ISO 8601, "
                            f"e.g. 2024-01-02T09:30:00-05:00") from None
    if parsed.isna().any():
        i = int(np.argmax(parsed.isna().to_numpy()))
        raise DataError(f"{where(i)}: missing timestamp; fix: drop the row or fill in its time")
    if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
        if tz is None:
            raise DataError(f"{where(0)}: naive timestamp {str(col.iloc[0])!r} (no time zone); fix: pass "
                            f"tz='America/New_York' (the zone it was recorded in) or write offsets, e.g. -05:00")
        try:
            parsed = parsed.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except Exception as e:  # unknown zone name or a wall time that does not exist / repeats in that zone
            raise DataError(f"{where(0)}: cannot place naive timestamps in zone {tz!r} ({e}); "
                            f"fix: pass a valid IANA zone or write UTC offsets in the file") from None
    return parsed.dt.tz_convert(NY).reset_index(drop=True)


def _repair_nan(out: pd.DataFrame, where, report: RepairReport) -> pd.DataFrame:
    """An isolated bar with missing prices becomes a flat bar at the previous close (filled=1); a run of two
    or more such bars, or one in the first row, is an error: there is no honest value to put there."""
    nan_volume = out["volume"].isna().to_numpy()
    if nan_volume.any():
        out.loc[nan_volume, "volume"] = 0.0
        report.add("nan_volume", int(nan_volume.sum()), "set to 0")
    nan = out[list(PRICES)].isna().any(axis=1).to_numpy()
    if not nan.any():
        return out
    idx = np.flatnonzero(nan)
    neighbour = np.zeros_like(nan)
    neighbour[1:] |= nan[:-1]
    neighbour[:-1] |= nan[1:]
    bad = idx[(idx == 0) | neighbour[idx]]
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{where(int(out.at[i, '_row']))}: missing price(s) that cannot be repaired "
                        f"({'first row' if i == 0 else 'two or more consecutive bars'}); fix: fill or drop these "
                        f"rows in the file (only an isolated bar with missing prices is repaired)")
    prev_close = out["close"].to_numpy()[idx - 1]
    for c in PRICES:
        col = out[c].to_numpy().copy()
        col[idx] = np.where(np.isnan(col[idx]), prev_close, col[idx])
        out[c] = col
    out.loc[idx, "filled"] = 1
    report.add("nan_price_rows_filled", len(idx), "isolated bars set to the previous close")
    return out


# ---------------------------------------------------------------- sessions and samples


@dataclass
class DaySample:
    """One session of one symbol: the model's inputs and the closes the labels are computed from."""

    symbol: str
    date: dt.date
    days: np.ndarray  # (D, F_day) float32, daily tokens of the D sessions before `date` (zero rows pad short history)
    minutes: np.ndarray  # (T, F_min) float32, minute tokens of this session
    minute_close: np.ndarray  # (T,) float64, closes after repair
    prev_close: float  # close of the last daily bar before `date`


def session_arrays(bars: pd.DataFrame, prev_close: float, report: RepairReport) -> dict[str, np.ndarray]:
    """One session's clean minute bars → gap-free arrays from 09:30 to the last bar present.

    A missing minute becomes a flat bar at the last close before it (the previous session's close for
    minutes before the first bar), volume 0, filled=1: only the past is used, so no look-ahead.
    """
    m = bars["minute"].to_numpy()  # (n,) minutes since 09:30, sorted and unique
    T = int(m[-1]) + 1
    present = np.zeros(T, bool)
    present[m] = True
    # index of the last present bar at or before each minute (-1: none yet)
    last = np.maximum.accumulate(np.where(present, np.arange(T), -1))
    close_at = np.full(T, np.nan)
    close_at[m] = bars["close"].to_numpy()
    fill = np.where(last >= 0, close_at[np.maximum(last, 0)], prev_close)
    out = {"close": fill.copy()}
    for c in ("open", "high", "low"):
        arr = fill.copy()
        arr[m] = bars[c].to_numpy()
        out[c] = arr
    out["close"][m] = bars["close"].to_numpy()
    out["volume"] = np.zeros(T)
    out["volume"][m] = bars["volume"].to_numpy()
    out["filled"] = np.ones(T)
    out["filled"][m] = bars["filled"].to_numpy()
    out["minute"] = np.arange(T)
    report.add("missing_minutes_filled", T - len(m), log=False)  # one summary line per build, not per session
    return out


def build_samples(daily: pd.DataFrame, minute: pd.DataFrame, lookback: int = 64,
                  min_history: int = MIN_HISTORY_DAYS, report: RepairReport | None = None) -> list[DaySample]:
    """Day samples for every session in `minute` that has at least `min_history` daily tokens before it.

    Day tokens of session d come from daily bars strictly before d (the last `lookback`, left-padded with
    zero rows when history is shorter); minute tokens from that session's bars. Pass a RepairReport to
    collect the counts of what was repaired or dropped.
    """
    assert lookback >= 1 and min_history >= 1, "lookback and min_history must be >= 1"
    report = report if report is not None else RepairReport(str(minute.attrs.get("source", "minute bars")))
    daily, daily_rep = clean_bars(daily, source=daily.attrs.get("source", "daily bars"))
    minute, minute_rep = clean_bars(minute, source=minute.attrs.get("source", "minute bars"))
    report.counts.update(daily_rep.counts)
    report.counts.update(minute_rep.counts)
    symbol = str(minute.attrs.get("symbol") or daily.attrs.get("symbol") or "UNKNOWN")

    d_utc = daily["timestamp"].dt.tz_convert("UTC")
    if len(daily) and ((d_utc.dt.hour == 0) & (d_utc.dt.minute == 0)).all():
        # 00:00 UTC is 19:00/20:00 New York of the previous date: each bar would land before its own session,
        # so the day tokens of session d would contain day d's close (look-ahead)
        raise DataError(f"{daily.attrs.get('source')}: daily bars are stamped at 00:00 UTC, which is the previous "
                        f"New York date; fix: stamp them with their New York date (e.g. dates with "
                        f"tz='America/New_York')")
    d_dates = daily["timestamp"].dt.date.to_numpy()
    dup_date = pd.Series(d_dates).duplicated(keep="last").to_numpy()
    if dup_date.any():  # two stamps on one New York date (e.g. 00:00 and 16:00): keep the later bar
        daily, d_dates = daily[~dup_date].reset_index(drop=True), d_dates[~dup_date]
        report.add("duplicate_daily_dates", int(dup_date.sum()), "kept the last bar of each date")
    rows = day_feature_rows(*(daily[c].to_numpy() for c in ("open", "high", "low", "close", "volume")))
    d_close = daily["close"].to_numpy()

    ts = minute["timestamp"]
    if (ts.dt.second != 0).any() or (ts.dt.microsecond != 0).any():
        i = int(np.argmax(((ts.dt.second != 0) | (ts.dt.microsecond != 0)).to_numpy()))
        raise DataError(f"{minute.attrs.get('source')}: minute bar at {ts.iloc[i]} is not on a whole minute; "
                        f"fix: stamp each bar with its opening minute (e.g. 09:30:00 for 09:30–09:31)")
    minute = minute.assign(minute=(ts.dt.hour * 60 + ts.dt.minute - SESSION_OPEN_MINUTE).to_numpy(),
                           date=ts.dt.date.to_numpy())
    by_date = minute.groupby("date")["minute"]
    if len(minute) and ((by_date.min() == 1) & (by_date.max() == SESSION_MINUTES)).all():
        raise DataError(f"{minute.attrs.get('source')}: every session runs 09:31–16:00, so the bars look stamped "
                        f"with their closing minute; fix: subtract one minute from the timestamps (a bar is stamped "
                        f"with its opening minute)")
    before = minute["minute"] < 0
    after = minute["minute"] >= SESSION_MINUTES
    report.add("bars_before_open_dropped", int(before.sum()), "before 09:30 New York")
    report.add("bars_at_or_after_close_dropped", int(after.sum()), "at or after 16:00 New York")
    minute = minute[~(before | after)]

    samples: list[DaySample] = []
    for date, bars in minute.groupby("date", sort=True):
        k = int(np.searchsorted(d_dates, date, side="left"))  # daily bars strictly before `date`
        history = rows[1:k]  # row 0 has no previous close
        if len(history) < min_history:
            report.add("sessions_skipped_short_history", 1, log=False)
            continue
        prev_close = float(d_close[k - 1])
        s = session_arrays(bars, prev_close, report)
        if abs(np.log(s["open"][0] / prev_close)) > SUSPICIOUS_GAP:
            report.add("suspicious_gaps", 1, log=False)
            logger.warning("%s: %s opens %.1f%% away from the previous daily close %g; are the daily and minute "
                           "bars on the same price basis (both split-adjusted or both raw)?", report.source, date,
                           100 * (s["open"][0] / prev_close - 1), prev_close)
        if len(s["close"]) < SESSION_MINUTES:
            report.add("short_sessions_kept", 1, log=False)
            logger.info("%s: %s has %d minutes (half day or early end): kept", report.source, date, len(s["close"]))
        days = np.zeros((lookback, N_DAY_FEATURES), np.float32)
        take = history[-lookback:]
        days[lookback - len(take):] = take
        feats = minute_features(s["open"], s["high"], s["low"], s["close"], s["volume"], s["minute"],
                                s["filled"], prev_close)
        samples.append(DaySample(symbol, date, days, feats.astype(np.float32), s["close"], prev_close))
    logger.info("%s: %d day samples of %s; repairs %s", report.source, len(samples), symbol, report.as_dict())
    return samples


def daily_from_minutes(minute: pd.DataFrame) -> pd.DataFrame:
    """Daily bars aggregated from regular-session minute bars (for data sets without a daily file)."""
    minute, _ = clean_bars(minute, source=minute.attrs.get("source", "minute bars"))
    ts = minute["timestamp"]
    m = ts.dt.hour * 60 + ts.dt.minute - SESSION_OPEN_MINUTE
    regular = minute[((m >= 0) & (m < SESSION_MINUTES)).to_numpy()]
    g = regular.groupby(regular["timestamp"].dt.normalize(), sort=True)  # midnight New York of each date
    daily = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(), "low": g["low"].min(),
                          "close": g["close"].last(), "volume": g["volume"].sum()})
    daily = daily.rename_axis("timestamp").reset_index()
    daily.attrs.update(source=f"daily bars from {minute.attrs.get('source')}", symbol=minute.attrs.get("symbol"))
    return daily


def synthetic_samples(n_days: int, seed: int = 0, lookback: int = 64) -> list[DaySample]:
    """Day samples of the seeded synthetic market; the first MIN_HISTORY_DAYS + 1 sessions have too little
    history and are skipped, so n_days sessions give n_days - 6 samples."""
    from model_src.synthetic import synthetic_market

    daily, minute = synthetic_market(n_days, seed=seed)
    return build_samples(daily, minute, lookback=lookback)


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
