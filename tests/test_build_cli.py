"""`hrm-export build` end to end on a tiny checkpoint, on a machine without TensorRT: every other artifact is
made, the TensorRT step is SKIPPED with the install command (exit 0); --require-tensorrt exits 1 having written
nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from hrm_export.core.manifest import Manifest
from hrm_export.tensorrt.builder import tensorrt_version
from model_src import HRM, tiny_config
from model_src.checkpoint import save_checkpoint

pytestmark = pytest.mark.skipif(tensorrt_version() is not None, reason="tests the path where TensorRT is absent")

# Batch ≤ 2 keeps verify/bench of the tiny model to seconds (verify streams a whole 390-minute session, so
# the minute axes stay full); the shipped profiles' batch 128 is exercised by `pytest -m tensorrt`.
PROFILE = """name = "tiny"
version = 1
description = "test profile"
[axes]
batch = [1, 1, 2]
days = [1, 16, 16]
minutes = [1, 390, 390]
new_minutes = [1, 1, 390]
past_minutes = [0, 389, 389]
"""


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    save_checkpoint(HRM(tiny_config()).eval(), d / "tiny.safetensors")
    (d / "tiny.toml").write_text(PROFILE)
    return d / "tiny.safetensors", d / "tiny.toml"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hrm_export", "build", *args], capture_output=True, text=True,
                          timeout=600)


def test_build_without_tensorrt_makes_everything_else_and_says_skipped(tiny_ckpt, tmp_path):
    ckpt, profile = tiny_ckpt
    out = tmp_path / "bundle"
    r = run("--checkpoint", str(ckpt), "--out", str(out), "--profile", str(profile), "--precision", "fp32")
    assert r.returncode == 0, r.stdout + r.stderr
    text = " ".join((r.stdout + r.stderr).split())  # undo the table's line wrapping
    assert "TensorRT step SKIPPED" in text and "pip install tensorrt-cu13" in text and "tensorrt-cu12" in text
    m = Manifest.load(out)
    m.verify_hashes()
    onnx = {(a.module, a.precision) for a in m.artifacts if a.format == "onnx"}
    assert {("h_module", "fp32"), ("l_module", "fp32"), ("l_step", "fp32")} <= onnx
    assert not [a for a in m.artifacts if a.format == "trt-plan"]
    assert not list(out.glob("*.plan")) and not list(out.glob(".*partial"))
    assert "ort-cpu/fp32 PASSED" in text and "p50 per trading day" in text
    assert "Parity vs the PyTorch fp32 reference" in text  # the closing parity table


def test_verify_profile_limits_the_closing_verify(tiny_ckpt, tmp_path):
    ckpt, profile = tiny_ckpt
    r = run("--checkpoint", str(ckpt), "--out", str(tmp_path / "b"), "--profile", f"{profile},latency",
            "--precision", "fp32", "--verify-profile", "tiny", "--no-bench", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    (row,) = report["parity"]
    assert row["passed"] and row["film_gamma_max_abs"] < 1e-4 and row["halt_agree"].split("/")[1] != "0"
    bad = run("--checkpoint", str(ckpt), "--out", str(tmp_path / "c"), "--profile", str(profile),
              "--verify-profile", "throughput", "--no-bench")
    assert bad.returncode == 1 and "not among the --profile" in bad.stderr and not (tmp_path / "c").exists()


def test_json_report_with_every_precision(tiny_ckpt, tmp_path):
    ckpt, profile = tiny_ckpt
    r = run("--checkpoint", str(ckpt), "--out", str(tmp_path / "b"), "--profile", str(profile),
            "--precision", "fp32,bf16,int8", "--module", "h_module", "--no-bench", "--json")
    assert r.returncode in (0, 3), r.stderr  # 3: a random-init tiny model may miss a parity budget
    report = json.loads(r.stdout)
    steps = {s["name"]: s for s in report["steps"]}
    assert list(steps) == ["export", "precision", "tensorrt", "verify", "bench"]
    assert steps["tensorrt"]["status"] == "SKIPPED" and "3 plan(s) shape-checked" in steps["tensorrt"]["detail"]
    assert steps["precision"]["status"] == "done"
    assert {"bf16", "int8"} <= {a["precision"] for a in report["artifacts"]}
    assert "ort-cpu/int8" in steps["verify"]["detail"] and steps["bench"]["status"] == "SKIPPED"
    assert [(p["backend"], p["precision"]) for p in report["parity"]] == [
        ("ort-cpu", "fp32"), ("ort-cpu", "bf16-emulated"), ("ort-cpu", "int8"), ("ort-cpu", "int8-cpu")]
    assert steps["export"]["detail"].endswith("profiles tiny")


def test_require_tensorrt_fails_before_writing_anything(tiny_ckpt, tmp_path):
    ckpt, profile = tiny_ckpt
    out = tmp_path / "bundle"
    r = run("--checkpoint", str(ckpt), "--out", str(out), "--profile", str(profile), "--require-tensorrt")
    assert r.returncode == 1
    assert "TensorRT is not installed" in r.stderr and "pip install tensorrt-cu" in r.stderr
    assert not out.exists()  # no ONNX, no manifest, no half-written plan


def test_bad_option_is_one_line_exit_1(tmp_path):
    r = run("--out", str(tmp_path / "b"), "--opt-level", "9")
    assert r.returncode == 1 and "--opt-level 9: TensorRT builder optimisation levels are 0..5" in r.stderr
    assert not (tmp_path / "b").exists()
