"""The PyTorch reference a bundle was exported from: a checkpoint, or a seeded random init when none exists.

Export and verify both build the reference here, so the random-init stand-in is the same model in both.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

from hrm_export.core.errors import ManifestError
from hrm_export.core.model_card import resolve_checkpoint
from model_src.atomic import file_sha256
from model_src.checkpoint import load_checkpoint
from model_src.config import HRMConfig
from model_src.model import HRM

RANDOM_INIT_SEED = 0


def random_init_model(cfg: HRMConfig | None = None, seed: int = RANDOM_INIT_SEED) -> HRM:
    """A seeded random-init HRM. FiLM is zero-initialised in HRM (identity at the start of training), which would
    make γ = β = 0 and leave the conditioning path unverified; the stand-in gives it small weights instead."""
    gen = torch.manual_seed(seed)
    model = HRM(cfg)
    with torch.no_grad():
        proj = model.h.film.proj
        proj.weight.normal_(0.0, 0.02, generator=gen)
        proj.bias.normal_(0.0, 0.02, generator=gen)
    return model.eval()


def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 over the state dict (sorted names, fp32 bytes): identifies the weights whatever file held them."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def load_reference(checkpoint: Path | None, warn: bool = True) -> tuple[HRM, dict]:
    """The reference model and the manifest's `checkpoint` record (path + sha256, or the random-init seed)."""
    path = resolve_checkpoint(checkpoint)
    if path is None:
        if warn:
            warnings.warn(
                "no checkpoint given and no trained default model at model_src/weights/hrm-default.safetensors: "
                f"exporting a seeded random-init HRM (seed {RANDOM_INIT_SEED}); its outputs mean nothing",
                UserWarning, stacklevel=2)
        model = random_init_model()
        record = {"path": None, "sha256": None, "random_init_seed": RANDOM_INIT_SEED}
    else:
        model = load_checkpoint(path)
        record = {"path": str(Path(path).resolve()), "sha256": file_sha256(path)}
    record["weights_sha256"] = weights_sha256(model)
    return model.eval(), record


def reference_from_manifest(manifest) -> HRM:
    """Rebuild the exact reference a bundle came from, checking its hashes (ManifestError if they differ)."""
    rec = manifest.checkpoint
    if rec.get("path"):
        path = Path(rec["path"])
        if not path.is_file():
            raise ManifestError(f"the bundle's checkpoint {path} is missing",
                                hint="restore it, or re-export the bundle from the checkpoint you have")
        digest = file_sha256(path)
        if digest != rec.get("sha256"):
            raise ManifestError(f"{path}: sha256 {digest[:12]}… differs from the bundle's {rec.get('sha256', '')[:12]}…"
                                " (the checkpoint changed since export)",
                                hint=f"re-export: hrm-export export --checkpoint {path} --out {manifest.dir}")
        model = load_checkpoint(path)
    else:
        model = random_init_model(manifest.config, rec.get("random_init_seed", RANDOM_INIT_SEED))
        if rec.get("weights_sha256") and weights_sha256(model) != rec["weights_sha256"]:
            raise ManifestError("the random-init reference no longer reproduces the bundle's weights (torch changed?)",
                                hint=f"re-export the bundle: hrm-export export --out {manifest.dir}")
    return model.eval()
