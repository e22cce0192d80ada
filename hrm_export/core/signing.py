"""Bundle signatures: who made a bundle, checked before anything in it is read.

Hashes in the manifest catch corruption, not someone who can write the directory (they re-hash). A signature
made with a private key the attacker does not hold closes that gap. The signing is OpenSSF's `model-signing`
library (PyPI `model-signing`), with a local elliptic-curve key and no network:

- what is signed: every regular file under the bundle directory, recursively, except `model.sig` itself —
  manifest.json, every artifact, the checkpoint, calibration data, anything else that is there;
- the envelope: DIR/model.sig, a Sigstore bundle (v0.3 JSON) holding a DSSE envelope over an in-toto
  statement whose predicate lists each file's sha256 (docs/bundles.md has the exact format, and how to check
  it with OpenSSL alone, as the C++ runtime does);
- the key: ECDSA on NIST P-256 (also P-384, P-521), PEM files as `openssl` writes them.

`trust` (a public key) makes a signature required: an unsigned bundle, a signature by another key, a changed,
missing or extra file — each is one SignatureError line naming it. Without `trust` nothing is checked here
(the manifest's hashes still are).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import tempfile
from pathlib import Path

from hrm_export.core.errors import ManifestError, UserError, require
from hrm_export.core.manifest import SIGNATURE_NAME, Manifest
from model_src.atomic import atomic_write_text, file_sha256

SIGN_INSTALL = "pip install 'hrm-export[sign]'"
KEY_HINT = ("make a key pair with OpenSSL: openssl ecparam -name prime256v1 -genkey -noout -out key.pem && "
            "openssl ec -in key.pem -pubout -out key.pub (docs/bundles.md)")


class SignatureError(ManifestError):
    """A bundle whose signature is missing, made with another key, or does not cover exactly its files."""


def is_signed(directory: str | Path) -> bool:
    return (Path(directory) / SIGNATURE_NAME).is_file()


def sign_bundle(directory: str | Path, private_key: str | Path) -> Path:
    """Sign a whole, unaltered bundle with `private_key` (PEM, EC P-256/384/521): writes DIR/model.sig."""
    directory = Path(directory)
    key = _existing(private_key, "--key")
    manifest = Manifest.load(directory)
    manifest.verify_hashes()  # never sign what already differs from its manifest: that would vouch for it
    from hrm_export.core.reference import check_checkpoint_config

    check_checkpoint_config(manifest)
    leftovers = sorted(p.name for p in directory.glob(".*.partial"))
    if leftovers:
        raise UserError(f"{directory}: temporary files of an interrupted run are in the bundle "
                        f"({', '.join(leftovers)})",
                        hint=f"re-export into it (the export removes them): hrm-export export --out {directory}")
    ms = require("model_signing", SIGN_INSTALL)
    try:
        signer = ms.signing.Config().use_elliptic_key_signer(private_key=key)
    except (ValueError, TypeError) as e:  # not PEM, encrypted, or not an EC key of a supported curve
        raise UserError(f"{key}: not an unencrypted EC private key in PEM ({e})", hint=KEY_HINT) from None
    signer.set_hashing_config(_hashing(ms))
    with tempfile.TemporaryDirectory(prefix="hrm-export-sign-") as tmp:
        # Written outside the bundle first: a temp file inside it would be hashed as part of the bundle.
        out = Path(tmp) / SIGNATURE_NAME
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                signer.sign(directory, out)
        except ValueError as e:  # a symlink in the bundle
            raise SignatureError(f"{directory}: cannot sign it ({e})",
                                 hint="a bundle holds regular files only; replace links by the files") from None
        atomic_write_text(directory / SIGNATURE_NAME, out.read_text())
    return directory / SIGNATURE_NAME


def verify_signature(directory: str | Path, public_key: str | Path) -> None:
    """Raise SignatureError unless DIR/model.sig was made with the key of `public_key` over exactly the files
    DIR holds now (same names, same sha256)."""
    directory = Path(directory)
    sig = directory / SIGNATURE_NAME
    resign = f"check the bundle, then sign it: hrm-export sign {directory} --key KEY.pem"
    if not sig.is_file():
        raise SignatureError(f"{directory}: not signed (no {SIGNATURE_NAME}), and a signature is required (trust "
                             f"{public_key})", hint=f"use a signed bundle, or {resign}")
    ms = require("model_signing", SIGN_INSTALL)
    key = _existing(public_key, "--trust")
    try:
        verifier = ms.verifying.Config().use_elliptic_key_verifier(public_key=key)
    except (ValueError, TypeError, AttributeError) as e:
        raise UserError(f"{key}: not an EC public key in PEM ({e})",
                        hint="pass the public key (openssl ec -in key.pem -pubout -out key.pub), not the private "
                        "one") from None
    verifier.set_hashing_config(_hashing(ms))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the library prints a warning for old signatures
            verifier.verify(directory, sig)
    except Exception as e:  # noqa: BLE001 (the library raises ValueError, InvalidSignature, JSON and key errors)
        raise _refusal(directory, key, e) from None


def signed_files(signature: str | Path) -> dict[str, str]:
    """name → sha256 of every file a model.sig lists. Read, not verified (verify_signature does that)."""
    envelope = json.loads(Path(signature).read_text())["dsseEnvelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    return {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}


def _refusal(directory: Path, key: Path, e: Exception) -> SignatureError:
    """The library's failure as one line: which key, which files."""
    text = str(e)
    sig = directory / SIGNATURE_NAME
    if type(e).__name__ == "InvalidSignature" or text.startswith("Key mismatch"):
        return SignatureError(f"{sig}: not signed with the key {key} (or the signature was altered)",
                              hint="pass the public key of the key that signed it, or re-sign the bundle")
    if text.startswith("Signature mismatch"):  # the envelope verified; the files are not the signed ones
        return SignatureError(f"{directory}: files differ from what was signed: {_differences(directory)}",
                              hint="the bundle changed after it was signed: restore the signed copy, or check it "
                              f"and sign again: hrm-export sign {directory} --key KEY.pem")
    if "symlink" in text:
        return SignatureError(f"{directory}: {text}", hint="a signed bundle holds regular files only")
    return SignatureError(f"{sig}: not a readable model-signing signature ({type(e).__name__}: {text})",
                          hint=f"sign the bundle again: hrm-export sign {directory} --key KEY.pem")


def _differences(directory: Path) -> str:
    """'changed: a.onnx, manifest.json; not signed: x; missing: y' — the signed list (authentic by now: the
    library checked the envelope before it hashed the files) against the files as they are."""
    signed = signed_files(directory / SIGNATURE_NAME)
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()} - {SIGNATURE_NAME}
    changed = sorted(n for n in present & set(signed) if file_sha256(directory / n) != signed[n])
    found = [("changed", changed), ("not signed", sorted(present - set(signed))),
             ("missing", sorted(set(signed) - present))]
    return "; ".join(f"{kind}: {', '.join(names)}" for kind, names in found if names) or "a file changed while read"


def _hashing(ms):
    """Every file, git-looking ones included; only the signature itself is left out."""
    return ms.hashing.Config().set_ignored_paths(paths=[SIGNATURE_NAME], ignore_git_paths=False)


def _existing(path: str | Path, option: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{option} {path}: no such key file", hint=KEY_HINT)
    return path
