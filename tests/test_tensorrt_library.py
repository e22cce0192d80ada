"""Which TensorRT library runs plans, and its refusal without a GPU, with the real lean runtime wheel
(`tensorrt-lean-cu13`, in the [dev] extra through [lean]): it imports on a CPU machine, so the choice and the
one-line refusal are tested for real here. Without a CUDA device TensorRT's runtime is made in a state whose first
use crashes the process, so these tests also prove the refusal comes before any runtime exists.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from parity_bundle import copy_bundle
from test_plan_header import plan_bytes

from hrm_export.core.backend_registry import _lean_cannot, installed, unavailable
from hrm_export.core.errors import BackendUnavailableError, MissingDependencyError, UserError
from hrm_export.core.manifest import Artifact, Manifest
from model_src.atomic import file_sha256

lean_only = pytest.mark.skipif(not installed("tensorrt_lean") or installed("tensorrt"),
                               reason="needs the lean runtime alone: pip install 'hrm-export[lean]', no full TensorRT")
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="tests the refusal where no CUDA device exists")


def bundle_with_plans(tmp_path, version_compatible: bool):
    """The tiny bundle plus synthetic fp32 'plans' (header bytes only) recorded as `hrm-export build` records them."""
    bundle = copy_bundle(tmp_path)
    m = Manifest.load(bundle)
    for module in ("h_module", "l_module", "l_step"):
        plan = bundle / f"{module}.fp32.plan"
        plan.write_bytes(plan_bytes((11, 4, 0, 106)))
        onnx = m.find(module)
        m.add(Artifact(module, "fp32", "trt-plan", plan.name, file_sha256(plan), onnx.inputs, onnx.outputs,
                       profile=onnx.profile, extra={"tensorrt_version": "11.4.0.106", "compute_capability": "9.0",
                                                    "version_compatible": version_compatible}))
    m.save()
    return bundle


@lean_only
def test_the_lean_runtime_is_chosen_when_the_full_library_is_absent():
    from hrm_export.tensorrt.library import load_library

    lib = load_library()
    assert lib.name == "tensorrt_lean" and lib.lean and lib.module.__name__ == "tensorrt_lean"
    assert lib.version.split(".")[0].isdigit() and lib.describe() == f"tensorrt_lean {lib.version}"
    assert hasattr(lib.module.Runtime, "engine_host_code_allowed")  # the API the backend uses is there


def test_no_library_is_one_line_naming_both_installs():
    from hrm_export.tensorrt.library import load_library

    with pytest.raises(MissingDependencyError) as e:
        load_library(("hrm_no_such_tensorrt",))
    assert "no TensorRT runtime library imports here (hrm_no_such_tensorrt: ModuleNotFoundError" in str(e.value)
    assert "hrm-export[trt]" in e.value.hint and "hrm-export[lean]" in e.value.hint and "\n" not in str(e.value)


@no_gpu
@lean_only
def test_backend_picks_lean_then_refuses_without_a_cuda_device_in_one_line(tmp_path):
    from hrm_export.backends.trt_backend import TrtBackend

    be = TrtBackend(bundle_with_plans(tmp_path, version_compatible=True), "fp32")
    with pytest.raises(UserError) as e:
        be.activate()
    assert str(e.value) == "TensorRT plans need a CUDA device and torch sees none (cudaGetDeviceCount: 0)"
    assert "--backend ort-cpu" in e.value.hint
    assert be.library.name == "tensorrt_lean" and not be._modules  # refused before any runtime or engine existed


@no_gpu
@lean_only
def test_runtime_and_cli_refuse_tensorrt_here_with_the_registry_line(tmp_path):
    from hrm_export.runtime import HRMRuntime

    bundle = bundle_with_plans(tmp_path, version_compatible=True)
    assert unavailable("tensorrt", "fp32", Manifest.load(bundle)) == "no CUDA GPU is visible"
    rt = HRMRuntime.open(bundle)  # auto passes over TensorRT, saying why
    assert rt.backend_name == "ort-cpu" and "tensorrt: no CUDA GPU is visible" in rt.reason
    with pytest.raises(BackendUnavailableError, match="backend tensorrt cannot run fp32 here: no CUDA GPU"):
        HRMRuntime.open(bundle, backend="tensorrt")
    p = subprocess.run([sys.executable, "-m", "hrm_export", "verify", str(bundle), "--backend", "tensorrt"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert "error: backend tensorrt cannot run fp32 here: no CUDA GPU is visible" in p.stderr


def test_lean_runtime_needs_version_compatible_plans(tmp_path):
    fixed = Manifest.load(bundle_with_plans(tmp_path / "a", version_compatible=False))
    why = _lean_cannot("fp32", fixed)
    assert "runs version-compatible plans only" in why and "h_module, l_module, l_step" in why
    assert "--version-compatible" in why and "hrm-export[trt]" in why
    assert _lean_cannot("fp32", Manifest.load(bundle_with_plans(tmp_path / "b", version_compatible=True))) == ""


def test_static_buffers_grow_by_doubling_and_share_storage():
    """What keeps CUDA-graph memory bounded: a streaming day's 390 growing K/V shapes share one buffer."""
    from hrm_export.backends.static_buffers import StaticBuffers

    buffers = StaticBuffers("cpu")
    views = [buffers.view("past_kv", (5, 2, 1, 8, p, 68), torch.float32) for p in range(390)]
    largest = views[-1].numel() * 4
    alive = {v.untyped_storage().data_ptr(): v.untyped_storage().nbytes() for v in views}  # what graphs would hold
    assert sum(alive.values()) <= 4 * largest  # a doubling series; one buffer per shape would be ≈195× the largest
    assert len(alive) <= 12 and buffers.nbytes <= 2 * largest
    assert all(v.data_ptr() == v.untyped_storage().data_ptr() for v in views if v.numel())  # views start a buffer
    assert buffers.view("out:present_kv", (2, 3), torch.float32).data_ptr() != views[-1].data_ptr()
