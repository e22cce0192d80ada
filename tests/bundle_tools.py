"""What the bundle-integrity tests share: real EC key pairs, manifest edits, tampering, and the one-line refusal
check on a CLI run in-process (cli_run.hrm_export)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cli_run import Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def key_pair(directory: Path, name: str = "key", curve: ec.EllipticCurve | None = None) -> tuple[Path, Path]:
    """A fresh EC key pair as PEM files (private: PKCS#8, unencrypted; public: SubjectPublicKeyInfo)."""
    directory.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(curve or ec.SECP256R1())
    pem, pub = directory / f"{name}.pem", directory / f"{name}.pub"
    pem.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    pub.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    return pem, pub


def edit_manifest(bundle: Path, change) -> None:
    path = bundle / "manifest.json"
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d, indent=2))


def artifact(d: dict, module: str, precision: str = "fp32") -> dict:
    return next(a for a in d["artifacts"] if a["module"] == module and a["precision"] == precision)


def rehashed_tamper(bundle: Path, name: str = "l_module.onnx") -> None:
    """What someone who can write the directory does: change a byte of an artifact, then its sha256 in the
    manifest, so that every hash check still passes."""
    path = bundle / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    digest = hashlib.sha256(bytes(data)).hexdigest()
    edit_manifest(bundle, lambda d: [a.update(sha256=digest) for a in d["artifacts"] if a["path"] == name])


def files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root: relative name → (size, mtime_ns), to show that a refused command wrote nothing."""
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


def assert_one_line_refusal(r: Result, *needles: str) -> None:
    """Exit 1, stderr exactly an `error:` line (naming every needle) and a `hint:` line, no traceback."""
    assert r.code == 1, (r.code, r.err[-2000:])
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err
    assert len(r.err_lines) == 2, r.err
    error, hint = r.err_lines
    assert error.startswith("error: ") and hint.startswith("hint: ") and len(hint) > len("hint: ") + 10, r.err
    for needle in needles:
        assert needle in error, (needle, error)
