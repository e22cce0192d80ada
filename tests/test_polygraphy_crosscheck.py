"""verify's saved feeds and reference outputs re-checked by Polygraphy's own ONNX Runtime runner and comparator."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from parity_bundle import tiny_bundle

from hrm_export.verify.bundle import verify_bundle

POLYGRAPHY = Path(sys.executable).with_name("polygraphy")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("poly")
    verify_bundle(tiny_bundle(), n_random=0, streaming=False, save_inputs=d / "inputs.json",
                  save_outputs=d / "ref.json", save_module="l_module")
    return d


def _polygraphy(outputs: Path, inputs: Path) -> subprocess.CompletedProcess:
    cmd = [str(POLYGRAPHY), "run", str(tiny_bundle() / "l_module.onnx"), "--onnxrt", "--load-inputs", str(inputs),
           "--load-outputs", str(outputs), "--atol", "1e-4", "--rtol", "1e-3"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_polygraphy_agrees(saved):
    p = _polygraphy(saved / "ref.json", saved / "inputs.json")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "PASSED" in p.stdout + p.stderr


def test_polygraphy_catches_a_tampered_output(saved, tmp_path):
    from polygraphy.comparator import RunResults

    results = RunResults.load(str(saved / "ref.json"))
    name, iterations = results[0]
    iterations[1]["action_logits"] = iterations[1]["action_logits"] + 1e-2  # one output, one iteration
    results.save(str(tmp_path / "tampered.json"))
    p = _polygraphy(tmp_path / "tampered.json", saved / "inputs.json")
    assert p.returncode != 0
    assert "FAILED" in p.stdout + p.stderr
    assert len(json.loads((saved / "inputs.json").read_text())) == len(iterations)
