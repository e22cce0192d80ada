"""hrm_run --trust against bundles signed by the real `hrm-export sign`: the right key opens the bundle and the
decisions are those of the unsigned run; a wrong key, an unsigned bundle, a file changed with its manifest sha256
updated, and an added file are each refused with exit 1 and one error line, worded as the Python check words it.
The refusals of each step in detail are cpp/tests/test_signature.cpp's."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from bundle_tools import key_pair, rehashed_tamper
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from hrm_export.cli import app
from hrm_export.core.signing import SignatureError, verify_signature


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return {"key": key_pair(d, "key"), "other": key_pair(d, "other"), "p384": key_pair(d, "p384", ec.SECP384R1())}


@pytest.fixture(scope="module")
def signed(cpp_fixtures, keys, tmp_path_factory):
    bundle = shutil.copytree(cpp_fixtures / "bundle", tmp_path_factory.mktemp("signed") / "bundle")
    result = CliRunner().invoke(app, ["sign", str(bundle), "--key", str(keys["key"][0])])
    assert result.exit_code == 0, result.output
    assert (bundle / "model.sig").is_file()
    return bundle


def _run(build, fixtures, bundle, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([str(build / "hrm_run"), str(bundle), "--days", str(fixtures / "days.npy"), "--minutes",
                           str(fixtures / "minutes.npy"), "--backend", "ort-cpu", "--full", "--json", *map(str, extra)],
                          capture_output=True, text=True, timeout=300)


def _rows(done: subprocess.CompletedProcess) -> list[dict]:
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()][:-1]  # the summary names the bundle's path


def test_the_signing_key_opens_it_and_the_decisions_are_the_unsigned_ones(cpp_build, cpp_fixtures, signed, keys):
    trusted = _run(cpp_build, cpp_fixtures, signed, "--trust", keys["key"][1])
    assert f"signed with the trusted key {keys['key'][1]}" in trusted.stderr
    unsigned = _run(cpp_build, cpp_fixtures, cpp_fixtures / "bundle")
    assert "unsigned" in unsigned.stderr
    assert _rows(trusted) == _rows(unsigned) and len(_rows(trusted)) > 0
    # without a key nothing is checked, as in the Python runtime; it says so
    assert "signed, not checked (pass --trust KEY.pub)" in _run(cpp_build, cpp_fixtures, signed).stderr


def test_a_p384_signature_verifies_with_its_key_only(cpp_build, cpp_fixtures, keys, tmp_path):
    bundle = shutil.copytree(cpp_fixtures / "bundle", tmp_path / "bundle")
    result = CliRunner().invoke(app, ["sign", str(bundle), "--key", str(keys["p384"][0])])
    assert result.exit_code == 0, result.output
    assert _run(cpp_build, cpp_fixtures, bundle, "--trust", keys["p384"][1]).returncode == 0
    done = _run(cpp_build, cpp_fixtures, bundle, "--trust", keys["key"][1])
    assert done.returncode == 1 and "not signed with the key" in done.stderr
    done = _run(cpp_build, cpp_fixtures, bundle, "--trust", "")
    assert done.returncode == 1 and "--trust needs a public key file" in done.stderr


def _python_refusal(bundle, key) -> str:
    with pytest.raises(SignatureError) as e:
        verify_signature(bundle, key)
    return str(e.value)


@pytest.mark.parametrize("case", ["wrong key", "unsigned", "rehashed tampering", "extra file"])
def test_refused_with_one_line_as_python_words_it(cpp_build, cpp_fixtures, signed, keys, tmp_path, case):
    bundle = shutil.copytree(signed if case != "unsigned" else cpp_fixtures / "bundle", tmp_path / "bundle")
    key = keys["other" if case == "wrong key" else "key"][1]
    if case == "rehashed tampering":  # a changed graph with its new sha256 in the manifest: every hash passes
        rehashed_tamper(bundle, "l_step.onnx")
        assert _run(cpp_build, cpp_fixtures, bundle).returncode == 0  # only the signature catches it
    if case == "extra file":
        (bundle / "notes.txt").write_text("added after signing")
    expected = {"wrong key": f"model.sig: not signed with the key {key}",
                "unsigned": "not signed (no model.sig), and a signature is required",
                "rehashed tampering": "files differ from what was signed: changed: l_step.onnx, manifest.json",
                "extra file": "files differ from what was signed: not signed: notes.txt"}[case]
    done = _run(cpp_build, cpp_fixtures, bundle, "--trust", key)
    lines = done.stderr.splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), lines
    assert expected in lines[0] and done.stdout == ""
    python = _python_refusal(bundle, key)
    if case == "wrong key":  # C++ names both key ids where Python adds "(or the signature was altered)"
        assert lines[0].split(" (")[0] == "error: " + python.split(" (")[0]
    else:
        assert lines[0] == "error: " + python
