"""The export / verify / inspect verbs as a user runs them: exit codes, the closing line, --json."""

import json
import os
import subprocess
import sys

import pytest
from parity_bundle import copy_bundle, tiny_bundle

from hrm_export.core.budgets import DEFAULT_BUDGETS
from hrm_export.core.errors import EXIT_GATE_FAILED


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}  # rich wraps at 80 columns when not on a terminal
    return subprocess.run([sys.executable, "-m", "hrm_export", *args], capture_output=True, text=True, timeout=600,
                          env=env)


def test_export_writes_a_bundle_with_progress(tmp_path):
    ckpt = tiny_bundle().parent / "tiny.safetensors"
    p = cli("export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "b"), "--profile",
            str(tiny_bundle().parent / "small.toml"), "--json")
    assert p.returncode == 0, p.stderr
    manifest = json.loads(p.stdout)
    assert [a["module"] for a in manifest["artifacts"]] == ["h_module", "l_module", "l_step", "l_step_static"]
    assert "l_step.onnx written" in p.stderr
    assert sorted(f.name for f in (tmp_path / "b").iterdir()) == ["checkpoint.safetensors", "h_module.onnx",
                                                                  "l_module.onnx", "l_step.onnx", "l_step_static.onnx",
                                                                  "manifest.json"]


def test_export_with_precisions_writes_the_variants_beside_fp32(tmp_path):
    ckpt = tiny_bundle().parent / "tiny.safetensors"
    p = cli("export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "b"), "--profile",
            str(tiny_bundle().parent / "small.toml"), "--precision", "fp32,bf16,int8-cpu", "--json")
    assert p.returncode == 0, p.stderr
    made = {(a["module"], a["precision"]) for a in json.loads(p.stdout)["artifacts"]}
    for precision in ("fp32", "bf16", "bf16-emulated", "int8-cpu"):
        static = {"l_step_static"} if precision in ("fp32", "int8-cpu") else set()  # its CPU routes only
        assert {m for m, q in made if q == precision} == {"h_module", "l_module", "l_step", *static}, precision
    bad = cli("export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "c"), "--precision", "fp16")
    assert bad.returncode == 1 and "unknown 'fp16'" in bad.stderr and not (tmp_path / "c").exists()


def test_verify_passes_and_says_so(tmp_path):
    p = cli("verify", str(tiny_bundle()), "--random-points", "0", "--png", str(tmp_path / "margin.png"))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert p.stdout.rstrip().endswith("PASSED") and "film_gamma" in p.stdout
    assert (tmp_path / "margin.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # matplotlib: the [plot] extra


def test_verify_impossible_budget_exits_gate_failed_after_full_report(tmp_path):
    budgets = tmp_path / "impossible.toml"
    budgets.write_text(DEFAULT_BUDGETS.read_text().replace("max_abs = 1e-4", "max_abs = 1e-15"))
    p = cli("verify", str(tiny_bundle()), "--budgets", str(budgets), "--random-points", "0", "--no-streaming",
            "--json")
    assert p.returncode == EXIT_GATE_FAILED == 3
    report = json.loads(p.stdout)  # the full report is still printed
    assert report["passed"] is False and report["failures"] and report["summary"]


@pytest.mark.parametrize("point", ["minutes=0", "minutes=391", "days=65", "batch=129"])
def test_verify_refuses_points_outside_profiles(point):
    p = cli("verify", str(tiny_bundle()), "--point", point)
    assert p.returncode == 1
    assert "error:" in p.stderr and "hint:" in p.stderr and "Traceback" not in p.stderr


def test_verify_tampered_bundle_is_a_user_error(tmp_path):
    d = copy_bundle(tmp_path)
    with open(d / "h_module.onnx", "ab") as f:
        f.write(b"\0")
    p = cli("verify", str(d))
    assert p.returncode == 1 and "h_module.onnx: sha256" in p.stderr


def test_inspect_bundle_and_file():
    p = cli("inspect", str(tiny_bundle()), "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    step = next(a for a in info["artifacts"] if a["module"] == "l_step")
    assert step["details"]["opset"]["ai.onnx"] == 23 and step["details"]["ops"]["Attention"] == 2
    assert step["details"]["inputs"][3]["shape"] == [2, 2, "batch", 4, "past_minutes", 12]
    p = cli("inspect", str(tiny_bundle() / "l_module.onnx"))
    assert p.returncode == 0 and "action_logits" in p.stdout and "opset ai.onnx 23" in p.stdout
    p = cli("inspect", str(tiny_bundle() / "missing.plan"))
    assert p.returncode == 1 and "no such file" in p.stderr
