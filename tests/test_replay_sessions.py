"""Sessions of any length, end to end: a small model configured for 510 minutes exports, verifies and replays a
London session (and a 330-minute Hong Kong session around its lunch break) through `hrm-export run`; a model or a
profile too short for the session is refused in one line that says what to configure. Bars are generated from
the exchange calendars (tests/calendar_bars.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from calendar_bars import calendar_market
from cli_run import assert_one_line_error, hrm_export
from runtime_bundle import tiny_bundle, tiny_runtime_model

from hrm_export.runtime import HRMRuntime
from hrm_export.runtime.replay import load_day, replay
from model_src.data import RepairPolicy, session_sample

LONDON_PROFILE = """name = "london"
description = "one XLON session: 510 minutes"
[axes]
batch = [1, 1, 2]
days = [1, 16, 16]
minutes = [1, 510, 510]
new_minutes = [1, 1, 510]
past_minutes = [0, 509, 509]
"""


def write_market(directory: Path, exchange: str, seed: int) -> tuple[Path, Path]:
    daily, minute = calendar_market(exchange, "2024-10-02", "2024-11-08", seed=seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / f"{exchange}_daily.csv", directory / f"{exchange}_1min.csv"
    daily.to_csv(paths[0], index=False)
    minute.to_csv(paths[1], index=False)
    return paths


@pytest.fixture(scope="module")
def london_bundle(tmp_path_factory) -> Path:
    """A tiny model with max_minutes=510 and max_days=16, exported with a 510-minute profile and one that stops at
    390 minutes."""
    from hrm_export.export.bundle import export_bundle
    from model_src.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("london")
    (root / "london.toml").write_text(LONDON_PROFILE)
    short = LONDON_PROFILE.replace('"london"', '"short"').replace("510, 510", "390, 390")
    short = short.replace("509, 509", "389, 389")
    (root / "short.toml").write_text(short)
    save_checkpoint(tiny_runtime_model(max_minutes=510, max_days=16), root / "m510.safetensors")
    export_bundle(root / "m510.safetensors", root / "bundle", profiles=[root / "london.toml", root / "short.toml"])
    return root / "bundle"


@pytest.fixture(scope="module")
def markets(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("bars")
    return {ex: write_market(root, ex, seed) for seed, ex in enumerate(("XLON", "XHKG", "XNYS"))}


def test_the_510_minute_model_verifies(london_bundle):
    from hrm_export.verify.bundle import verify_bundle

    report = verify_bundle(london_bundle, backend="ort-cpu", precision="fp32", n_random=0)
    assert report.passed, report.to_dict()
    assert max(r.shape[1] for r in report.rows if r.scope == "l_module") == 510  # a whole London session


@pytest.mark.parametrize("exchange, minutes, lunch", [("XLON", 510, None), ("XHKG", 330, "12:00–13:00")])
def test_run_replays_the_last_complete_session_at_its_own_length(london_bundle, markets, exchange, minutes, lunch):
    days_csv, minutes_csv = markets[exchange]
    r = hrm_export("run", london_bundle, "--days", days_csv, "--minutes", minutes_csv, "--exchange", exchange,
                   "--backend", "ort-cpu", "--json")
    assert r.code == 0, r.err[-2000:]
    lines = [json.loads(line) for line in r.out.splitlines()]  # strict JSON, every line
    summary = lines[-1]["summary"]
    assert summary["exchange"] == exchange and summary["date"] == "2024-11-08"
    assert summary["session_minutes"] == minutes == summary["minutes"] == len(lines) - 1
    assert (f"break {lunch}" in summary["session"]) == (lunch is not None)
    assert summary["repairs"]["filled"] == {"at_open": 0, "inside": 0, "at_close": 0}
    assert summary["repairs_line"].startswith(f"{exchange} 2024-11-08: {minutes} bars for {minutes} minutes")
    assert 0 <= summary["halt_minute"][0] <= minutes - 1  # the close (its last minute) always commits
    # the streamed decisions are those of one full pass over session_sample's tokens of that session
    s = session_sample(days_csv, minutes_csv, exchange=exchange, max_minutes=510, max_days=16)
    with HRMRuntime.open(london_bundle, backend="torch") as rt:
        full = rt.run_day(s.days[None], s.minutes[None], session_minutes=s.facts.minutes)
    assert [row["action"] for row in lines[:-1]] == [["short", "flat", "long"][a] for a in full.action[0]]
    assert summary["halt_minute"] == full.halt_minute.tolist()


def test_the_hong_kong_lunch_break_is_dropped_and_reported(london_bundle, markets, tmp_path):
    import pandas as pd

    days_csv, minutes_csv = markets["XHKG"]
    minute = pd.read_csv(minutes_csv)
    lunch = minute.iloc[-200:-199].assign(timestamp="2024-11-08 12:30:00+08:00")  # a bar inside the break
    pd.concat([minute, lunch]).to_csv(tmp_path / "hk.csv", index=False)
    r = hrm_export("run", london_bundle, "--days", days_csv, "--minutes", tmp_path / "hk.csv", "--exchange", "XHKG",
                   "--backend", "ort-cpu", "--full", "--json")
    assert r.code == 0, r.err[-2000:]
    summary = json.loads(r.out.splitlines()[-1])["summary"]
    assert summary["repairs"]["dropped"]["in_break"] == 1 and summary["minutes"] == 330
    assert summary["file_repairs"]["unsorted_rows"] == 1  # the file-level repair (sorting) is reported too


def test_a_model_configured_for_390_minutes_is_refused_with_what_to_configure(markets):
    r = hrm_export("run", tiny_bundle(), "--days", markets["XLON"][0], "--minutes", markets["XLON"][1],
                   "--exchange", "XLON", "--backend", "ort-cpu")
    assert_one_line_error(r, "510 minutes", "max_minutes=510")


def test_a_profile_shorter_than_the_session_is_refused_with_what_to_configure(london_bundle, markets):
    r = hrm_export("run", london_bundle, "--days", markets["XLON"][0], "--minutes", markets["XLON"][1],
                   "--exchange", "XLON", "--backend", "ort-cpu", "--profile", "short")  # minutes up to 390
    assert_one_line_error(r, "510 minutes", "profile 'short'", "admits 390", "profile whose minutes reach 510")


def test_a_partial_session_is_refused_unless_the_user_opts_in(london_bundle, markets, tmp_path):
    import pandas as pd

    days_csv, minutes_csv = markets["XLON"]
    minute = pd.read_csv(minutes_csv)
    minute.iloc[:-200].to_csv(tmp_path / "partial.csv", index=False)  # 2024-11-08 stops at 13:10
    args = ("run", london_bundle, "--days", days_csv, "--minutes", tmp_path / "partial.csv", "--exchange", "XLON",
            "--backend", "ort-cpu", "--json")
    r = hrm_export(*args)  # by default the last complete session: the day before
    assert r.code == 0 and json.loads(r.out.splitlines()[-1])["summary"]["date"] == "2024-11-07"
    r = hrm_export(*args, "--date", "2024-11-08")
    assert_one_line_error(r, "partial session", "opt in")
    r = hrm_export(*args, "--date", "2024-11-08", "--allow-over-limit")
    assert r.code == 0, r.err[-2000:]
    summary = json.loads(r.out.splitlines()[-1])["summary"]
    assert summary["minutes"] == 310 and summary["session_minutes"] == 510 and summary["repairs"]["partial"]
    # the day's close is still 16:30 (minute 509): nothing is made to halt at the last bar, minute 309
    s = session_sample(days_csv, tmp_path / "partial.csv", exchange="XLON", date="2024-11-08", max_minutes=510,
                       max_days=16, policy=RepairPolicy(allow_over_limit=True))
    with HRMRuntime.open(london_bundle, backend="torch") as rt:
        tl = rt.run_day(s.days[None], s.minutes[None], session_minutes=510)
    wins = np.flatnonzero(tl.q_halt[0] > tl.q_continue[0])  # a halt only where q_halt won, or none yet
    assert summary["halt_minute"] == tl.halt_minute.tolist() == [int(wins[0]) if len(wins) else -1]


def test_push_bars_streams_a_half_day_and_a_lunch_break_at_their_own_lengths(london_bundle):
    """push_bars computes the time of day over the session's own length: the tokens and decisions of a streamed
    XNYS half day (210 minutes) and an XHKG day (330) equal session_sample's."""
    rt = HRMRuntime.open(london_bundle, backend="torch")
    for exchange, date, n in (("XNYS", "2024-11-29", 210), ("XHKG", "2024-11-08", 330)):
        daily, minute = calendar_market(exchange, "2024-10-02", "2024-12-02", seed=7)
        s = session_sample(daily, minute, exchange=exchange, date=date, max_minutes=510, max_days=16)
        assert s.facts.minutes == n == s.minutes.shape[0]
        bars = minute[minute["timestamp"].dt.date.astype(str) == date]
        cols = {f: bars[f].to_numpy() for f in ("open", "high", "low", "close", "volume")}
        full = rt.run_day(s.days[None], s.minutes[None], session_minutes=n)
        session = rt.session().start_day(s.days[None], prev_close=[s.prev_close], session_minutes=n)
        for t in range(0, n, 30):
            d = session.push_bars({f: v[t:t + 30] for f, v in cols.items()}, start_minute=t)
            np.testing.assert_array_equal(d.action, full.at(min(t + 29, n - 1)).action)
        assert session.last.halted.all() and np.array_equal(session.halt_minute, full.halt_minute)
    rt.close()


def test_the_python_api_reports_the_sessions_repairs(london_bundle, markets):
    day = load_day(*markets["XLON"], exchange="XLON", max_minutes=510, max_days=16)
    assert day.label == "2024-11-08" and day.facts.exchange == "XLON" and day.session_minutes == 510
    assert day.report.filled == 0 and day.report.bars == 510 and day.summary()["repairs"]["partial"] is False
    with HRMRuntime.open(london_bundle, backend="torch") as rt:
        assert replay(rt, day, stream=False).minutes == 510
