"""PyTorch as a verify candidate: torch bf16 judged by the budgets' bf16 rows like any engine, on this CPU; the
--device / --compile / --cuda-graphs flags refused up front when they cannot apply; on a GPU (marker `gpu`) the
CUDA candidate, bf16 and CUDA graphs, against the fp32 reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from parity_bundle import tiny_bundle

from hrm_export.cli.verify import check_candidate_flags
from hrm_export.core.errors import UserError


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hrm_export", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"})


def test_torch_bf16_candidate_gets_a_verdict_on_the_cpu():
    p = cli("verify", str(tiny_bundle()), "--backend", "torch", "--precision", "bf16", "--device", "cpu",
            "--random-points", "0", "--json")
    assert p.returncode in (0, 3), p.stderr[-2000:]  # PASSED or FAILED: a verdict either way
    report = json.loads(p.stdout)
    assert report["engine"] == "torch/bf16@cpu" and report["precision"] == "bf16"
    assert report["reference"] == "torch/fp32@cpu" and report["passed"] == (p.returncode == 0)
    scopes = {r["scope"] for r in report["rows"]}
    assert {"h_module", "l_module", "l_step", "composed", "streaming"} <= scopes
    assert report["decision"]["budget"]["action_agreement"] == 0.999  # the bf16 decision rows judged it


@pytest.mark.parametrize(("args", "message"), [
    (("ort-cpu", "cuda", False, False), "--device is for --backend torch, not ort-cpu"),
    (("torch", "tpu", False, False), "--device 'tpu': not a device"),
    (("torch", "cuda:x", False, False), "--device 'cuda:x': not a device"),
    (("ort-cpu", None, True, False), "--compile is for --backend torch, not ort-cpu"),
    (("ort-cpu", None, False, True), "--cuda-graphs is for --backend torch or tensorrt, not ort-cpu"),
    (("torch", "cuda", True, True), "--compile and --cuda-graphs together are not offered"),
    (("torch", "cpu", False, True), "--cuda-graphs needs a CUDA device; the torch candidate would run on cpu"),
])
def test_candidate_flags_that_cannot_apply_are_refused(args, message):
    with pytest.raises(UserError) as e:
        check_candidate_flags(*args)
    assert str(e.value).startswith(message) and e.value.hint


def test_good_candidate_flags_pass():
    check_candidate_flags("torch", "cpu", True, False)
    check_candidate_flags("torch", "cuda:1", False, False)
    check_candidate_flags("tensorrt", None, False, True)


def test_cli_refuses_before_any_work_in_one_line():
    p = cli("verify", str(tiny_bundle()), "--backend", "torch", "--device", "cpu", "--cuda-graphs")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.startswith("error: --cuda-graphs needs a CUDA device") and "hint:" in p.stderr
    if not torch.cuda.is_available():
        q = cli("verify", str(tiny_bundle()), "--backend", "torch", "--device", "cuda")
        assert q.returncode == 1 and "backend torch cannot run fp32 here: no CUDA GPU is visible" in q.stderr


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_cuda_candidate_passes_the_bf16_budgets(cuda_graphs):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from hrm_export.verify.bundle import verify_bundle

    report = verify_bundle(tiny_bundle(), backend="torch", precision="bf16", device="cuda", cuda_graphs=cuda_graphs,
                           n_random=0)
    assert report.passed, report.failures()[:5]
    assert report.meta["engine"] == "torch/bf16@cuda" + ("+cuda-graphs" if cuda_graphs else "")
