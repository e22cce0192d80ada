"""Bar files → clean bar frames: every cell checked, every repair counted, everything else one DataError line.

Bar schema (docs/features.md): timestamp (with its zone), open, high, low, close, volume; optional `symbol`
(one per frame) and `filled` (1 for a repaired bar). Timestamps are converted to the exchange's zone; a bar
is stamped with its opening minute. Whatever a file's decoder raises (pandas, pyarrow, gzip) becomes one
line naming the file and the fix; nothing below this module sees a half-read file.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd

from model_src.calendars import DEFAULT_EXCHANGE, exchange_name, exchange_zone, local_dates
from model_src.errors import DataError
from model_src.repairs import RepairReport

PRICES = ("open", "high", "low", "close")
COLUMNS = ("timestamp", *PRICES, "volume")
TIMESTAMP_ALIASES = ("date", "datetime", "time")  # common names for the timestamp column in vendor files
MAX_STEP = 10.0  # a price more than 10× (or under 1/10 of) the previous close within one bar is refused
PARQUET_MAGIC = b"PAR1"
PARQUET_HINT = "pip install 'hrm-export[data]' (pyarrow)"
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
EXAMPLE_STAMP = "2024-01-02T09:30:00-05:00"
OFFSET = r"(?:Z|[+-]\d\d:?\d\d)\s*$"  # an ISO 8601 zone designator at the end of a timestamp string
RESAMPLE = ("df.resample('1min', on='timestamp', label='left', closed='left').agg({'open': 'first', "
            "'high': 'max', 'low': 'min', 'close': 'last', 'volume': 'sum'}).dropna().reset_index()")


# ---------------------------------------------------------------- files


def read_bars(path: str | Path, tz: str | None = None, exchange: str = DEFAULT_EXCHANGE) -> pd.DataFrame:
    """Read a CSV or Parquet bar file and clean it (clean_bars); the counts are in `.attrs["repairs"]`.

    `tz` names the zone of naive timestamps (e.g. "America/New_York"); without it naive timestamps are an
    error, because guessing the zone shifts every bar by hours (date-only daily files are the exception:
    a date is a session label, read in the exchange's zone).
    """
    path = Path(path)
    df, first_line = _read_table(path)
    df, _ = clean_bars(df, source=str(path), tz=tz, first_line=first_line, exchange=exchange)
    df.attrs["symbol"] = df.attrs.get("symbol") or path.name.split(".")[0]
    return df


def _read_table(path: Path) -> tuple[pd.DataFrame, int | None]:
    """The raw table of a bar file and the file line of its data row 0 (CSV) or None (Parquet)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file; fix: check the path")
    suffix = "".join(path.suffixes[-2:]).lower()
    is_csv, is_parquet = suffix.endswith(CSV_SUFFIXES), suffix.endswith(PARQUET_SUFFIXES)
    if not (is_csv or is_parquet):
        raise DataError(f"{path}: unknown bar file type {path.suffix!r}; fix: use .csv or .parquet")
    with path.open("rb") as f:
        head = f.read(64)
    if not head:
        raise DataError(f"{path}: empty file (0 bytes); fix: write the bars again, a header line and one row per bar")
    if is_csv and head.startswith(PARQUET_MAGIC):
        raise DataError(f"{path}: a Parquet file named {path.suffix}; fix: rename it to .parquet")
    if is_parquet and not head.startswith(PARQUET_MAGIC):
        looks = "text, CSV?" if all(32 <= b < 127 or b in b"\r\n\t" for b in head) else "binary"
        raise DataError(f"{path}: not a Parquet file (no PAR1 header; it looks {looks}); fix: rename a CSV "
                        f"file to .csv, or write the Parquet file again")
    if is_csv:
        try:
            df = pd.read_csv(path)
        except (ValueError, OSError, EOFError) as e:  # ParserError, EmptyDataError, bad gzip, not UTF-8
            raise DataError(f"{path}: not a readable CSV ({_first_line(e)}); fix: write comma-separated "
                            f"columns {', '.join(COLUMNS)} with a header line") from None
        if len(df) and df.iloc[-1].isna().any() and not _ends_with_newline(path):
            raise DataError(f"{path} line {len(df) + 1}: the last line is incomplete and the file does not end with "
                            f"a line break: a truncated copy?; fix: copy or write the file again")
        return df, 2  # data row 0 is on line 2, after the header
    try:
        import pyarrow  # noqa: F401  (pandas needs it for Parquet)
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow; fix: {PARQUET_HINT}") from None
    try:  # pages written with CRCs are verified; a flipped byte in such a page is an error, not a value
        return pd.read_parquet(path, page_checksum_verification=True), None
    except Exception as e:  # noqa: BLE001  a corrupt file fails anywhere in pyarrow's decoders, with any type
        raise DataError(f"{path}: not a readable Parquet file, corrupt or truncated ({type(e).__name__}: "
                        f"{_first_line(e)}); fix: copy or write the file again") from None


def _ends_with_newline(path: Path) -> bool:
    if path.name.lower().endswith(".gz"):  # only after pandas has read it whole: the stream is sound
        with gzip.open(path, "rb") as f:
            return f.read()[-1:] in (b"\n", b"\r")
    with path.open("rb") as f:
        f.seek(-1, 2)
        return f.read(1) in (b"\n", b"\r")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


# ---------------------------------------------------------------- cells


def clean_bars(df: pd.DataFrame, source: str = "bars", tz: str | None = None, first_line: int | None = None,
               exchange: str = DEFAULT_EXCHANGE) -> tuple[pd.DataFrame, RepairReport]:
    """Validate and repair bars: timestamps in the exchange's zone, every cell a number, sorted, unique,
    OHLC-consistent, no price step over MAX_STEP.

    Returns the clean frame (columns timestamp, open, high, low, close, volume, filled) and the report.
    `first_line` is the file line of data row 0 (CSV), so that errors name the line a person can open.
    Idempotent: cleaning a clean frame changes nothing and reports nothing.
    """
    report = RepairReport(source)
    where = (lambda i: f"{source} line {i + first_line}") if first_line else (lambda i: f"{source} row {i}")
    exchange = exchange_name(exchange)
    if len(df) == 0:
        raise DataError(f"{source}: no bars (a header line only?); fix: write one row per bar under the header")
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
    zone = exchange_zone(exchange)
    out = pd.DataFrame({"timestamp": _timestamps(df["timestamp"].reset_index(drop=True), where, tz, zone, exchange)})
    for col in (*PRICES, "volume"):
        out[col] = _numbers(df[col].reset_index(drop=True), col, where)
    out["filled"] = (_numbers(df["filled"].reset_index(drop=True), "filled", where, nan=0.0).astype(np.int8)
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
    out = _drop_missing(out, report)
    _check_values(out, where)
    out = out.drop(columns="_row")
    out.attrs.update(source=source, repairs=report.as_dict(), symbol=symbol, exchange=exchange)
    return out, report


def _numbers(col: pd.Series, name: str, where, nan: float = np.nan) -> np.ndarray:
    """A column as float64; a cell that is neither a number nor empty is an error naming row and column."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        num = pd.to_numeric(col, errors="coerce")
        bad = (col.notna() & num.isna()).to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{where(i)}: {name} is {col.iloc[i]!r}, not a number; fix: correct the cell "
                            f"(an empty cell marks a missing value)")
        values = num.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(values), nan, values)


def _timestamps(col: pd.Series, where, tz: str | None, zone: str, exchange: str) -> pd.Series:
    """Parse a timestamp column to tz-aware time in `zone`. Naive values need an explicit `tz` (date-only
    values are session dates, read in `zone`); a column that mixes naive and aware values is an error."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert(zone)
    if pd.api.types.is_numeric_dtype(col):  # epoch numbers: seconds or ms or ns is a guess we will not make
        raise DataError(f"{where(0)}: numeric timestamp {col.iloc[0]!r}; fix: convert it, e.g. "
                        f"pd.to_datetime(df.timestamp, unit='s', utc=True), and write ISO 8601 with an offset")
    if not pd.api.types.is_datetime64_dtype(col):
        strings = isinstance(col.dtype, pd.StringDtype) or col.map(lambda v: isinstance(v, str)).all()
        aware = (col.str.contains(OFFSET, regex=True, na=False) if strings
                 else col.map(lambda v: getattr(v, "tzinfo", None) is not None)).to_numpy(bool)
        if aware.any() and not aware.all():
            i = int(np.argmax(~aware if aware.mean() >= 0.5 else aware))
            if pd.isna(pd.to_datetime(col.iloc[i], errors="coerce")):
                raise DataError(f"{where(i)}: unreadable timestamp {col.iloc[i]!r}; fix: write ISO 8601, "
                                f"e.g. {EXAMPLE_STAMP}")
            raise DataError(f"{where(i)}: timestamp {str(col.iloc[i])!r} is {'naive' if not aware[i] else 'aware'} "
                            f"among {'aware' if not aware[i] else 'naive'} ones; a file mixes zones only by mistake; "
                            f"fix: write every timestamp with its UTC offset")
        col = _parse(col, where, utc=bool(aware.all()))
    if col.isna().any():
        i = int(np.argmax(col.isna().to_numpy()))
        raise DataError(f"{where(i)}: missing timestamp; fix: drop the row or fill in its time")
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert(zone)
    if (col == col.dt.normalize()).all():  # dates only: a date names a session of the exchange, in any zone
        tz = zone
    elif tz is None:
        raise DataError(f"{where(0)}: naive timestamp {str(col.iloc[0])!r} (no time zone); fix: pass "
                        f"tz='{zone}' (the {exchange} zone) if that is where it was recorded, "
                        f"or write offsets, e.g. -05:00")
    try:
        col = col.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    except Exception as e:  # noqa: BLE001  unknown zone name, or a wall time that does not exist / repeats there
        raise DataError(f"{where(0)}: cannot place naive timestamps in zone {tz!r} ({_first_line(e)}); "
                        f"fix: pass a valid IANA zone or write UTC offsets in the file") from None
    return col.dt.tz_convert(zone)


def _parse(col: pd.Series, where, utc: bool) -> pd.Series:
    try:
        return pd.to_datetime(col, utc=utc)
    except (ValueError, TypeError):
        try:  # mixed UTC offsets (e.g. -05:00 and -04:00 across a DST change) or formats
            return pd.to_datetime(col, utc=utc, format="mixed")
        except (ValueError, TypeError):
            bad = (pd.to_datetime(col, errors="coerce", utc=True, format="mixed").isna() & col.notna()).to_numpy()
            i = int(np.argmax(bad))
            raise DataError(f"{where(i)}: unreadable timestamp {col.iloc[i]!r}; fix: write ISO 8601, "
                            f"e.g. {EXAMPLE_STAMP}") from None


def _drop_missing(out: pd.DataFrame, report: RepairReport) -> pd.DataFrame:
    """A bar with a missing price is no bar: dropped here, its minute filled later like any missing minute
    (and counted against the session's fill limit). A missing volume becomes 0."""
    nan_volume = out["volume"].isna().to_numpy()
    if nan_volume.any():
        out.loc[nan_volume, "volume"] = 0.0
        report.add("nan_volume", int(nan_volume.sum()), "set to 0")
    nan = out[list(PRICES)].isna().any(axis=1).to_numpy()
    if nan.any():
        first = out["timestamp"].iloc[int(np.argmax(nan))]
        out = out[~nan].reset_index(drop=True)
        report.add("bars_missing_price_dropped", int(nan.sum()), f"first at {first}; their minutes are filled")
    return out


def _check_values(out: pd.DataFrame, where) -> None:
    """Prices finite and > 0, volume finite and ≥ 0, low ≤ open, close ≤ high, no step over MAX_STEP."""
    o, h, lo, c = (out[p].to_numpy() for p in PRICES)
    row = lambda i: where(int(out.at[i, "_row"]))  # noqa: E731
    vals = lambda i: ", ".join(f"{p}={out.at[i, p]:g}" for p in PRICES)  # noqa: E731
    if len(out) == 0:
        return
    bad = ((np.stack([o, h, lo, c]) <= 0) | ~np.isfinite(np.stack([o, h, lo, c]))).any(axis=0)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{row(i)}: non-positive or infinite price ({vals(i)}); fix: correct or drop this row "
                        f"(prices must be > 0; back-adjust splits/dividends multiplicatively)")
    v = out["volume"].to_numpy()
    if (v < 0).any() or not np.isfinite(v).all():
        i = int(np.argmax((v < 0) | ~np.isfinite(v)))
        raise DataError(f"{row(i)}: volume {v[i]:g}; fix: correct the row (volume must be finite and >= 0; 0 is "
                        f"allowed)")
    inconsistent = (lo > np.minimum(o, c)) | (h < np.maximum(o, c)) | (lo > h)
    if inconsistent.any():
        i = int(np.argmax(inconsistent))
        raise DataError(f"{row(i)}: inconsistent bar ({vals(i)}): low <= open, close <= high must hold; fix: "
                        f"correct the row (a corrupt file? read it again from the source)")
    # after the OHLC check, high and low bound the bar: compare them with the previous close (the next open
    # for row 0). A flipped exponent bit or an unadjusted split moves a price by far more than a real bar does.
    ref = np.concatenate([o[1:2] if len(o) > 1 else o[:1], c[:-1]])
    step = np.maximum(h / ref, ref / lo)
    if (step > MAX_STEP).any():
        i = int(np.argmax(step > MAX_STEP))
        against = "the next bar's open" if i == 0 else "the previous close"
        raise DataError(f"{row(i)}: prices ({vals(i)}) are {step[i]:.3g}x away from {against} {ref[i]:g}, more "
                        f"than {MAX_STEP:g}x in one bar; fix: correct the row (a corrupt cell?) or back-adjust "
                        f"splits multiplicatively")


# ---------------------------------------------------------------- the shape of a file


def check_minute_interval(bars: pd.DataFrame, source: str) -> None:
    """Minute bars are stamped on whole minutes, one minute apart: the greatest common divisor of the steps
    between bars of one date is the file's interval (missing bars make longer steps, not another interval)."""
    ts = bars["timestamp"]
    t = ts.dt.as_unit("ns").astype("int64").to_numpy()  # (n,) ns
    off_minute = t % (60 * 10**9) != 0
    dates = local_dates(ts)
    same_date = dates[1:] == dates[:-1]
    steps = np.diff(t // 10**9)[same_date]  # (m,) seconds
    if len(steps) == 0:
        raise DataError(f"{source}: one bar per date, no minute bars; fix: is this the daily file? Pass the "
                        f"one-minute bars as the minute file")
    interval = int(np.gcd.reduce(steps))
    if interval < 60 and off_minute.mean() >= 0.5:  # half the bars or more between minutes: finer bars
        raise DataError(f"{source}: bars are {_duration(interval)} apart, the model reads one-minute bars; fix: "
                        f"resample to one minute, e.g. {RESAMPLE}")
    if off_minute.any():  # a few stray stamps, or every stamp shifted off the minute
        i = int(np.argmax(off_minute))
        raise DataError(f"{source}: minute bar at {ts.iloc[i]} is not on a whole minute; fix: stamp each bar with "
                        f"its opening minute (e.g. 09:30:00 for 09:30–09:31)")
    if interval > 60:
        raise DataError(f"{source}: bars are {_duration(interval)} apart, the model reads one-minute bars; fix: use "
                        f"one-minute bars (coarser bars cannot be split into minutes without inventing them)")


def check_daily(bars: pd.DataFrame, source: str) -> None:
    """A daily file has a bar per session date (two on a date are repaired later); more is an intraday file."""
    dates, counts = np.unique(local_dates(bars["timestamp"]), return_counts=True)
    if len(counts) and counts.max() > 2:
        date, n = dates[int(np.argmax(counts))], int(counts.max())
        raise DataError(f"{source}: {n} bars on {date}; fix: is this the minute file? Pass daily bars, one per "
                        f"session")


def _duration(seconds: int) -> str:
    for unit, n in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % n == 0:
            k = seconds // n
            return f"{k} {unit}{'s' if k != 1 else ''}"
    return f"{seconds} s" if seconds < 60 else f"{math.floor(seconds / 60)} min {seconds % 60} s"
