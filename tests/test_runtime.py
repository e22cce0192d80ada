"""HRMRuntime: opening a bundle fails closed, auto picks and names its backend, decisions follow the heads,
and `hrm-export run` replays a day."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from runtime_bundle import copy_bundle, tiny_bundle, tiny_runtime_model, tokens
from typer.testing import CliRunner

from hrm_export.cli import app
from hrm_export.core.backend_registry import tensorrt_module
from hrm_export.core.errors import ManifestError, UserError
from hrm_export.core.manifest import Artifact, Manifest
from hrm_export.runtime import ArtifactMismatchError, HRMRuntime
from model_src.atomic import file_sha256
from model_src.config import tiny_config

# Why TensorRT cannot run on this CPU machine: no library at all, or (with the lean runtime of the [dev] extra) no GPU.
TRT_HERE = "TensorRT is not installed" if tensorrt_module() is None else "no CUDA GPU is visible"


def edit_manifest(bundle, change) -> None:
    path = bundle / "manifest.json"
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d, indent=2))


def test_auto_picks_the_fastest_available_backend_and_says_why(caplog):
    with caplog.at_level(logging.INFO, logger="hrm_export.runtime"):
        rt = HRMRuntime.open(tiny_bundle())
    assert rt.backend_name == "ort-cpu"  # no TensorRT, no CUDA here: ORT CPU beats eager PyTorch
    assert f"tensorrt: {TRT_HERE}" in rt.reason and "ort-cuda:" in rt.reason
    assert "backend auto: picked ort-cpu" in caplog.text
    assert rt.limits.profile == "latency" and rt.limits.batch == 8 and rt.limits.days == rt.cfg.max_days
    assert HRMRuntime.open(tiny_bundle(), profile="throughput").limits.batch == 128


def test_run_day_decisions_follow_the_model_heads():
    model = tiny_runtime_model()
    days, minutes = tokens(3, 10, 80, seed=20)
    with torch.no_grad():
        logits, quantity, q_values, _, _ = model(days, minutes)
    tl = HRMRuntime.from_model(model).run_day(days, minutes)
    probs = torch.softmax(logits, -1)
    np.testing.assert_array_equal(tl.action, probs.argmax(-1).numpy())
    np.testing.assert_allclose(tl.confidence, probs.max(-1).values.numpy(), atol=1e-6)
    np.testing.assert_allclose(tl.quantity, quantity[..., 0].numpy(), atol=1e-6)
    wants = (q_values[..., 0] > q_values[..., 1]).numpy()
    for b in range(3):
        first = int(np.argmax(wants[b])) if wants[b].any() else -1
        assert tl.halt_minute[b] == first
        assert (tl.halted[b] == (np.arange(80) >= first)).all() if first >= 0 else not tl.halted[b].any()
    assert tl.at(5).action_name == tuple(("short", "flat", "long")[a] for a in tl.action[:, 5])


@pytest.mark.parametrize("backend", ["ort-cpu", "torch"])
def test_tampered_artifact_is_refused_before_any_inference(tmp_path, backend):
    bundle = copy_bundle(tmp_path)
    with open(bundle / "l_step.onnx", "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(ManifestError, match=r"l_step.onnx: sha256 .* differs") as e:
        HRMRuntime.open(bundle, backend=backend)
    assert "hrm-export export" in e.value.hint


def test_config_that_differs_from_the_checkpoint_and_graphs_is_refused(tmp_path):
    bundle = copy_bundle(tmp_path)
    edit_manifest(bundle, lambda d: d["config"].update(l_layers=3))  # hashes fine, config no longer the graphs'
    with pytest.raises(ManifestError, match=r"config in manifest.json is not the checkpoint's: l_layers 3 in "
                                            r"manifest.json, 2 in checkpoint.safetensors"):
        HRMRuntime.open(bundle, backend="ort-cpu")


def test_graph_that_disagrees_with_its_manifest_record_is_refused(tmp_path):
    bundle = copy_bundle(tmp_path)
    (bundle / "l_step.onnx").write_bytes((bundle / "l_module.onnx").read_bytes())  # wrong graph, re-hashed
    digest = file_sha256(bundle / "l_step.onnx")
    edit_manifest(bundle, lambda d: [a.update(sha256=digest) for a in d["artifacts"] if a["module"] == "l_step"])
    with pytest.raises(ArtifactMismatchError, match=r"l_step.onnx: graph inputs \['minutes', 'film_gamma', "
                                                     r"'film_beta'\] differ"):
        HRMRuntime.open(bundle, backend="ort-cpu")


def test_versions_profiles_and_checkpoint_are_checked(tmp_path):
    bundle = copy_bundle(tmp_path)
    with pytest.raises(ArtifactMismatchError, match="no artifact set built for profile 'overnight'"):
        HRMRuntime.open(bundle, profile="overnight")
    edit_manifest(bundle, lambda d: d["versions"].update(hrm_export="9.1.0"))
    with pytest.raises(ArtifactMismatchError, match=r"made by hrm-export 9.1.0, this is"):
        HRMRuntime.open(bundle)
    edit_manifest(bundle, lambda d: d["versions"].update(hrm_export="0.1.3"))  # same 0.1 release: fine
    HRMRuntime.open(bundle, backend="ort-cpu")
    with open(bundle / "checkpoint.safetensors", "ab") as f:
        f.write(b" ")  # the checkpoint changed after export
    with pytest.raises(ManifestError, match="checkpoint.safetensors: sha256 .* differs from the manifest's"):
        HRMRuntime.open(bundle, backend="torch")
    (bundle / "manifest.json").unlink()
    with pytest.raises(ManifestError, match="no manifest.json"):
        HRMRuntime.open(bundle)


def test_tensorrt_plans_need_tensorrt(tmp_path):
    bundle = copy_bundle(tmp_path)
    m = Manifest.load(bundle)
    for module in ("h_module", "l_module", "l_step"):  # plans with a TensorRT 10.13 header (see plan_header)
        plan = bundle / f"{module}.fp32.plan"
        plan.write_bytes(b"ftrt" + bytes(20) + bytes([10, 13, 0, 35]) + bytes(64))
        spec = m.find(module)
        m.add(Artifact(module, "fp32", "trt-plan", plan.name, file_sha256(plan), spec.inputs, spec.outputs,
                       profile=spec.profile, extra={"tensorrt_version": "10.13.0.35", "compute_capability": "9.0"}))
    m.save()
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        rt = HRMRuntime.open(bundle)
        assert rt.backend_name != "tensorrt" and f"tensorrt: {TRT_HERE}" in rt.reason
        with pytest.raises(UserError, match=f"backend tensorrt cannot run fp32 here: {TRT_HERE}"):
            HRMRuntime.open(bundle, backend="tensorrt")


@pytest.mark.tensorrt
def test_plan_from_another_tensorrt_release_is_refused(tmp_path):
    trt = pytest.importorskip("tensorrt", reason="TensorRT (libnvinfer) is not installed")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT plans need a CUDA GPU")
    bundle = copy_bundle(tmp_path)
    m = Manifest.load(bundle)
    for module in ("h_module", "l_module", "l_step"):
        plan = bundle / f"{module}.fp32.plan"
        plan.write_bytes(b"ftrt" + bytes(20) + bytes([1, 2, 3, 4]) + bytes(64))
        spec = m.find(module)
        m.add(Artifact(module, "fp32", "trt-plan", plan.name, file_sha256(plan), spec.inputs, spec.outputs,
                       profile=spec.profile, extra={"tensorrt_version": "1.2.3.4", "compute_capability": "9.0"}))
    m.save()
    with pytest.raises(UserError, match=rf"built with TensorRT 1.2.3.4, running TensorRT {trt.__version__}"):
        HRMRuntime.open(bundle, backend="tensorrt")


def test_cli_run_replays_the_day_like_run_day(tmp_path):
    days, minutes = tokens(2, 16, 25, seed=21)
    np.save(tmp_path / "days.npy", days[0].numpy())  # one instrument, no batch axis
    np.savez(tmp_path / "minutes.npz", minutes=minutes[:1].numpy())
    r = CliRunner().invoke(app, ["run", str(tiny_bundle()), "--days", str(tmp_path / "days.npy"), "--minutes",
                                 str(tmp_path / "minutes.npz"), "--backend", "ort-cpu", "--step", "3", "--json"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    rows, summary = lines[:-1], lines[-1]["summary"]
    expected = HRMRuntime.open(tiny_bundle(), backend="ort-cpu").run_day(days[:1], minutes[:1])
    assert [row["minute"] for row in rows] == list(range(25)) and summary["backend"] == "ort-cpu"
    assert [row["action"] for row in rows] == [("short", "flat", "long")[a] for a in expected.action[0]]
    np.testing.assert_allclose([row["confidence"] for row in rows], expected.confidence[0], atol=1e-5)
    assert [row["halted"] for row in rows] == expected.halted[0].tolist()
    assert summary["halt_minute"] == expected.halt_minute.tolist() and summary["mode"] == "stream"
    table = CliRunner().invoke(app, ["run", str(tiny_bundle()), "--days", str(tmp_path / "days.npy"), "--minutes",
                                     str(tmp_path / "minutes.npz"), "--full"])
    assert table.exit_code == 0 and "decisions" in table.stdout and "run_day p50" in table.stdout


def test_cli_run_bad_input_is_one_line_and_exit_1(tmp_path):
    np.save(tmp_path / "days.npy", np.zeros((16, 8), np.float32))
    np.save(tmp_path / "minutes.npy", np.full((5, 11), np.nan, np.float32))
    r = subprocess.run([sys.executable, "-m", "hrm_export", "run", str(tiny_bundle()), "--days",
                        str(tmp_path / "days.npy"), "--minutes", str(tmp_path / "minutes.npy")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "minutes: non-finite value nan at instrument 0, session minute 0, feature 0 (ret_1m)" in r.stderr
    assert "hint: fill or drop missing bars" in r.stderr and "Traceback" not in r.stderr


def test_the_docs_example_runs(tmp_path):
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "runtime.md").read_text()
    example = doc.split("```python\n", 1)[1].split("```", 1)[0]
    r = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "refused: push at start_minute 392 skips 2 minute(s)" in r.stdout and "hrm_runtime_stage_seconds" in r.stdout


def test_cli_run_replays_bar_files(tmp_path):
    data = pytest.importorskip("model_src.data", reason="model_src.data not installed")
    synthetic = pytest.importorskip("model_src.synthetic", reason="model_src.synthetic missing")
    daily, minute = synthetic.synthetic_market(8, seed=3)
    daily.to_csv(tmp_path / "daily.csv", index=False)
    minute.to_csv(tmp_path / "minute.csv", index=False)
    sample = data.build_samples(daily, minute, lookback=tiny_config().max_days)[-2]  # the runtime's look-back
    r = CliRunner().invoke(app, ["run", str(tiny_bundle()), "--days", str(tmp_path / "daily.csv"), "--minutes",
                                 str(tmp_path / "minute.csv"), "--date", str(sample.date), "--step", "30", "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines() if x.startswith('{"minute"')]
    expected = HRMRuntime.from_model(tiny_runtime_model()).run_day(sample.days[None], sample.minutes[None])
    assert len(rows) == 390
    np.testing.assert_allclose([row["confidence"] for row in rows], expected.confidence[0], atol=1e-4)
    assert [row["halted"] for row in rows] == expected.halted[0].tolist()
