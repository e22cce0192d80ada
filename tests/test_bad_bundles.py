"""Bad bundles and bad export requests, as a user meets them on the command line: each case is exit 1, one
`error:` line naming the thing (and a `hint:` line with the fix), no traceback, and no file written where it
should not be. The cases: paths that leave the bundle, manifests of the wrong shape, a bundle argument that is
a file, a config edited in manifest.json, tampered files (inspect says so), signatures required with --trust,
and export requests that cannot succeed (found before the model is loaded)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bundle_tools import artifact, assert_one_line_refusal, edit_manifest, files, key_pair, rehashed_tamper
from cli_run import hrm_export
from parity_bundle import copy_bundle, tiny_bundle
from runtime_bundle import in_range

from hrm_export.core.errors import ManifestError
from hrm_export.core.manifest import Manifest
from hrm_export.core.signing import sign_bundle
from hrm_export.runtime import HRMRuntime


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return key_pair(d, "key"), key_pair(d, "other")


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("day")
    g = np.random.default_rng(0)
    np.save(d / "days.npy", in_range(g.standard_normal((16, 8)).astype(np.float32), "days"))
    np.save(d / "minutes.npy", in_range(g.standard_normal((20, 11)).astype(np.float32), "minutes"))
    return d / "days.npy", d / "minutes.npy"


def verb_args(verb: str, bundle: Path, day: tuple[Path, Path], backend: str = "ort-cpu") -> list:
    """Each verb that loads a bundle, asked to do as little as it can (they all refuse before running)."""
    return {"inspect": ["inspect", bundle],
            "verify": ["verify", bundle, "--random-points", "0", "--no-streaming", "--backend", backend],
            "run": ["run", bundle, "--days", day[0], "--minutes", day[1], "--backend", backend],
            "bench": ["bench", bundle, "--quick", "--backend", backend, "--precision", "fp32", "--seconds", "0.01"],
            }[verb]


def _outside(bundle: Path, name: str) -> Path:
    """A copy of a bundle file outside the bundle (what an escaping path or symlink would reach)."""
    target = bundle.parent / f"elsewhere-{name}"
    shutil.copyfile(bundle / name, target)
    return target


def _symlink_out(bundle: Path, name: str) -> None:
    target = _outside(bundle, name)
    (bundle / name).unlink()
    (bundle / name).symlink_to(target)


# (id, tamper(bundle), words the error line must hold)
BUNDLE_CASES = [
    ("artifact-path-dotdot", lambda b: edit_manifest(b, lambda d: artifact(d, "l_module").update(
        path="../../../../etc/hostname")), ["'../../../../etc/hostname'", "leaves the bundle"]),
    ("artifact-path-absolute", lambda b: edit_manifest(b, lambda d: artifact(d, "l_module").update(
        path=str(_outside(b, "l_module.onnx")))), ["not relative to the bundle"]),
    ("artifact-symlink-out", lambda b: _symlink_out(b, "l_module.onnx"), ["l_module.onnx: resolves to",
                                                                          "outside the bundle"]),
    ("checkpoint-path-absolute", lambda b: edit_manifest(b, lambda d: d["checkpoint"].update(
        path=str(_outside(b, "checkpoint.safetensors")))), ["the checkpoint", "not relative to the bundle"]),
    ("checkpoint-symlink-out", lambda b: _symlink_out(b, "checkpoint.safetensors"),
     ["checkpoint.safetensors: resolves to", "outside the bundle"]),
    ("manifest-a-list", lambda b: (b / "manifest.json").write_text("[1, 2]"),
     ["corrupt manifest (a JSON list, expected an object)"]),
    ("manifest-a-string", lambda b: (b / "manifest.json").write_text('"bundle"'),
     ["corrupt manifest (a JSON str, expected an object)"]),
    ("manifest-artifacts-an-object", lambda b: edit_manifest(b, lambda d: d.update(artifacts={"a": 1})),
     ["corrupt manifest ('artifacts' is a JSON dict, expected a list)"]),
    ("changed-file", lambda b: (b / "l_step.onnx").write_bytes((b / "l_step.onnx").read_bytes() + b"\0"),
     ["l_step.onnx: sha256", "differs from the manifest's"]),
    ("missing-file", lambda b: (b / "h_module.onnx").unlink(), ["h_module.onnx: listed in the manifest but missing"]),
    ("missing-checkpoint", lambda b: (b / "checkpoint.safetensors").unlink(),
     ["checkpoint.safetensors: listed in the manifest but missing"]),
]


@pytest.mark.parametrize("verb", ["inspect", "verify", "run", "bench"])
@pytest.mark.parametrize(("case", "tamper", "needles"), BUNDLE_CASES, ids=[c[0] for c in BUNDLE_CASES])
def test_a_bad_bundle_is_one_line_on_every_verb(tmp_path, day, verb, case, tamper, needles):
    bundle = copy_bundle(tmp_path)
    tamper(bundle)
    before = files(tmp_path)
    r = hrm_export(*verb_args(verb, bundle, day))
    assert_one_line_refusal(r, *needles)
    assert files(tmp_path) == before  # nothing written, nothing read through the escaping path was changed


@pytest.mark.parametrize("backend", ["torch", "ort-cpu"])
@pytest.mark.parametrize(("field", "value"), [("h_layers", 3), ("norm_eps", 1e-3), ("n_minute_features", 12),
                                              ("max_minutes", 400)])
def test_a_config_edited_in_the_manifest_is_refused_at_open(tmp_path, day, backend, field, value):
    """The checkpoint and the graphs define the model; manifest.json only describes it. An edit is named."""
    bundle = copy_bundle(tmp_path)
    edit_manifest(bundle, lambda d: d["config"].update({field: value}))
    r = hrm_export(*verb_args("run", bundle, day, backend))
    assert_one_line_refusal(r, "config in manifest.json is not the checkpoint's",
                            f"{field} {value!r} in manifest.json")


@pytest.mark.parametrize("backend", ["torch", "ort-cpu"])
def test_without_a_checkpoint_the_graphs_hold_the_config(tmp_path, backend):
    """A random-init bundle has no checkpoint to hold the config against: the graphs' own record of it does."""
    bundle = copy_bundle(tmp_path)
    (bundle / "checkpoint.safetensors").unlink()
    edit_manifest(bundle, lambda d: (d.update(checkpoint={"path": None, "random_init_seed": 0}),
                                     d["config"].update(norm_eps=1e-3)))
    with pytest.raises(ManifestError, match=r"not the one h_module.onnx was exported with: norm_eps 0.001 in "
                                            r"manifest.json, 1e-05 in h_module.onnx"):
        HRMRuntime.open(bundle, backend=backend)


