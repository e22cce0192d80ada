"""Signed bundles (core/signing.py): opened with their key on every backend, refused with another key, without a
signature when one is required, and after tampering that re-hashed the manifest; the same signature checked
with OpenSSL alone (tools/verify_bundle_signature.sh: the steps the C++ runtime takes)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from bundle_tools import edit_manifest, key_pair, rehashed_tamper
from cryptography.hazmat.primitives.asymmetric import ec
from parity_bundle import copy_bundle

from hrm_export.core.errors import UserError
from hrm_export.core.manifest import Manifest
from hrm_export.core.signing import SignatureError, sign_bundle, signed_files, verify_signature
from hrm_export.runtime import HRMRuntime

SCRIPT = Path(__file__).parents[1] / "tools" / "verify_bundle_signature.sh"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return {"key": key_pair(d, "key"), "other": key_pair(d, "other"), "p384": key_pair(d, "p384", ec.SECP384R1())}


@pytest.fixture
def signed(tmp_path, keys) -> Path:
    bundle = copy_bundle(tmp_path)
    sign_bundle(bundle, keys["key"][0])
    return bundle


@pytest.mark.parametrize("backend", ["torch", "ort-cpu"])
def test_a_signed_bundle_opens_with_its_key(signed, keys, backend):
    with HRMRuntime.open(signed, backend=backend, trust=keys["key"][1]) as rt:
        assert rt.backend_name == backend


def test_the_signature_lists_every_file_of_the_bundle_but_itself(signed):
    listed = signed_files(signed / "model.sig")
    on_disk = {p.name for p in signed.iterdir()} - {"model.sig"}
    assert set(listed) == on_disk >= {"manifest.json", "checkpoint.safetensors", "h_module.onnx", "l_step.onnx"}
    m = Manifest.load(signed)
    assert all(listed[a.path] == a.sha256 for a in m.artifacts)  # the same sha256 the manifest records


@pytest.mark.parametrize("backend", ["torch", "ort-cpu"])
def test_refused_with_another_key(signed, keys, backend):
    with pytest.raises(SignatureError, match="model.sig: not signed with the key .*other.pub") as e:
        HRMRuntime.open(signed, backend=backend, trust=keys["other"][1])
    assert "public key of the key that signed it" in e.value.hint


@pytest.mark.parametrize("backend", ["torch", "ort-cpu"])
def test_refused_without_a_signature_when_one_is_required(tmp_path, keys, backend):
    bundle = copy_bundle(tmp_path)
    HRMRuntime.open(bundle, backend=backend).close()  # unsigned is fine when no signature is asked for
    with pytest.raises(SignatureError, match=r"not signed \(no model.sig\), and a signature is required") as e:
        HRMRuntime.open(bundle, backend=backend, trust=keys["key"][1])
    assert "hrm-export sign" in e.value.hint


@pytest.mark.parametrize("backend", ["torch", "ort-cpu"])
def test_rehashed_tampering_opens_without_trust_and_is_refused_with_it(signed, keys, backend):
    """The gap hashes leave: a changed graph with its new sha256 in the manifest passes every hash check.
    Only the signature catches it."""
    rehashed_tamper(signed, "l_step.onnx")
    HRMRuntime.open(signed, backend=backend).close()
    with pytest.raises(SignatureError, match="files differ from what was signed: changed: l_step.onnx, manifest.json"):
        HRMRuntime.open(signed, backend=backend, trust=keys["key"][1])


@pytest.mark.parametrize(("change", "message"), [
    (lambda b: (b / "notes.txt").write_text("added after signing"), "not signed: notes.txt"),
    (lambda b: (b / "l_module.onnx").unlink(), "missing: l_module.onnx"),
    (lambda b: edit_manifest(b, lambda d: d["versions"].update(hrm_export="0.1.9")), "changed: manifest.json"),
])
def test_any_added_missing_or_changed_file_is_refused(signed, keys, change, message):
    change(signed)
    with pytest.raises(SignatureError, match=message):
        verify_signature(signed, keys["key"][1])


def test_an_altered_signature_is_refused(signed, keys):
    sig = json.loads((signed / "model.sig").read_text())
    raw = bytearray(base64.b64decode(sig["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[-1] ^= 0x01
    sig["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    (signed / "model.sig").write_text(json.dumps(sig))
    with pytest.raises(SignatureError, match=r"not signed with the key .* \(or the signature was altered\)"):
        verify_signature(signed, keys["key"][1])
    (signed / "model.sig").write_text("{not json")
    with pytest.raises(SignatureError, match="model.sig: not a readable model-signing signature"):
        verify_signature(signed, keys["key"][1])


def test_a_symlink_in_the_bundle_is_refused(signed, keys):
    (signed / "extra.onnx").symlink_to(signed / "l_step.onnx")
    with pytest.raises(SignatureError, match="symlink"):
        verify_signature(signed, keys["key"][1])


def test_keys_that_are_not_what_they_should_be(signed, keys, tmp_path):
    with pytest.raises(UserError, match="not an EC public key in PEM") as e:
        verify_signature(signed, keys["key"][0])  # the private key passed as the trusted one
    assert "-pubout" in e.value.hint
    with pytest.raises(UserError, match="--trust .*nope.pub: no such key file"):
        verify_signature(signed, tmp_path / "nope.pub")


def test_rewriting_the_manifest_drops_the_signature(signed, keys):
    """precision make, a re-export or build rewrite manifest.json: the bundle is then plainly unsigned."""
    m = Manifest.load(signed, trust=keys["key"][1])
    m.save()
    assert not (signed / "model.sig").exists()
    with pytest.raises(SignatureError, match="not signed"):
        Manifest.load(signed, trust=keys["key"][1])


def test_a_p384_key_signs_and_verifies(tmp_path, keys):
    bundle = copy_bundle(tmp_path)
    sign_bundle(bundle, keys["p384"][0])
    verify_signature(bundle, keys["p384"][1])
    with pytest.raises(SignatureError):
        verify_signature(bundle, keys["key"][1])


# -- the same signature without Python: OpenSSL, jq and coreutils (the C++ runtime's steps) ------------------
needs_tools = pytest.mark.skipif(not all(shutil.which(t) for t in ("openssl", "jq", "basenc", "sha256sum")),
                                 reason="tools/verify_bundle_signature.sh needs openssl, jq and coreutils' basenc")


def _shell_verify(bundle: Path, key: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPT), str(bundle), str(key)], capture_output=True, text=True, timeout=120)


@needs_tools
@pytest.mark.parametrize("kind", ["key", "p384"])
def test_openssl_alone_verifies_what_python_signed(tmp_path, keys, kind):
    bundle = copy_bundle(tmp_path)
    sign_bundle(bundle, keys[kind][0])
    r = _shell_verify(bundle, keys[kind][1])
    assert r.returncode == 0 and r.stdout.startswith(f"OK: {len(signed_files(bundle / 'model.sig'))} files"), r.stderr


@needs_tools
@pytest.mark.parametrize(("case", "message"), [
    ("other-key", "signed with another key"), ("rehashed", "files differ from what was signed"),
    ("extra-file", "found: notes.txt"), ("unsigned", "is not signed"), ("no-key-id", "does not verify with"),
])
def test_openssl_alone_refuses_what_python_refuses(signed, keys, case, message):
    key = keys["other" if case in ("other-key", "no-key-id") else "key"][1]
    if case == "rehashed":
        rehashed_tamper(signed)
    if case == "extra-file":
        (signed / "notes.txt").write_text("x")
    if case == "unsigned":
        (signed / "model.sig").unlink()
    if case == "no-key-id":  # without the key id, the ECDSA check itself must refuse the other key
        sig = json.loads((signed / "model.sig").read_text())
        sig["verificationMaterial"]["publicKey"]["hint"] = ""
        (signed / "model.sig").write_text(json.dumps(sig))
    r = _shell_verify(signed, key)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    with pytest.raises((SignatureError, UserError)):
        verify_signature(signed, key)  # and the Python check agrees
