"""A tiny exported bundle shared by the export/verify tests (exported once per test process, ~8 s).

Its profile is small (batch ≤ 4) so verify runs in seconds; minutes still span the whole 390-minute session.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

from hrm_export.core.reference import random_init_model
from model_src.config import tiny_config

SMALL_PROFILE = """
name = "small"
version = 1
description = "test profile"
[axes]
batch = [1, 2, 4]
days = [1, 8, 16]
minutes = [1, 40, 390]
new_minutes = [1, 4, 390]
past_minutes = [0, 36, 389]
"""


def tiny_model():
    return random_init_model(tiny_config(max_days=16), seed=0)  # FiLM not at its zero init: γ, β ≠ 0


@functools.lru_cache(maxsize=1)
def tiny_bundle() -> Path:
    from hrm_export.export.bundle import export_bundle
    from model_src.checkpoint import save_checkpoint

    root = Path(tempfile.mkdtemp(prefix="hrm-parity-bundle-"))
    (root / "small.toml").write_text(SMALL_PROFILE)
    save_checkpoint(tiny_model(), root / "tiny.safetensors")
    export_bundle(root / "tiny.safetensors", root / "bundle", profiles=[root / "small.toml"])
    return root / "bundle"


def copy_bundle(dst: Path) -> Path:
    """A private copy of the bundle, its checkpoint inside (for tests that tamper with it)."""
    shutil.copytree(tiny_bundle(), dst / "bundle")
    return dst / "bundle"
