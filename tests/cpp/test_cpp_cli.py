"""hrm_run against `hrm-export run --json` on the same bundle and inputs (fp32 and int8-cpu), its bad-input
behaviour (one error line, one hint, exit 1), and its --bench output (hrm-export bench's field names)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess

import numpy as np
import pytest
from bundle_tools import edit_manifest
from cpp_fixtures import SESSION
from typer.testing import CliRunner

from hrm_export.cli import app
from hrm_export.core.timing import Timing
from model_src.decisions import ACTIONS


def _hrm_run(build, *args, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(build / "hrm_run"), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def _rule_rows(folder) -> list[dict]:
    """The rows `hrm-export run --json` prints (Timeline.rows), made from the fixture's Python heads with the
    decisions of model_src.decisions: what every runtime must print for this day."""
    d = {n: np.load(folder / f"{n}.npy") for n in ("action", "confidence", "quantity", "q_values", "halted")}
    B, T = d["action"].shape
    return [{"minute": t, "instrument": b, "action": ACTIONS[int(d["action"][b, t])],
             "confidence": round(float(d["confidence"][b, t]), 6), "quantity": round(float(d["quantity"][b, t]), 6),
             "q_halt": round(float(d["q_values"][b, t, 0]), 6), "q_continue": round(float(d["q_values"][b, t, 1]), 6),
             "halted": bool(d["halted"][b, t])} for t in range(T) for b in range(B)]


@pytest.mark.parametrize(("precision", "mode"), [("fp32", "stream"), ("int8-cpu", "stream"), ("fp32", "full")])
def test_hrm_run_prints_what_hrm_export_run_prints(cpp_build, cpp_fixtures, precision, mode):
    f = cpp_fixtures
    args = [f / "bundle", "--days", f / "days.npy", "--minutes", f / "minutes.npy", "--backend", "ort-cpu",
            "--precision", precision, "--json", *(["--full"] if mode == "full" else [])]
    cpp = [json.loads(line) for line in _hrm_run(cpp_build, *args).stdout.splitlines()]
    result = CliRunner().invoke(app, ["run", *map(str, args)])
    assert result.exit_code == 0, result.output
    py = [json.loads(line) for line in result.stdout.splitlines()]
    rule = _rule_rows(f / "expected" / precision / ("run_day" if mode == "full" else "stream"))
    assert len(cpp) == len(py) == len(rule) + 1 == 4 * SESSION + 1

    # Every row is the rule applied to the heads, to the last printed digit — and what hrm-export run prints.
    assert cpp[:-1] == rule
    assert cpp[:-1] == py[:-1]

    summary_cpp, summary_py = cpp[-1]["summary"], py[-1]["summary"]
    assert sorted(summary_cpp) == sorted(summary_py)
    for key in ("bundle", "backend", "precision", "why", "instruments", "minutes", "mode"):
        assert summary_cpp[key] == summary_py[key], key
    assert summary_cpp["halt_minute"] == [0, 157, 389, 389]
    stage = "run_day_ms" if mode == "full" else "push_ms"
    assert sorted(summary_cpp[stage]) == sorted(summary_py[stage]) == ["max_ms", "p50_ms", "p99_ms"]


def test_bad_input_is_one_error_line_and_a_hint(cpp_build, cpp_fixtures, tmp_path):
    f = cpp_fixtures
    minutes = np.load(f / "minutes.npy")
    minutes[0, 3, 2] = np.nan
    np.save(tmp_path / "nan.npy", minutes)
    np.save(tmp_path / "ints.npy", np.zeros((4, 390, 11), dtype=np.int64))
    bundle = shutil.copytree(f / "bundle", tmp_path / "bundle")
    (bundle / "h_module.onnx").write_bytes((bundle / "h_module.onnx").read_bytes()[:-10])
    short = shutil.copytree(f / "bundle", tmp_path / "short")  # token_ranges.days with 3 of its 8 features
    edit_manifest(short, lambda d: d["token_ranges"].update(days=dict(list(d["token_ranges"]["days"].items())[:3])))
    cases = {
        "no such file": [f / "bundle", "--days", f / "days.npy", "--minutes", tmp_path / "nope.npy"],
        "minutes: non-finite value nan at instrument 0, step 3, feature 2":
            [f / "bundle", "--days", f / "days.npy", "--minutes", tmp_path / "nan.npy"],
        "dtype <i8 is not little-endian float32 or float64":
            [f / "bundle", "--days", f / "days.npy", "--minutes", tmp_path / "ints.npy"],
        "h_module.onnx: sha256": [bundle, "--days", f / "days.npy", "--minutes", f / "minutes.npy"],
        "token_ranges.days is not 8 [low, high] pairs, one per feature":
            [short, "--days", f / "days.npy", "--minutes", f / "minutes.npy"],
        "unknown option --fast": [f / "bundle", "--fast"],
        "--step 0: expected a positive integer": [f / "bundle", "--step", "0"],
        "unknown backend 'torch'": [f / "bundle", "--days", f / "days.npy", "--minutes", f / "minutes.npy",
                                    "--backend", "torch"],
    }
    for fragment, args in cases.items():
        done = _hrm_run(cpp_build, *args, check=False)
        lines = done.stderr.splitlines()
        assert done.returncode == 1, (fragment, done.stderr)
        assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), lines
        assert fragment in lines[0], (fragment, lines)
        assert done.stdout == ""


def test_tokens_outside_their_range_are_refused_as_python_refuses_them(cpp_build, cpp_fixtures, tmp_path):
    """The bundle's token_ranges hold in C++ too: a value outside its feature's range is one error line, in the
    words of `hrm-export run`, and nothing is decided."""
    f = cpp_fixtures
    minutes = np.load(f / "minutes.npy")
    minutes[0, 7, 8] = 5.0  # tod_sin lives in [-1, 1]
    np.save(tmp_path / "wide.npy", minutes)
    args = [f / "bundle", "--days", f / "days.npy", "--minutes", tmp_path / "wide.npy", "--backend", "ort-cpu"]
    done = _hrm_run(cpp_build, *args, check=False)
    py = CliRunner().invoke(app, ["run", *map(str, args)])
    assert done.returncode == py.exit_code == 1 and done.stdout == "", done.stderr
    errors = [x for x in done.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    line = errors[0]
    assert line == ("error: minutes: value 5 at instrument 0, session minute 7, feature 8 (tod_sin) is outside the "
                    "feature's valid range [-1, 1] (1 value(s) outside)"), line
    assert str(py.exception).endswith(line.removeprefix("error: ")), py.exception  # Python names the file first


def test_bench_prints_hrm_export_bench_cells(cpp_build, cpp_fixtures):
    f = cpp_fixtures
    out = _hrm_run(cpp_build, f / "bundle", "--days", f / "days.npy", "--minutes", f / "minutes.npy",
                   "--backend", "ort-cpu", "--bench", "--seconds", "0.2").stdout
    report = json.loads(out)
    cells = {(c["module"], c["seq"]): c for c in report["cells"]}
    assert sorted(cells) == [("push", 0), ("push", SESSION - 1), ("run_day", SESSION)]
    for c in cells.values():
        assert {"backend", "precision", "device", "device_class", "module", "batch", "seq", "seq_axis",
                "timing"} <= set(c)
        assert set(c["timing"]) == {f.name for f in dataclasses.fields(Timing)}
        t = c["timing"]
        assert t["iterations"] >= 3 and 0 < t["min_ms"] <= t["p50_ms"] <= t["p99_ms"] <= t["max_ms"]


def test_the_documented_example_is_the_built_one_and_runs(cpp_build, cpp_fixtures):
    root = cpp_build.parent.parent
    doc = (root / "docs" / "cpp.md").read_text()
    block = doc.split("### Example", 1)[1].split("```cpp\n", 1)[1].split("```", 1)[0]
    assert block == (root / "cpp" / "examples" / "stream_day.cpp").read_text()
    done = subprocess.run([str(cpp_build / "hrm_example"), str(cpp_fixtures / "bundle")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # zero tokens: the fixture's halting feature is 0, q_halt never beats q_continue, the close commits
    assert done.stdout.splitlines()[0].startswith(f"minute {SESSION - 1}: ") and "(halted)" in done.stdout


def test_hrm_run_opens_a_bundle_with_the_static_step(cpp_build, cpp_fixtures):
    """A bundle from today's export carries l_step_static, which the C++ runtime does not run: it opens the
    bundle (every artifact hashed) and streams through l_step."""
    from parity_bundle import tiny_bundle

    f = cpp_fixtures
    bundle = tiny_bundle()
    assert (bundle / "l_step_static.onnx").is_file()
    done = _hrm_run(cpp_build, bundle, "--days", f / "days.npy", "--minutes", f / "minutes.npy", "--backend", "ort-cpu",
                    "--json")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows[-1]["summary"]["mode"] == "stream" and len(rows) == 4 * SESSION + 1


@pytest.mark.parametrize("mode", ["stream", "full"])
def test_a_half_day_halts_at_its_own_close_as_hrm_export_run_does(cpp_build, cpp_fixtures, tmp_path, mode):
    """A 210-minute session (an early close): an instrument that never halted halts at minute 209, in C++ as in
    Python; with --session-minutes 390 the same minutes are a morning, and nothing halts at 209."""
    f = cpp_fixtures
    np.save(tmp_path / "half.npy", np.load(f / "minutes.npy")[:, :210])
    base = [f / "bundle", "--days", f / "days.npy", "--minutes", tmp_path / "half.npy", "--backend", "ort-cpu",
            "--json", *(["--full"] if mode == "full" else [])]
    for extra, halts in (([], [0, 157, 209, 209]), (["--session-minutes", "390"], [0, 157, -1, -1])):
        args = [*base, *extra]
        cpp = [json.loads(line) for line in _hrm_run(cpp_build, *args).stdout.splitlines()]
        result = CliRunner().invoke(app, ["run", *map(str, args)])
        assert result.exit_code == 0, result.output
        py = [json.loads(line) for line in result.stdout.splitlines()]
        assert cpp[:-1] == py[:-1]
        assert cpp[-1]["summary"]["halt_minute"] == py[-1]["summary"]["halt_minute"] == halts
        assert cpp[-1]["summary"]["session_minutes"] == py[-1]["summary"]["session_minutes"] == (390 if extra else 210)
