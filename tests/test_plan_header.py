"""Plan headers read without TensorRT (synthetic bytes in the layout trtexec reads), refusal of non-plans, the
rules that refuse a plan built by another TensorRT release or for another compute capability, and the same
rules as advice (one line, never raised) for where TensorRT itself decides."""

from __future__ import annotations

import struct

import pytest
import torch

from hrm_export.core.backend_registry import tensorrt_module
from hrm_export.tensorrt.compat import check_plan_runnable, plan_problem, rebuild_command, record_problem
from hrm_export.tensorrt.plan_header import HEADER_SIZE, PlanError, parse_plan_header, read_plan_header


def plan_bytes(version=(10, 13, 0, 35), serialization=0, body=b"\x00" * 64) -> bytes:
    """A synthetic plan: magic 'ftrt', uint32 serialization version, 16 undocumented bytes, version bytes."""
    return b"ftrt" + struct.pack("<I", serialization) + bytes(16) + bytes(version) + body


def test_header_layout_round_trip(tmp_path):
    p = tmp_path / "m.plan"
    p.write_bytes(plan_bytes((11, 4, 0, 106)))
    h = read_plan_header(p)
    assert h.tensorrt_version == (11, 4, 0, 106) and h.version == "11.4.0.106" and h.release == (11, 4, 0)
    assert h.serialization_version == 0
    assert struct.unpack("<I", b"ftrt")[0] == 0x74727466  # the tag as trtexec compares it


@pytest.mark.parametrize(("data", "needle"), [
    (b"PK\x03\x04" + bytes(40), "not a TensorRT plan (starts with b'PK\\x03\\x04'"),
    (b"\x08\x07\x12\x07pytorch" + bytes(40), "not a TensorRT plan"),  # an ONNX protobuf
    (b"ftrt", "too short to be a TensorRT plan"),
    (plan_bytes(serialization=7), "serialization version 7 has no known header layout"),
])
def test_non_plans_are_refused_in_one_line(data, needle):
    with pytest.raises(PlanError) as e:
        parse_plan_header(data, "x.plan")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_missing_and_onnx_files_are_refused(tmp_path):
    with pytest.raises(PlanError, match="no such plan file"):
        read_plan_header(tmp_path / "nope.plan")
    onnx_file = tmp_path / "h_module.onnx"
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(onnx_file))
    with pytest.raises(PlanError, match="not a TensorRT plan"):
        read_plan_header(onnx_file)
    assert HEADER_SIZE == 28


@pytest.fixture
def plan(tmp_path):
    p = tmp_path / "l_module.bf16.plan"
    p.write_bytes(plan_bytes((10, 13, 0, 35)))
    return p


def runnable(plan, **kw):
    args = dict(built_version="10.13.0.35", built_cc="9.0", running_version="10.13.0.35", running_cc=(9, 0),
                rebuild=rebuild_command("bundle", "bf16"))
    args.update(kw)
    check_plan_runnable(plan, **args)


def test_same_release_same_gpu_runs(plan):
    runnable(plan)
    runnable(plan, running_version="10.13.0.99")  # another build number of the same release


def test_foreign_tensorrt_version_is_refused_naming_both_and_the_rebuild(plan):
    with pytest.raises(PlanError) as e:
        runnable(plan, running_version="11.4.0.106")
    msg = str(e.value)
    assert "built with TensorRT 10.13.0.35, running TensorRT 11.4.0.106" in msg
    assert "hrm-export build --out bundle --precision bf16 --require-tensorrt" in msg and "\n" not in msg
    with pytest.raises(PlanError, match="running TensorRT 10.12.0"):
        runnable(plan, running_version="10.12.0")


def test_version_compatible_plans_run_on_later_releases_of_the_same_major(plan):
    runnable(plan, running_version="10.14.1", version_compatible=True)
    with pytest.raises(PlanError, match="version-compatible"):
        runnable(plan, running_version="10.12.0", version_compatible=True)
    with pytest.raises(PlanError, match="version-compatible"):
        runnable(plan, running_version="11.0.0", version_compatible=True)


