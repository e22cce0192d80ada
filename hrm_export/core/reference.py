"""The PyTorch reference a bundle was exported from: a checkpoint, or a seeded random init when none exists.

Export and verify both build the reference here, so the random-init stand-in is the same model in both. The
export copies the checkpoint into the bundle (`checkpoint.safetensors`, recorded by its path relative to the
bundle and its sha256), so a bundle moved to another directory or machine still has its reference.
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

import torch

from hrm_export.core.errors import ManifestError
from hrm_export.core.manifest import CHECKPOINT_NAME, MANIFEST_NAME, Manifest, config_differences
from hrm_export.core.model_card import resolve_checkpoint
from model_src.atomic import atomic_output, file_sha256
from model_src.checkpoint import load_checkpoint, read_config
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
    """The reference model and the manifest's `checkpoint` record: `source` (the file it was read from) + sha256,
    or the random-init seed. `copy_into_bundle` turns the record into the bundle's own."""
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
        record = {"source": str(Path(path).resolve()), "sha256": file_sha256(path)}
    record["weights_sha256"] = weights_sha256(model)
    return model.eval(), record


def copy_into_bundle(record: dict, bundle_dir: Path) -> dict:
    """Copy the checkpoint a `load_reference` record names into the bundle (atomically); the record the manifest
    keeps: its path relative to the bundle and the file name it came from (no absolute path: relocatable)."""
    source = record.get("source")
    if not source:
        return record  # random init: the seed is the reference
    target = Path(bundle_dir) / CHECKPOINT_NAME
    with atomic_output(target) as tmp:
        shutil.copyfile(source, tmp)
        if file_sha256(tmp) != record["sha256"]:  # the weights the export traced, byte for byte
            raise ManifestError(f"{source}: the checkpoint changed while it was being exported",
                                hint="export again once nothing writes to it")
    return {"path": CHECKPOINT_NAME, "source": Path(source).name, "sha256": record["sha256"],
            "weights_sha256": record["weights_sha256"]}


def check_checkpoint_config(manifest: Manifest) -> None:
    """The manifest's config equals the one the bundle's checkpoint carries (read from its header: no weights).
    A config edited in manifest.json would otherwise size the runtime for a model the weights are not."""
    path = manifest.checkpoint_path()
    if path is None or not path.is_file():
        return  # random init (its weights hash is checked when built), or missing (verify_hashes names it)
    differ = config_differences(manifest.config.to_dict(), read_config(path).to_dict(), path.name)
    if differ:
        raise ManifestError(f"{manifest.dir}: the config in {MANIFEST_NAME} is not the checkpoint's: {differ}",
                            hint=f"restore {MANIFEST_NAME} (the checkpoint and graphs define the model), or "
                            f"re-export the bundle: hrm-export export --out {manifest.dir}")


def reference_from_manifest(manifest: Manifest) -> HRM:
    """Rebuild the exact reference a bundle came from, checking its hash and config (ManifestError if they differ)."""
    rec = manifest.checkpoint
    path = manifest.checkpoint_path()  # inside the bundle, or refused
    if path is not None:
        if not path.is_file():
            raise ManifestError(f"the bundle's checkpoint {path} is missing",
                                hint=f"restore it, or re-export the bundle: hrm-export export --out {manifest.dir}")
        digest = file_sha256(path)
        if digest != rec.get("sha256"):
            raise ManifestError(f"{path}: sha256 {digest[:12]}… differs from the bundle's "
                                f"{str(rec.get('sha256'))[:12]}… (the checkpoint changed since export)",
                                hint=f"re-export: hrm-export export --checkpoint CKPT --out {manifest.dir}")
        check_checkpoint_config(manifest)
        model = load_checkpoint(path)
    else:
        model = random_init_model(manifest.config, rec.get("random_init_seed", RANDOM_INIT_SEED))
        if rec.get("weights_sha256") and weights_sha256(model) != rec["weights_sha256"]:
            raise ManifestError("the random-init reference does not reproduce the bundle's weights (its config or "
                                "torch changed since export)",
                                hint=f"re-export the bundle: hrm-export export --out {manifest.dir}")
    return model.eval()
