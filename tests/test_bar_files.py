"""File defects: each one line naming the file (and row, column) and the fix; none passes silently, none
ends in a traceback. Bars are real-shaped: every trading minute of XLON sessions from the calendar."""

import gzip
import re

import numpy as np
import pandas as pd
import pytest
from calendar_bars import calendar_market

from model_src.bars import PRICES, read_bars
from model_src.data import build_samples
from model_src.errors import DataError

pyarrow = pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def london():
    return calendar_market("XLON", "2024-11-01", "2024-11-08", seed=2)  # 6 sessions, 3060 bars


def _csv(tmp_path, df, name="bars.csv"):
    out = df.assign(timestamp=df["timestamp"].map(lambda t: t.isoformat()))
    out.to_csv(tmp_path / name, index=False)
    return tmp_path / name


def _refused(path, match, **kw):
    with pytest.raises(DataError, match=match) as e:
        read_bars(path, exchange="XLON", **kw)
    assert "\n" not in str(e.value) and "fix:" in str(e.value)
    return str(e.value)


def test_empty_and_header_only_files(tmp_path, london):
    (tmp_path / "empty.csv").write_bytes(b"")
    _refused(tmp_path / "empty.csv", r"empty\.csv: empty file \(0 bytes\)")
    (tmp_path / "empty.parquet").write_bytes(b"")
    _refused(tmp_path / "empty.parquet", r"empty\.parquet: empty file")
    (tmp_path / "header.csv").write_text("timestamp,open,high,low,close,volume\n")
    _refused(tmp_path / "header.csv", r"header\.csv: no bars \(a header line only\?\)")
    london[1].iloc[:0].to_parquet(tmp_path / "header.parquet")
    _refused(tmp_path / "header.parquet", r"header\.parquet: no bars")
    (tmp_path / "blank.csv").write_text("\n\n")
    _refused(tmp_path / "blank.csv", r"blank\.csv: not a readable CSV")


