"""hrm-export bench on a tiny bundle: timing math, the gate (incl. a deliberately too-tight budget that must trip),
the JSON report, the PNG plot and the memory table. Few iterations: these check the machinery, not the speed."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hrm_export.bench.gate import FAIL, NOT_APPLICABLE, NOT_MEASURED, PASS, evaluate
from hrm_export.bench.memory import artifact_sizes, parameter_bytes
from hrm_export.bench.suite import SCHEMA, SOLO_BATCH, SuiteOptions, plan_cells, run_bench
from hrm_export.cli import app
from hrm_export.core.errors import EXIT_GATE_FAILED, UserError
from hrm_export.core.latency_targets import load_targets as load_budgets
from hrm_export.core.machine import device_class
from hrm_export.core.manifest import Manifest
from hrm_export.core.reference import reference_from_manifest
from hrm_export.core.timing import percentile, plan_iterations, time_call, time_interleaved
from hrm_export.export.bundle import export_bundle
from model_src.checkpoint import save_checkpoint
from model_src.config import tiny_config
from model_src.model import HRM, parameter_table

CPU = device_class("cpu")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("bench")
    ckpt = save_checkpoint(HRM(tiny_config(max_minutes=64)).eval(), d / "tiny.safetensors")
    profile = d / "latency.toml"  # the shipped latency profile, fitted to this 64-minute model's session
    profile.write_text('name = "latency"\n[axes]\nbatch = [1, 1, 8]\ndays = [1, 64, 64]\nminutes = [1, 64, 64]\n'
                       'new_minutes = [1, 1, 64]\npast_minutes = [0, 63, 63]\n')
    export_bundle(ckpt, d / "bundle", profiles=[profile])
    return d / "bundle"


@pytest.fixture(scope="module")
def run(bundle, tmp_path_factory):
    """One real `hrm-export bench --json --plot` on the tiny bundle (torch fp32/bf16 + ONNX Runtime CPU)."""
    png = tmp_path_factory.mktemp("plot") / "latency.png"
    result = CliRunner().invoke(app, ["bench", str(bundle), "--quick", "--batch", "1,2", "--seconds", "0.02",
                                      "--backend", "torch,ort-cpu", "--precision", "fp32,bf16", "--plot", str(png),
                                      "--json"])
    assert result.exit_code in (0, EXIT_GATE_FAILED), result.output
    return json.loads(result.stdout), png


# -- timing ---------------------------------------------------------------------------------------------------
def test_percentile_matches_numpy_linear():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 100):
        xs = rng.exponential(5.0, n).tolist()
        for q in (0, 50, 90, 99, 100):
            assert percentile(xs, q) == pytest.approx(np.percentile(xs, q))
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    with pytest.raises(ValueError):
        percentile([], 50)


def test_iterations_follow_the_budget():
    assert plan_iterations(10.0, 1.0, 3, 500) == 100  # 1 s of 10 ms calls
    assert plan_iterations(5000.0, 1.0, 3, 500) == 3  # a slow cell still gets the minimum
    assert plan_iterations(0.001, 1.0, 3, 500) == 500

    t = time_call(lambda: time.sleep(0.004), budget_s=0.06)
    assert t.warmup >= 1 and 3 <= t.iterations <= 20
    assert 4.0 <= t.p50_ms <= t.p90_ms <= t.p99_ms <= t.max_ms
    assert t.min_ms <= t.p50_ms and t.clock == "perf_counter"


def test_interleaved_timing_keeps_each_backend_apart():
    order = []
    # microseconds against 5 ms: far enough apart that a loaded machine's scheduling cannot swap them
    fns = {"fast": lambda: order.append("f"), "slow": lambda: (order.append("s"), time.sleep(0.005))}
    t = time_interleaved(fns, budget_s=0.03)
    assert t["fast"].p50_ms < t["slow"].p50_ms and t["slow"].p50_ms >= 5.0
    assert t["fast"].iterations > t["slow"].iterations >= 3  # each sized to its own budget
    timed = order[t["fast"].warmup + t["slow"].warmup:]
    assert timed[:6] == ["f", "s"] * 3  # alternation, not one backend after the other


# -- the suite ------------------------------------------------------------------------------------------------
def test_quick_plan_covers_every_module_and_the_streaming_end():
    cfg = tiny_config(max_minutes=64)
    cells = plan_cells(cfg, SuiteOptions(quick=True))
    assert {m for m, _, _ in cells} == {"h_module", "l_module", "window", "l_step", "day", "heads"}
    assert ("l_step", 1, 63) in cells and ("day", 1, 64) in cells and ("window", 1, 64) in cells
    assert all(b == 1 for _, b, _ in cells)  # --quick: batch 1 only
    full = plan_cells(cfg, SuiteOptions())
    assert {b for _, b, _ in full} == {1, 8, 128} and ("l_step", 128, 63) in full


def test_report_json_schema(run):
    report, _ = run
    assert report["schema"] == SCHEMA
    for key in ("bundle", "machine", "method", "backends", "cells", "throughput", "memory", "gate", "config"):
        assert key in report
    m = report["machine"]
    assert m["cpu"] and m["logical_cores"] >= 1 and m["device_class"] == CPU and m["versions"]["torch"]
    measured = {(b["backend"], b["precision"]) for b in report["backends"] if b["status"] == "measured"}
    assert measured == {("torch", "fp32"), ("torch", "bf16"), ("ort-cpu", "fp32")}
    skipped = [b for b in report["backends"] if b["status"] == "skipped"]
    assert all(b["reason"] for b in skipped)  # ort-cpu/bf16: says why
    assert {c["backend"] for c in report["cells"] if c["module"] == "heads"} == {"torch"}
    for c in report["cells"]:
        t = c["timing"]
        assert t["iterations"] >= 3 and t["warmup"] >= 1
        assert 0 < t["p50_ms"] <= t["p90_ms"] <= t["p99_ms"] <= t["max_ms"]
        assert c["seq_axis"] in ("days", "minutes", "past_minutes")
        if (c["backend"], c["precision"]) == ("torch", "fp32"):
            assert c["vs_torch_fp32"] == 1.0
    day = [c for c in report["cells"] if c["module"] == "day" and c["backend"] == "ort-cpu"]
    assert {c["batch"] for c in day} == {1}  # --quick overrides --batch
    assert {r["backend"] for r in report["throughput"]} == {"torch", "ort-cpu"}
    assert all(r["days_per_s"] > 0 for r in report["throughput"])


def test_large_batches_run_one_backend_at_a_time(bundle):
    """From SOLO_BATCH up each backend is timed alone and reloaded after its turn. The tiny bundle's ONNX admits
    only the latency profile (batch <= 8): ONNX Runtime refuses those cells with the reason, the run goes on."""
    manifest = Manifest.load(bundle)
    opts = SuiteOptions(backends=("torch", "ort-cpu"), precisions=("fp32",), batches=(1, SOLO_BATCH), budget_s=0.005)
    report = run_bench(manifest, reference_from_manifest(manifest), opts)
    big = {(c["backend"], c["module"]) for c in report["cells"] if c["batch"] == SOLO_BATCH}
    assert {("torch", "day"), ("torch", "l_step"), ("torch", "heads"), ("torch", "h_module")} <= big
    refused = {(r["backend"], r["module"]) for r in report["refused"]}
    assert ("ort-cpu", "day") in refused and all(r["batch"] == SOLO_BATCH for r in report["refused"])
    assert all("batch=64" in r["reason"] for r in report["refused"])
    assert any(c["backend"] == "ort-cpu" and c["batch"] == 1 for c in report["cells"])
    assert "alternation below batch" in report["method"]["iterations"]


def test_plot_is_a_png(run):
    _, png = run
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


# -- memory ---------------------------------------------------------------------------------------------------
def test_memory_table(bundle, run):
    model = HRM(tiny_config(max_minutes=64))
    rows = {r["part"]: r for r in parameter_bytes(model)}
    assert rows["total"]["params"] == sum(p.numel() for p in model.parameters()) == parameter_table(model)["total"]
    assert rows["total"]["mb"]["fp32"] == pytest.approx(4 * rows["total"]["params"] / 1e6, abs=0.01)
    assert rows["l"]["mb"]["bf16"] == pytest.approx(rows["l"]["mb"]["fp32"] / 2, abs=0.01)
    manifest = Manifest.load(bundle)
    sizes = artifact_sizes(manifest)
    assert {(s["module"], s["precision"]) for s in sizes} == {(m, "fp32") for m in ("h_module", "l_module", "l_step",
                                                                                      "l_step_static")}
    for s in sizes:
        assert s["mb"] == pytest.approx((bundle / s["path"]).stat().st_size / 1e6, abs=0.01)
    report, _ = run
    assert report["memory"]["peak_host_rss_mb"] > 50
    by_batch = report["memory"]["peak_host_rss_mb_by_batch"]  # running peak: never more than the whole run's
    assert by_batch and all(50 < mb <= report["memory"]["peak_host_rss_mb"] for mb in by_batch.values())
    assert report["memory"]["peak_device_mb"] is None  # no GPU: nothing pretends otherwise


# -- the gate -------------------------------------------------------------------------------------------------
def _budgets(tmp_path, body: str):
    p = tmp_path / "latency.toml"
    p.write_text("version = 1\n" + body)
    return p


def test_gate_trips_on_a_too_tight_target(bundle, tmp_path):
    tight = _budgets(tmp_path, f"""
