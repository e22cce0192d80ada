"""The repository writer: every config.pbtxt parses with Triton's own schema (tritonclient's model_config_pb2 and
protobuf text_format) and says what the manifest says; files, plans per compute capability, refusals, the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc
from typer.testing import CliRunner

from hrm_export.cli import app
from hrm_export.core.errors import ManifestError, UserError
from hrm_export.core.manifest import Artifact, Manifest
from hrm_export.triton import RepositoryOptions, write_repository
from hrm_export.triton.pbtxt import Enum, to_pbtxt


def parse(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def configs(repo: Path) -> dict[str, mc.ModelConfig]:
    return {p.parent.name: parse(p) for p in sorted(repo.glob("*/config.pbtxt"))}


def triton_dims(shape: list, batching: bool) -> list[int]:
    """The manifest's shape as Triton dims: named axes -1, the batch left out where Triton batches."""
    dims = [d if isinstance(d, int) else -1 for d in shape]
    return dims[1:] if batching else dims


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_config_parses_and_matches_the_manifest(repo, bundle):
    manifest = Manifest.load(bundle)
    got = configs(repo)
    assert set(got) == {"hrm_day", "hrm_stream", "h_module_fp32", "l_module_fp32", "l_step_fp32"}
    for name, config in got.items():
        assert config.name == name
    for a in (a for a in manifest.artifacts if a.module != "l_step_static"):  # a session's host buffer: not served
        config = got[f"{a.module}_fp32"]
        assert config.platform == "onnxruntime_onnx"
        batching = a.module != "l_step"  # l_step's K/V cache has the batch on axis 2
        assert config.max_batch_size == (128 if batching else 0)  # the throughput profile's batch
        assert config.HasField("dynamic_batching") == batching
        for side, tensors in (("input", a.inputs), ("output", a.outputs)):
            declared = [(t.name, mc.DataType.Name(t.data_type), list(t.dims)) for t in getattr(config, side)]
            want = [(t["name"], "TYPE_FP32", triton_dims(t["shape"], batching)) for t in tensors]
            assert declared == want
        assert sha(repo / config.name / "1" / "model.onnx") == a.sha256


def test_python_models_carry_a_whole_bundle_and_their_parameters(repo, bundle):
    for name in ("hrm_day", "hrm_stream"):
        copy = Manifest.load(repo / name / "1" / "bundle")
        copy.verify_hashes()  # what the runtime checks before it opens the bundle inside the server
        assert [a.sha256 for a in copy.artifacts] == [a.sha256 for a in Manifest.load(bundle).artifacts]
        config = parse(repo / name / "config.pbtxt")
        assert config.backend == "python"
        assert {k: v.string_value for k, v in config.parameters.items()}.items() >= {
            "bundle": "bundle", "backend": "auto", "precision": "fp32"}.items()
        assert "hrm_export.triton.models." + name in (repo / name / "1" / "model.py").read_text()
    day = parse(repo / "hrm_day" / "config.pbtxt")
    assert [(t.name, list(t.dims)) for t in day.input] == [("days", [-1, 8]), ("minutes", [-1, 11])]
    assert [t.name for t in day.output] == ["action", "confidence", "quantity", "q_halt", "q_continue", "halted",
                                            "halt_minute"]


def test_stream_config_is_a_sequence_batcher_keyed_by_instrument(repo):
    config = parse(repo / "hrm_stream" / "config.pbtxt")
    seq = config.sequence_batching
    assert seq.max_sequence_idle_microseconds == 4_000_000  # conftest's IDLE_S
    kinds = {c.name: mc.ModelSequenceBatching.Control.Kind.Name(c.control[0].kind) for c in seq.control_input}
    assert kinds == {"START": "CONTROL_SEQUENCE_START", "END": "CONTROL_SEQUENCE_END",
                     "CORRID": "CONTROL_SEQUENCE_CORRID"}
    assert seq.WhichOneof("strategy_choice") == "oldest"
    assert all(t.optional for t in config.input)  # START carries days, a minute carries minutes + minute
    assert not config.HasField("dynamic_batching")


def test_max_batch_and_instances(bundle, tmp_path):
    repo = write_repository(bundle, tmp_path / "repo", RepositoryOptions(max_batch=4, instances=3)).path
    for name, config in configs(repo).items():
        assert config.instance_group[0].count == 3
        want = 0 if name == "l_step_fp32" else 8 if name == "hrm_stream" else 4
        assert config.max_batch_size == want, name