@pytest.mark.parametrize("verb", ["verify", "run", "bench"])
def test_a_bundle_argument_that_is_a_file(tmp_path, day, verb):
    bundle = copy_bundle(tmp_path)
    r = hrm_export(*verb_args(verb, bundle / "l_module.onnx", day))
    assert_one_line_refusal(r, "l_module.onnx: is a file, not a bundle directory")
    assert "hrm-export export --out" not in r.err  # not the old hint to export into that file


def test_inspect_describes_a_tampered_bundle_then_says_what_is_wrong(tmp_path):
    bundle = copy_bundle(tmp_path)
    (bundle / "l_step.onnx").write_bytes((bundle / "l_step.onnx").read_bytes() + b"\0")
    (bundle / "h_module.onnx").unlink()
    r = hrm_export("inspect", bundle)
    assert_one_line_refusal(r, "h_module.onnx: listed in the manifest but missing", "more problem(s) listed above")
    assert "l_step.onnx: sha256" in r.out and "integrity: FAILED" in r.out
    assert "action_logits" in r.out  # the rest of the bundle is still described
    r = hrm_export("inspect", tiny_bundle())
    assert r.code == 0 and "integrity: PASSED" in r.out and "signature: unsigned" in r.out


def test_inspect_json_of_a_tampered_bundle_is_json_and_exit_1(tmp_path):
    import json

    bundle = copy_bundle(tmp_path)
    (bundle / "l_step.onnx").write_bytes(b"not onnx")
    r = hrm_export("inspect", bundle, "--json")
    info = json.loads(r.out)
    step = next(a for a in info["artifacts"] if a["module"] == "l_step")
    assert r.code == 1 and info["integrity"]["ok"] is False and "sha256" in step["status"]
    assert any("not a readable ONNX model" in p["message"] for p in info["integrity"]["problems"])


def test_inspect_a_truncated_onnx_file(tmp_path):
    path = tmp_path / "l_module.onnx"
    path.write_bytes((tiny_bundle() / "l_module.onnx").read_bytes()[:5000])
    assert_one_line_refusal(hrm_export("inspect", path), "l_module.onnx: not a readable ONNX model")


# -- signatures required with --trust -------------------------------------------------------------------------
def _unsigned(bundle, keys):
    return keys[0][1]


def _other_key(bundle, keys):
    sign_bundle(bundle, keys[0][0])
    return keys[1][1]


def _rehashed(bundle, keys):
    sign_bundle(bundle, keys[0][0])
    rehashed_tamper(bundle)
    return keys[0][1]


TRUST_CASES = [("unsigned", _unsigned, ["not signed (no model.sig)"]),
               ("another-key", _other_key, ["model.sig: not signed with the key", "other.pub"]),
               ("rehashed-tamper", _rehashed, ["files differ from what was signed: changed: l_module.onnx, "
                                               "manifest.json"])]


@pytest.mark.parametrize("verb", ["inspect", "verify", "run", "bench"])
@pytest.mark.parametrize(("case", "make", "needles"), TRUST_CASES, ids=[c[0] for c in TRUST_CASES])
def test_trust_refuses_unsigned_other_keys_and_tampering(tmp_path, day, keys, verb, case, make, needles):
    bundle = copy_bundle(tmp_path)
    trust = make(bundle, keys)
    before = files(tmp_path)
    r = hrm_export(*verb_args(verb, bundle, day), "--trust", trust)
    assert_one_line_refusal(r, *needles)
    assert files(tmp_path) == before


