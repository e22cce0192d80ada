"""Options shared by several verbs, as Annotated aliases so every verb spells them the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

CheckpointOpt = Annotated[
    Path | None,
    typer.Option("--checkpoint", "-c", help="HRM checkpoint (.safetensors). Default: the built-in trained model."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
OutDirOpt = Annotated[Path, typer.Option("--out", "-o", help="Artifact directory to write.")]
ArtifactDirArg = Annotated[
    Path, typer.Argument(help="Artifact directory written by `hrm-export export` (has manifest.json).")
]
TrustOpt = Annotated[
    Path | None,
    typer.Option("--trust", help="Public key (PEM) the bundle must be signed with (hrm-export sign): an unsigned "
                 "bundle, another key's signature or any changed, missing or extra file is refused."),
]
