"""`hrm-export sign`: sign a bundle with a private key, so that `--trust KEY.pub` can refuse anything else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hrm_export.cli.options import ArtifactDirArg, JsonOpt

KeyOpt = Annotated[Path, typer.Option(
    "--key", "-k", help="EC private key (PEM, NIST P-256/384/521, unencrypted), e.g. from `openssl ecparam -name "
    "prime256v1 -genkey -noout -out key.pem`.")]


def sign(bundle: ArtifactDirArg, key: KeyOpt, as_json: JsonOpt = False) -> None:
    """Sign every file of a bundle (OpenSSF model-signing: a DSSE envelope over each file's sha256) into DIR/model.sig.

    The bundle is checked first (every file against the manifest's sha256, the config against the checkpoint's):
    a bundle that already differs from its manifest is refused, never vouched for. Any later change to the
    bundle (re-export, precision make, build) removes the signature: sign again. Verify with the public key:
    `hrm-export inspect DIR --trust key.pub`, or `--trust` on verify, bench, run; `HRMRuntime.open(DIR,
    trust="key.pub")`.

    Example: hrm-export sign engines/default --key key.pem
    """
    from hrm_export.core.signing import sign_bundle, signed_files

    sig = sign_bundle(bundle, key)
    files = signed_files(sig)
    if as_json:
        print(json.dumps({"bundle": str(bundle), "signature": str(sig), "files": files}, indent=2))
        return
    Console().print(f"[green]signed[/] {bundle}: {len(files)} files → {sig}", highlight=False)