def test_trust_passes_a_signed_bundle(tmp_path, day, keys):
    bundle = copy_bundle(tmp_path)
    r = hrm_export("sign", bundle, "--key", keys[0][0])
    assert r.code == 0 and "signed" in r.out and (bundle / "model.sig").is_file()
    r = hrm_export("inspect", bundle, "--trust", keys[0][1])
    assert r.code == 0 and f"signature: signed with the trusted key {keys[0][1]}" in r.out
    r = hrm_export(*verb_args("run", bundle, day), "--trust", keys[0][1], "--json")
    assert r.code == 0 and '"summary"' in r.out


@pytest.mark.parametrize(("case", "needles"), [
    ("tampered", ["l_step.onnx: sha256"]), ("public-key", ["not an unencrypted EC private key in PEM"]),
    ("no-key-file", ["--key", "no such key file"]), ("leftover-partial", ["temporary files of an interrupted run"])])
def test_sign_refuses_what_it_must_not_vouch_for(tmp_path, keys, case, needles):
    bundle = copy_bundle(tmp_path)
    key = {"public-key": keys[0][1], "no-key-file": tmp_path / "nope.pem"}.get(case, keys[0][0])
    if case == "tampered":
        (bundle / "l_step.onnx").write_bytes((bundle / "l_step.onnx").read_bytes() + b"\0")
    if case == "leftover-partial":
        (bundle / ".l_step.onnx.x1y2.partial").write_bytes(b"half")
    assert_one_line_refusal(hrm_export("sign", bundle, "--key", key), *needles)
    assert not (bundle / "model.sig").exists()


# -- export requests that cannot succeed: refused before the model is loaded ----------------------------------
@pytest.fixture
def no_model_load(monkeypatch):
    """Fails the test if the export gets as far as loading the model (the checks must come first)."""
    import hrm_export.export.bundle as bundle_module

    def load_reference(*_a, **_k):
        raise AssertionError("the model was loaded before the request was checked")

    monkeypatch.setattr(bundle_module, "load_reference", load_reference)


def _read_only_dir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o555)
        return d
    d = Path("/sys/kernel")  # root writes anywhere a mode allows; a sysfs directory refuses new files even to root
    if not d.is_dir():
        pytest.skip("running as root and no sysfs directory to stand for a read-only one")
    return d


@pytest.mark.parametrize(("case", "needles"), [
    ("out-is-a-file", ["is a file; a bundle is a directory"]),
    ("out-read-only", ["cannot write in"]),
    ("out-under-a-file", ["is a file, so the bundle directory cannot be made"]),
    ("opset-99", ["opset 99 is not one this exporter writes (18 to 25 here)"]),
    ("opset-17", ["opset 17 is not one this exporter writes"]),
])
def test_export_refuses_before_loading_the_model(tmp_path, no_model_load, case, needles):
    out = {"out-is-a-file": tmp_path / "bundle.onnx", "out-read-only": None,
           "out-under-a-file": tmp_path / "bundle.onnx" / "b"}.get(case, tmp_path / "b")
    if case in ("out-is-a-file", "out-under-a-file"):
        (tmp_path / "bundle.onnx").write_bytes(b"keep me")
    if case == "out-read-only":
        out = _read_only_dir(tmp_path)
    before = files(tmp_path)
    opset = {"opset-99": ["--opset", "99"], "opset-17": ["--opset", "17"]}.get(case, [])
    r = hrm_export("export", "--out", out, *opset)
    assert_one_line_refusal(r, *needles)
    assert files(tmp_path) == before  # the file named by --out is untouched; no directory was made


# -- half-written output --------------------------------------------------------------------------------------
def test_an_export_killed_after_fp32_leaves_no_manifest_and_the_next_one_cleans_up(tmp_path):
    """The manifest appears once, last: an export of fp32 + variants killed while it writes the variants has
    no manifest (it used to list fp32 only and look complete); the next export removes the killed run's
    temporary files and finishes."""
    root = tiny_bundle().parent
    out = tmp_path / "b"
    args = [sys.executable, "-m", "hrm_export", "export", "--checkpoint", str(root / "tiny.safetensors"), "--out",
            str(out), "--profile", str(root / "small.toml"), "--precision", "fp32,int8-cpu,bf16"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(out.glob("h_module.*.onnx")) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # the fp32 graphs are done when the first variant appears
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert (out / "l_step.onnx").is_file() and list(out.glob("h_module.*.onnx")), "killed before the variants"
    assert not (out / "manifest.json").exists()
    (out / ".l_step.int8-cpu.onnx.k1ll3d.partial").write_bytes(b"\0" * 4096)  # as a SIGKILL mid-write leaves
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not list(out.glob(".*.partial")) and (out / "manifest.json").is_file()
    precisions = {a.precision for a in Manifest.load(out).artifacts}
    assert precisions == {"fp32", "int8-cpu", "bf16", "bf16-emulated"}