def _add_plans(bundle_dir: Path, cc: str) -> None:
    """Plan records as `hrm-export build` writes them on a GPU (TensorRT cannot run here): the bytes are a
    stand-in, which the writer only copies; its configs are what is under test."""
    m = Manifest.load(bundle_dir)
    for onnx in [a for a in m.artifacts if a.format == "onnx"]:
        path = bundle_dir / f"{onnx.module}.fp32.plan"
        path.write_bytes(f"plan {onnx.module} sm{cc}".encode())
        m.add(Artifact(onnx.module, "fp32", "trt-plan", path.name, sha(path), onnx.inputs, onnx.outputs, onnx.opset,
                       onnx.profile, {"tool": "tensorrt"}, {"compute_capability": cc, "tensorrt_version": "10.14"}))
    m.save()


def test_plans_of_two_gpus_become_one_model_per_module_with_cc_filenames(bundle, tmp_path):
    hopper, ampere = tmp_path / "h100", tmp_path / "a100"
    shutil.copytree(bundle, hopper)
    shutil.copytree(bundle, ampere)
    _add_plans(hopper, "9.0")
    _add_plans(ampere, "8.0")
    repo = write_repository(hopper, tmp_path / "repo", RepositoryOptions(plan_bundles=(ampere,))).path
    got = configs(repo)
    for module in ("h_module", "l_module", "l_step"):
        config = got[f"{module}_fp32_trt"]
        assert config.platform == "tensorrt_plan"
        assert dict(config.cc_model_filenames) == {"9.0": "model_sm90.plan", "8.0": "model_sm80.plan"}
        assert (repo / config.name / "1" / "model_sm80.plan").read_bytes() == f"plan {module} sm8.0".encode()
        assert mc.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind) == "KIND_GPU"
        assert list(config.instance_group[0].profile) == ["0", "1"]  # latency and throughput profiles
        assert config.optimization.cuda.graphs
        specs = config.optimization.cuda.graph_spec
        if module == "l_step":  # no batching: the batch is in the dims; latency opt is 1 new minute after 389
            assert [list(specs[0].input["past_kv"].dim), specs[0].batch_size] == [[2, 2, 1, 4, 389, 12], 0]
        else:  # batch_size and dims without the batch at each profile's opt point
            assert [s.batch_size for s in specs] == [1, 128]
            assert list(specs[0].input[config.input[0].name].dim) == ([64, 8] if module == "h_module" else [390, 11])


def test_plans_of_other_weights_are_refused(bundle, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(bundle, other)
    m = Manifest.load(other)
    m.checkpoint = {**m.checkpoint, "weights_sha256": "0" * 64}
    m.save()
    with pytest.raises(UserError, match="other weights"):
        write_repository(bundle, tmp_path / "repo", RepositoryOptions(plan_bundles=(other,)))
    assert not (tmp_path / "repo").exists()


def test_refusals_write_nothing(bundle, tmp_path):
    out = tmp_path / "repo"
    with pytest.raises(ManifestError, match="no h_module/int8-cpu/onnx"):
        write_repository(bundle, out, RepositoryOptions(precision="int8-cpu"))
    with pytest.raises(UserError, match="--instances 0"):
        write_repository(bundle, out, RepositoryOptions(instances=0))
    assert list(tmp_path.iterdir()) == []  # no repository, no temp directory left beside it
    write_repository(bundle, out)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(UserError, match="exists"):
        write_repository(bundle, out, RepositoryOptions(instances=2))
    assert parse(out / "hrm_day" / "config.pbtxt").instance_group[0].count == 1
    write_repository(bundle, out, RepositoryOptions(instances=2), force=True)
    assert sorted(p.name for p in out.iterdir()) == before
    assert parse(out / "hrm_day" / "config.pbtxt").instance_group[0].count == 2
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]


def test_cli_writes_json_and_refuses_in_one_line(bundle, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["triton", str(bundle), "--out", str(tmp_path / "repo"), "--max-batch", "2", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["models"]["hrm_stream"] == "python"
    assert parse(tmp_path / "repo" / "h_module_fp32" / "config.pbtxt").max_batch_size == 2
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "hrm_export", "triton", str(tmp_path / "nowhere"), "--out",
                        str(tmp_path / "r2")], capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.startswith("error:") and "hint:" in p.stderr and "Traceback" not in p.stderr


def test_pbtxt_strings_and_enums_round_trip():
    config = {"name": 'odd "name" \\ here', "backend": "python", "max_batch_size": 0,
              "parameters": [{"key": "k", "value": {"string_value": "line\nbreak"}}],
              "instance_group": [{"count": 2, "kind": Enum("KIND_CPU")}], "dynamic_batching": None}
    parsed = text_format.Parse(to_pbtxt(config), mc.ModelConfig())
    assert parsed.name == 'odd "name" \\ here'
    assert parsed.parameters["k"].string_value == "line\nbreak"
    assert parsed.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert not parsed.HasField("dynamic_batching")
