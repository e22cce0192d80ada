import json

import pytest
from parity_bundle import copy_bundle, tiny_bundle

from hrm_export.core.errors import ManifestError
from hrm_export.core.manifest import Artifact, Manifest
from model_src.config import tiny_config


def test_roundtrip_and_contents():
    m = Manifest.load(tiny_bundle())
    assert [a.module for a in m.artifacts] == ["h_module", "l_module", "l_step", "l_step_static"]
    assert m.config == tiny_config(max_days=16)
    assert m.checkpoint_sha256 and len(m.checkpoint_sha256) == 64 and m.checkpoint["path"] == "checkpoint.safetensors"
    assert set(m.versions) >= {"torch", "onnx", "onnxruntime", "hrm_export"} and m.created
    assert m.profiles["small"]["axes"]["days"] == [1, 8, 16]
    step = m.find("l_step")
    assert step.opset == 23 and step.profile == ["small"] and step.made_by["tool"] == "torch.onnx.export"
    assert step.outputs[-1] == {"name": "present_kv", "dtype": "float32",
                                "shape": [2, 2, "batch", 4, "total_minutes", 12]}
    m.verify_hashes()  # untouched bundle


def test_find_names_what_exists():
    with pytest.raises(ManifestError, match="no l_step/int8/onnx artifact .*l_step/fp32/onnx") as e:
        Manifest.load(tiny_bundle()).find("l_step", "int8")
    assert e.value.hint


def test_add_replaces_same_key_and_save_is_loadable(tmp_path):
    d = copy_bundle(tmp_path)
    m = Manifest.load(d)
    old = m.find("h_module")
    m.add(Artifact("h_module", "fp32", "onnx", old.path, old.sha256, made_by={"tool": "again"}))
    m.add(Artifact("h_module", "int8-cpu", "onnx", "h_module.int8-cpu.onnx", "0" * 64))
    m.save()
    again = Manifest.load(d)
    assert len(again.artifacts) == 5 and again.find("h_module").made_by == {"tool": "again"}
    assert again.find("h_module", "int8-cpu").path == "h_module.int8-cpu.onnx"


def test_tampered_artifact_is_detected(tmp_path):
    d = copy_bundle(tmp_path)
    with open(d / "l_module.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ManifestError, match="l_module.onnx: sha256 .* differs") as e:
        Manifest.load(d).verify_hashes()
    assert "hrm-export export" in e.value.hint
    (d / "l_module.onnx").unlink()
    with pytest.raises(ManifestError, match="missing"):
        Manifest.load(d).verify_hashes()


def test_missing_or_corrupt_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no manifest.json"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="corrupt manifest"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "hrm-export/manifest-v1", "config": {"x": 1},
                                                         "artifacts": []}))
    with pytest.raises(ManifestError, match="unknown HRMConfig field"):
        Manifest.load(tmp_path)