def test_foreign_compute_capability_is_refused(plan):
    with pytest.raises(PlanError) as e:
        runnable(plan, running_cc=(8, 9))
    assert "built for compute capability 9.0, this GPU is 8.9" in str(e.value)
    runnable(plan, running_cc="8.6", hardware_compatibility="ampere+")
    with pytest.raises(PlanError, match="ampere\\+"):
        runnable(plan, running_cc=(7, 5), hardware_compatibility="ampere+")


def test_header_disagreeing_with_the_manifest_is_refused(plan):
    with pytest.raises(PlanError, match="header says TensorRT 10.13.0.35 but the manifest records 11.4.0"):
        runnable(plan, built_version="11.4.0.106", running_version="11.4.0.106")


def test_the_rules_as_advice_return_one_line_and_never_raise(tmp_path, plan):
    """Where TensorRT is installed the header is advice: what the strict check raises comes back as text."""
    odd = tmp_path / "future.plan"
    odd.write_bytes(plan_bytes(serialization=7))
    facts = dict(built_version="10.13.0.35", built_cc="9.0", running_version="10.13.0.35", running_cc=(9, 0))
    assert "serialization version 7 has no known header layout" in plan_problem(odd, **facts)
    assert plan_problem(plan, **facts) is None
    assert "running TensorRT 11.4.0.106" in plan_problem(plan, **{**facts, "running_version": "11.4.0.106"})
    assert "bad TensorRT version 'x.y'" in plan_problem(plan, **{**facts, "built_version": "x.y"})
    assert "\n" not in plan_problem(odd, **facts)


def test_manifest_record_rules_and_the_lean_runtime(plan):
    record = {"tensorrt_version": "10.13.0.35", "compute_capability": "9.0"}
    assert record_problem(plan, record, "10.13.0.35", (9, 0)) is None
    assert "records no compute_capability" in record_problem(plan, {"tensorrt_version": "10.13.0.35"}, "10.13.0.35",
                                                             (9, 0))
    lean = record_problem(plan, record, "10.13.0.35", (9, 0), lean=True)
    assert "lean runtime (tensorrt_lean 10.13.0.35) runs only version-compatible plans" in lean
    vc = {**record, "version_compatible": True}
    assert record_problem(plan, vc, "10.14.1.2", (9, 0), lean=True) is None  # a later 10.x lean runtime runs it
    assert "same major" in record_problem(plan, vc, "11.4.0.106", (9, 0), lean=True)


def test_describe_plan_without_a_gpu_shows_header_and_manifest_record(tmp_path):
    from hrm_export.core.manifest import Artifact, Manifest
    from hrm_export.tensorrt.plan_info import describe_plan
    from model_src.atomic import file_sha256
    from model_src.config import tiny_config

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: describe_plan deserializes instead (tests/tensorrt_plans)")
    plan = tmp_path / "h_module.bf16.plan"
    plan.write_bytes(plan_bytes((11, 4, 0, 106)))
    m = Manifest(dir=tmp_path, config_dict=tiny_config().to_dict())
    m.add(Artifact("h_module", "bf16", "trt-plan", plan.name, file_sha256(plan), profile=["latency"],
                   extra={"tensorrt_version": "11.4.0.106", "compute_capability": "9.0"}))
    m.save()
    info = describe_plan(plan)
    assert info["tensorrt_version"] == "11.4.0.106" and info["bytes"] == len(plan_bytes())
    assert info["manifest"]["module"] == "h_module" and info["manifest"]["sha256_matches"]
    assert info["manifest"]["extra"]["compute_capability"] == "9.0"
    if tensorrt_module() is None:
        assert "TensorRT is not installed" in info["note"] and "pip install tensorrt-cu" in info["note"]
    else:  # a TensorRT library (here: the lean runtime) is installed, but nothing to run it on
        assert info["note"].startswith(f"{tensorrt_module()} ") and "no CUDA GPU is visible" in info["note"]
    plan.write_bytes(plan_bytes((11, 4, 0, 107)))  # changed after the build
    assert describe_plan(plan)["manifest"]["sha256_matches"] is False