[[target]]
id = "impossible-step"
device_class = "{CPU}"
kind = "latency"
module = "l_step"
backend = "best"
batch = 1
seq = 63
max_ms = 0.000001
""")
    result = CliRunner().invoke(app, ["bench", str(bundle), "--quick", "--seconds", "0.02", "--backend", "torch",
                                      "--precision", "fp32", "--budgets", str(tight)])
    assert result.exit_code == EXIT_GATE_FAILED, result.output
    assert "impossible-step" in result.stdout and "FAILED" in result.stdout
    assert "Latency" in result.stdout  # the full report came before the verdict


def test_gate_semantics(run, tmp_path):
    report, _ = run
    targets = load_budgets(_budgets(tmp_path, f"""
[[target]]
id = "loose-best"
device_class = "{CPU}"
kind = "latency"
module = "day"
batch = 1
seq = 64
max_ms = 1e6
[[target]]
id = "each-tight"
device_class = "{CPU}"
kind = "latency"
module = "h_module"
backend = "each"
batch = 1
seq = 64
max_ms = 1e-6
[[target]]
id = "other-class"
device_class = "h100"
kind = "latency"
module = "day"
batch = 1
seq = 390
max_ms = 20
[[target]]
id = "unmeasured-batch"
device_class = "{CPU}"
kind = "latency"
module = "day"
batch = 128
seq = 64
max_ms = 1e6
[[target]]
id = "self-speedup"
device_class = "{CPU}"
kind = "speedup"
module = "day"
backend = "torch/fp32"
batch = 1
seq = 64
baseline = {{ backend = "torch", precision = "fp32" }}
min_ratio = 1.0
[[target]]
id = "stream-vs-day"
device_class = "{CPU}"
kind = "speedup"
module = "l_step"
backend = "ort-cpu/fp32"
batch = 1
seq = 63
baseline = {{ module = "day", seq = 64 }}
min_ratio = 1e-9
[[target]]
id = "rss"
device_class = "{CPU}"
kind = "memory"
metric = "peak_host_rss_mb"
max_mb = 1
[[target]]
id = "rss-live"
device_class = "{CPU}"
kind = "memory"
metric = "peak_host_rss_mb_upto_batch"
batch = 1
max_mb = 1e6
[[target]]
id = "rss-unmeasured-batch"
device_class = "{CPU}"
kind = "memory"
metric = "peak_host_rss_mb_upto_batch"
batch = 128
max_mb = 1e6
"""))
    g = evaluate(report, targets)
    status = {r["id"]: r["status"] for r in g["results"]}
    assert status == {"loose-best": PASS, "each-tight": FAIL, "other-class": NOT_APPLICABLE,
                      "unmeasured-batch": NOT_MEASURED, "self-speedup": NOT_MEASURED, "stream-vs-day": PASS,
                      "rss": FAIL, "rss-live": PASS, "rss-unmeasured-batch": NOT_MEASURED}
    assert not g["passed"] and set(g["failed"]) == {"each-tight", "rss"}
    best = next(r for r in g["results"] if r["id"] == "loose-best")
    fastest = min((c for c in report["cells"] if c["module"] == "day" and c["batch"] == 1),
                  key=lambda c: c["timing"]["p50_ms"])
    assert best["backend"] == f"{fastest['backend']}/{fastest['precision']}"


def test_shipped_budgets_hold_the_plan_table():
    targets = {t.id: t for t in load_budgets()}
    plan = {t.module: t.max_ms for t in targets.values() if t.source == "plan" and t.kind == "latency"}
    assert plan == {"h_module": 3.0, "l_module": 12.0, "heads": 1.0, "day": 20.0}
    assert all("a100" in t.device_class for t in targets.values() if t.source == "plan")


TARGET = '[[target]]\nid = "x"\nkind = "latency"\ndevice_class = "a100"\nmodule = "day"\n'


@pytest.mark.parametrize(("extra", "message"), [
    ("max_ms = 1\nmax_s = 1\n", r"\[target #1 \(x\).max_s\] unknown key"),
    ("", r"\[target #1 \(x\)\] kind 'latency' needs max_ms"),
    ('max_ms = 1\nbatch = "1"\n', r"\[target #1 \(x\).batch\] Input should be a valid integer \(got '1'\)"),
    ("max_ms = -5\n", r"\[target #1 \(x\).max_ms\] Input should be greater than 0"),
    ('max_ms = "fast"\n', r"\[target #1 \(x\).max_ms\]"),
    ('max_ms = 1\nstat = "p42"\n', r"\[target #1 \(x\).stat\] Input should be 'p50'"),
])
def test_bad_budgets_file_is_one_clear_error_before_measuring(tmp_path, extra, message):
    with pytest.raises(UserError, match=message):
        load_budgets(_budgets(tmp_path, TARGET + extra))


def test_bad_batch_option_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["bench", str(tmp_path), "--batch", "0"])
    assert result.exit_code != 0


def test_busy_note_counts_only_load_beyond_the_bench_itself():
    from hrm_export.bench.report import busy_note

    def note(start, end):
        return busy_note({"machine": {"logical_cores": 2, "load_average_1m": start, "load_average_1m_end": end}})

    assert note(0.1, 2.01) == ""  # the bench's own two threads
    assert "other work shared the CPU" in note(0.1, 13.5)  # a training run beside it
    assert "other work shared the CPU" in note(3.0, 2.0)  # busy before it started