def test_truncated_and_corrupt_files(tmp_path, london):
    _, minute = london
    minute.to_parquet(tmp_path / "whole.parquet")
    data = (tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "cut.parquet", r"cut\.parquet: not a readable Parquet file, corrupt or truncated")
    text = _csv(tmp_path, minute).read_bytes()
    cut = text.index(b"\n", len(text) // 2) + 12  # inside a timestamp
    (tmp_path / "cut.csv").write_bytes(text[:cut])
    line = text[:cut].count(b"\n") + 1
    _refused(tmp_path / "cut.csv", rf"cut\.csv line {line}: the last line is incomplete and the file does not end "
                                   r"with a line break: a truncated copy\?; fix: copy")
    (tmp_path / "bars.csv.gz").write_bytes(gzip.compress(text)[:-40])  # a gzip stream without its end
    _refused(tmp_path / "bars.csv.gz", r"bars\.csv\.gz: not a readable CSV")


def test_misnamed_files(tmp_path, london):
    daily, minute = london
    minute.to_parquet(tmp_path / "parquet.csv")
    _refused(tmp_path / "parquet.csv", r"parquet\.csv: a Parquet file named \.csv; fix: rename it to \.parquet")
    _csv(tmp_path, minute, "csv.parquet")
    _refused(tmp_path / "csv.parquet", r"csv\.parquet: not a Parquet file \(no PAR1 header; it looks text, CSV\?\)")
    with pytest.raises(DataError, match=r"one bar per date, no minute bars; fix: is this the daily file\?"):
        build_samples(daily, daily, exchange="XLON")  # the daily file passed as the minute file
    with pytest.raises(DataError, match=r"510 bars on 2024-11-01; fix: is this the minute file\?"):
        build_samples(minute, minute, exchange="XLON")


@pytest.mark.parametrize(("column", "cell"), [("close", "abc"), ("volume", "not a volume"), ("open", "1,234.5")])
def test_a_cell_that_is_not_a_number_is_an_error(tmp_path, london, column, cell):
    bad = london[1].astype({column: object})
    bad.loc[100, column] = cell
    _refused(_csv(tmp_path, bad), rf"bars\.csv line 102: {column} is '{cell}', not a number; fix: correct the cell")


@pytest.mark.parametrize(("column", "factor", "match"), [
    ("high", 0.99, r"line 302: inconsistent bar .*low <= open, close <= high must hold"),  # high below the close
    ("low", 1.02, r"line 302: inconsistent bar"),  # low above the open
    ("close", 1e129, r"line 302: inconsistent bar"),  # an exponent flipped: above the high
    ("low", -1.0, r"line 302: non-positive or infinite price"),
])
def test_a_bar_that_cannot_be_a_bar_is_an_error(tmp_path, london, column, factor, match):
    bad = london[1].copy()
    bad.loc[300, column] *= factor
    _refused(_csv(tmp_path, bad), match)


def test_a_price_step_no_market_makes_in_a_minute_is_an_error(tmp_path, london):
    bad = london[1].copy()
    bad.loc[300, list(PRICES)] *= 1e129  # a consistent bar, 1e129 times the last close
    _refused(_csv(tmp_path, bad), r"line 302: prices .* are 1e\+129x away from the previous close .* more than 10x")
    first = london[1].copy()
    first.loc[0, ["high", "close"]] *= 50  # the first bar is held against the next bar's open
    _refused(_csv(tmp_path, first), r"line 2: prices .*x away from the next bar's open")


def test_naive_among_aware_timestamps_is_an_error(tmp_path, london):
    path = _csv(tmp_path, london[1])
    lines = path.read_text().splitlines()
    lines[41] = lines[41].replace("+00:00", "", 1)  # line 42: one naive timestamp among aware ones
    path.write_text("\n".join(lines) + "\n")
    _refused(path, r"bars\.csv line 42: timestamp '2024-11-01T08:40:00' is naive among aware ones; .* fix: write "
                   r"every timestamp with its UTC offset")
    _refused(path, r"line 42: .* is naive among aware ones", tz="Europe/London")  # no tz makes a mix right


@pytest.mark.parametrize("cell", ["yesterday", "2024-13-45T08:00:00+00:00"])
def test_an_unreadable_timestamp_names_its_line(tmp_path, london, cell):
    bad = london[1].assign(timestamp=london[1]["timestamp"].map(lambda t: t.isoformat()))
    bad.loc[7, "timestamp"] = cell
    bad.to_csv(tmp_path / "bars.csv", index=False)
    _refused(tmp_path / "bars.csv", rf"bars\.csv line 9: unreadable timestamp '{re.escape(cell)}'; fix: write ISO 8601")


@pytest.mark.parametrize(("freq", "match"), [
    ("5min", r"bars are 5 minutes apart, the model reads one-minute bars; fix: use one-minute bars"),
    ("30s", r"bars are 30 s apart, the model reads one-minute bars; fix: resample to one minute, e\.g\. df\.resample"),
])
def test_the_bar_interval_is_measured(london, freq, match):
    daily, minute = london
    ts = minute["timestamp"]
    if freq == "5min":
        bars = minute[(ts.dt.minute % 5 == 0).to_numpy()]
    else:  # every minute split in two
        bars = pd.concat([minute, minute.assign(timestamp=ts + pd.Timedelta(seconds=30))]).sort_values("timestamp")
    with pytest.raises(DataError, match=match):
        build_samples(daily, bars, exchange="XLON")


def _flip(data: bytes, rng, n=4) -> bytes:
    b = bytearray(data)
    for pos in rng.choice(len(b), n, replace=False):
        b[pos] ^= int(rng.integers(1, 256))
    return bytes(b)


@pytest.mark.parametrize("checksums", [False, True])
def test_flipped_bytes_in_parquet_never_pass_a_check_silently(tmp_path, london, checksums):
    """40 trials of 4 random bytes flipped. Without page checksums some flips change a value by a few ulp,
    which no check can see; every flip that an OHLC or step check would see is refused, and nothing ends in
    a traceback. With page checksums (write_page_checksum=True) no changed value gets through."""
    _, minute = london
    good = tmp_path / "good.parquet"
    minute.to_parquet(good, write_page_checksum=checksums)
    data, rng, refused, changed = good.read_bytes(), np.random.default_rng(0), 0, 0
    cols = [*PRICES, "volume"]
    for _ in range(40):
        bad = tmp_path / "bad.parquet"
        bad.write_bytes(_flip(data, rng))
        try:
            got = read_bars(bad, exchange="XLON")
        except DataError as e:
            assert "\n" not in str(e)
            refused += 1
            continue
        raw = pd.read_parquet(bad)  # what pyarrow decoded, before any check
        o, h, lo, c = (raw[p].to_numpy() for p in PRICES)
        assert ((lo <= np.minimum(o, c)) & (h >= np.maximum(o, c))).all()  # read_bars passed only consistent bars
        same = len(got) == len(minute) and np.array_equal(got[cols].to_numpy(), minute[cols].to_numpy())
        changed += not same
    assert refused >= 30
    if checksums:
        assert changed == 0
