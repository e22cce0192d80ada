"""benchmarks/run_gpu.sh, the one prepared GPU check, dry-run on this CPU (DEVICE=cpu QUICK=1) on the tiny
model: the same steps and the same results folder, so the script cannot rot between GPU loans."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_dry_run_writes_every_result_into_one_folder(tmp_path):
    from model_src import HRM, tiny_config
    from model_src.checkpoint import save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(HRM(tiny_config()).eval(), tmp_path / "tiny.safetensors")
    out = tmp_path / "results"
    env = {**os.environ, "DEVICE": "cpu", "QUICK": "1", "OUT": str(out), "PYTHON": sys.executable,
           "CHECKPOINT": str(tmp_path / "tiny.safetensors"), "WORK": str(tmp_path / "work"), "BUDGET_S": "300"}
    p = subprocess.run(["bash", str(ROOT / "benchmarks" / "run_gpu.sh")], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    # 0, or 3 where this CPU misses a latency target of its device class: the gate is real, the steps all ran
    assert p.returncode in (0, 3), (out / "run.log").read_text()[-3000:] + p.stderr[-2000:]

    files = sorted(f.name for f in out.iterdir())
    assert files == ["bench.json", "bench.png", "environment.txt", "results.md", "run.log", "steps.tsv",
                     "verify.json"]  # ≤ 8: what a lent machine returns
    steps = {s["step"]: s for s in csv.DictReader((out / "steps.tsv").open(), delimiter="\t")}
    assert [k for k, s in steps.items() if s["status"] == "ok"] == ["environment", "export", "verify-fp32",
                                                                     "verify-bf16", "bench"][:4 + (p.returncode == 0)]
    assert steps["bench"]["status"] == ("ok" if p.returncode == 0 else "gate-failed")
    assert steps["verify-bf16-graphs"]["status"] == "skipped" and "CUDA" in steps["verify-bf16-graphs"]["note"]
    assert steps["bench-all"]["status"] == "skipped"

    verify = json.loads((out / "verify.json").read_text())
    assert {k: v["engine"] for k, v in verify.items()} == {"verify-fp32": "torch/fp32@cpu",
                                                           "verify-bf16": "torch/bf16@cpu"}
    assert all(v["passed"] for v in verify.values())
    bench = json.loads((out / "bench.json").read_text())["bench"]
    measured = {(b["backend"], b["precision"]) for b in bench["backends"] if b["status"] == "measured"}
    assert measured == {("torch", "fp32"), ("torch", "bf16")}
    graphs = [b for b in bench["backends"] if b["backend"] == "torch-graphs"]
    assert graphs and all("CUDA graphs need a CUDA device" in b["reason"] for b in graphs)
    steps_at = {c["seq"] for c in bench["cells"] if c["module"] == "l_step" and c["batch"] == 1}
    assert steps_at == {0, 389}  # the streaming step at 0 and 389 past minutes
    assert bench["memory"]["peak_host_rss_mb"] > 0

    env_text = (out / "environment.txt").read_text()
    assert '"device_class": "cpu-' in env_text and '"tensorrt_library"' in env_text
    results = (out / "results.md").read_text()
    assert "| verify-bf16 | ok | 0 |" in results and "**PASSED**" in results and "## bench" in results


def test_a_machine_without_the_packages_gets_one_line_and_a_summary(tmp_path):
    """On an image that lacks what the steps import (and no wheels fit it), the run stops at once and says what
    to carry, still leaving results.md: a plain interpreter without torch stands in for such an image."""
    bare = next((p for p in ("/usr/bin/python3", "/bin/python3") if Path(p).is_file()), None)
    if bare is None or subprocess.run([bare, "-c", "import torch"], capture_output=True).returncode == 0:
        pytest.skip("needs a Python without torch")
    out = tmp_path / "results"
    env = {**os.environ, "DEVICE": "cpu", "OUT": str(out), "PYTHON": bare, "WORK": str(tmp_path / "work")}
    env.pop("PYTHONPATH", None)
    p = subprocess.run(["bash", str(ROOT / "benchmarks" / "run_gpu.sh")], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    steps = list(csv.DictReader((out / "steps.tsv").open(), delimiter="\t"))
    assert [(s["step"], s["status"]) for s in steps] == [("requirements", "error")]
    assert "missing Python packages: torch numpy" in steps[0]["note"] and "carry_wheels.sh" in steps[0]["note"]
    assert "| requirements | error |" in (out / "results.md").read_text()


def test_the_time_budget_holds_and_says_what_it_left_out(tmp_path):
    """With no time left in BUDGET_S no step starts: each says so, the summary is still written, exit 1."""
    out = tmp_path / "results"
    env = {**os.environ, "DEVICE": "cpu", "QUICK": "1", "OUT": str(out), "PYTHON": sys.executable,
           "WORK": str(tmp_path / "work"), "BUDGET_S": "20"}
    p = subprocess.run(["bash", str(ROOT / "benchmarks" / "run_gpu.sh")], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    steps = {s["step"]: s for s in csv.DictReader((out / "steps.tsv").open(), delimiter="\t")}
    assert {k for k, s in steps.items() if s["status"] == "no-time"} == {
        "environment", "export", "bundle-without-onnx", "verify-fp32", "verify-bf16", "bench"}
    assert "s left of BUDGET_S=20" in steps["export"]["note"]
    assert "| export | no-time |" in (out / "results.md").read_text()
