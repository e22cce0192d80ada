"""A bundle is self-contained: moved to another directory, with the checkpoint it was exported from gone, it
opens on every backend, verify and bench work on it, and its signature still holds."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from bundle_tools import key_pair
from parity_bundle import tiny_bundle
from runtime_bundle import in_range

from hrm_export.bench import bench_bundle
from hrm_export.bench.suite import SuiteOptions
from hrm_export.core.manifest import Manifest
from hrm_export.core.signing import sign_bundle
from hrm_export.runtime import HRMRuntime
from hrm_export.verify.bundle import verify_bundle


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """The export's whole directory (checkpoint it came from + bundle) copied, the bundle moved elsewhere and
    deeper, and everything else deleted: nothing the bundle could still point at is left."""
    root = tmp_path_factory.mktemp("relocate")
    shutil.copytree(tiny_bundle().parent, root / "made-here")
    target = root / "somewhere" / "else" / "bundle"
    target.parent.mkdir(parents=True)
    shutil.move(root / "made-here" / "bundle", target)
    shutil.rmtree(root / "made-here")
    return target


def test_the_manifest_names_no_path_outside_the_bundle():
    text = (tiny_bundle() / "manifest.json").read_text()
    assert str(tiny_bundle().parent) not in text
    m = Manifest.load(tiny_bundle())
    assert m.checkpoint["path"] == "checkpoint.safetensors" and m.checkpoint["source"] == "tiny.safetensors"
    assert all("/" not in a.path for a in m.artifacts)


def test_a_moved_bundle_opens_on_every_backend_and_decides_as_before(moved):
    g = torch.Generator().manual_seed(3)
    days, minutes = in_range(torch.randn(2, 16, 8, generator=g), "days"), in_range(torch.randn(2, 60, 11, generator=g),
                                                                                 "minutes")
    timelines = {}
    for backend in ("torch", "ort-cpu"):
        with HRMRuntime.open(moved, backend=backend) as rt, HRMRuntime.open(tiny_bundle(), backend=backend) as here:
            timelines[backend] = rt.run_day(days, minutes)
            before = here.run_day(days, minutes)
        np.testing.assert_array_equal(timelines[backend].action, before.action)  # the same model, moved
        np.testing.assert_array_equal(timelines[backend].halt_minute, before.halt_minute)
    np.testing.assert_allclose(timelines["torch"].action_logits, timelines["ort-cpu"].action_logits, atol=1e-4)


def test_verify_and_bench_work_on_a_moved_bundle(moved):
    report = verify_bundle(moved, n_random=0, streaming=False)
    assert report.passed and report.meta["checkpoint"]["path"] == "checkpoint.safetensors"
    result = bench_bundle(moved, SuiteOptions(backends=("torch", "ort-cpu"), precisions=("fp32",), quick=True,
                                              budget_s=0.01, min_iters=1))
    measured = {(c["backend"], c["module"]) for c in result["cells"] if c.get("timing")}
    assert {("torch", "day"), ("ort-cpu", "day")} <= measured


def test_a_signed_bundle_moved_keeps_its_signature(tmp_path):
    pem, pub = key_pair(tmp_path / "keys")
    shutil.copytree(tiny_bundle(), tmp_path / "a")
    sign_bundle(tmp_path / "a", pem)
    shutil.move(tmp_path / "a", tmp_path / "b")  # another directory name, as a deployment copies it
    with HRMRuntime.open(tmp_path / "b", backend="ort-cpu", trust=pub) as rt:
        assert rt.backend_name == "ort-cpu"
