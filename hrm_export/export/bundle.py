"""`export_bundle`: the reference HRM → DIR/{h_module,l_module,l_step}.onnx + checkpoint.safetensors +
DIR/manifest.json.

The manifest is written last: an interrupted export leaves ONNX files (each complete, written atomically)
but no manifest, so nothing downstream mistakes the directory for a finished bundle. A caller that adds more
artifacts (the precision variants) asks for no manifest here and saves it once they all exist. Requests that
cannot succeed — an opset out of range, an output path that is a file or cannot be written — are refused
before the model is loaded.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from hrm_export.core.errors import UserError, require
from hrm_export.core.machine import versions
from hrm_export.core.manifest import MANIFEST_NAME, SIGNATURE_NAME, Artifact, Manifest
from hrm_export.core.profiles import load_profile
from hrm_export.core.reference import copy_into_bundle, load_reference
from hrm_export.core.specs import EXPORTED, STATIC_STEP, module_specs
from hrm_export.export import DEFAULT_OPSET, DEFAULT_PROFILES, MIN_OPSET
from hrm_export.export.onnx_module import export_module
from model_src.atomic import file_sha256
from model_src.features import token_ranges
from model_src.model import LStep, LStepStatic

EXPORT_DISTS = ("torch", "onnx", "onnxscript", "onnxruntime", "hrm-export")


def export_bundle(
    checkpoint: Path | None,
    out_dir: str | Path,
    profiles: Sequence[str | Path] = DEFAULT_PROFILES,
    opset: int = DEFAULT_OPSET,
    on_module: Callable[[str, float], None] | None = None,
    write_manifest: bool = True,
) -> Manifest:
    """Export the three modules of the checkpoint's HRM (seeded random init if none), copy the checkpoint into
    the bundle and write the manifest (unless `write_manifest` is False: the caller saves it when its own
    artifacts exist too).

    `on_module(name, seconds)` is called after each module is written (the CLI's progress bar).
    """
    check_opset(opset)
    out_dir = Path(out_dir)
    loaded = [load_profile(p) for p in profiles]
    if not loaded:
        raise UserError("no profile given", hint="pass --profile latency,throughput")
    check_out_dir(out_dir)  # before the model is loaded and traced: minutes, for nothing, otherwise
    model, ckpt_record = load_reference(checkpoint)
    cfg = model.cfg
    for p in loaded:  # a profile larger than the model is refused, never shrunk under its own name
        p.check_model(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_for_export(out_dir)
    ckpt_record = copy_into_bundle(ckpt_record, out_dir)
    specs = module_specs(cfg)
    torch_modules = {"h_module": model.h, "l_module": model.l, "l_step": LStep(model.l),
                     STATIC_STEP: LStepStatic(model.l)}
    manifest = Manifest(dir=out_dir, config_dict=cfg.to_dict(), checkpoint=ckpt_record, versions=versions(EXPORT_DISTS),
                        profiles={p.name: p.to_dict() for p in loaded},
                        token_ranges=token_ranges(cfg.n_day_features, cfg.n_minute_features))
    profile_names = [p.name for p in loaded]
    for name in EXPORTED:
        t0 = time.perf_counter()
        path = out_dir / f"{name}.onnx"
        facts = export_module(torch_modules[name], specs[name], cfg, path, opset)
        spec = specs[name]
        manifest.add(Artifact(
            module=name, precision="fp32", format="onnx", path=path.name, sha256=file_sha256(path),
            inputs=[_io(t) for t in spec.inputs], outputs=[_io(t) for t in spec.outputs],
            opset=facts["opset"], profile=profile_names,
            made_by={"tool": "torch.onnx.export", "dynamo": True, "optimize": True, "torch": manifest.versions["torch"],
                     "opset": opset, "checked": "onnx.checker full_check + strict shape inference"},
            extra={"nodes": facts["nodes"], "external_data": facts["external_data"]},
        ))
        if on_module:
            on_module(name, time.perf_counter() - t0)
    if write_manifest:
        manifest.save()
    return manifest


def check_opset(opset: int) -> None:
    """The opsets this exporter can write: from MIN_OPSET to what the installed onnxscript converts to."""
    newest = max_opset()
    if not MIN_OPSET <= opset <= newest:
        raise UserError(f"opset {opset} is not one this exporter writes ({MIN_OPSET} to {newest} here)",
                        hint=f"use --opset {DEFAULT_OPSET} (the default) or another in {MIN_OPSET}..{newest}")


def max_opset() -> int:
    """The newest opset both the installed onnx and onnxscript's version converter (which the exporter uses
    to reach the asked opset) support."""
    onnx = require("onnx", "pip install 'hrm-export[ort]'")
    require("onnxscript", "pip install 'hrm-export[ort]'")
    from onnxscript.version_converter import _version_converter  # its range is only stated here

    return min(onnx.defs.onnx_opset_version(), getattr(_version_converter, "SUPPORTED_MAX_ONNX_OPSET", DEFAULT_OPSET))


def check_out_dir(out_dir: Path) -> None:
    """`out_dir` is a directory (or can be made one) this process can write files in; nothing is left behind."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: is a file; a bundle is a directory",
                        hint="pass a new directory, or an existing bundle directory to export into")
    existing = next((p for p in (out_dir, *out_dir.parents) if p.exists()), Path("."))
    probe_dir = out_dir if out_dir.is_dir() else existing  # the directory mkdir would write into
    if not probe_dir.is_dir():
        raise UserError(f"--out {out_dir}: {probe_dir} is a file, so the bundle directory cannot be made",
                        hint="pass a directory path whose parents are directories")
    try:
        fd, probe = tempfile.mkstemp(prefix=".hrm-export-write-check.", suffix=".partial", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"--out {out_dir}: cannot write in {probe_dir} ({e.strerror})",
                        hint="choose a directory you can write to, or fix its permissions") from None


def clear_for_export(out_dir: Path) -> None:
    """Remove what a previous run left that the new files would contradict: its manifest and signature (they
    describe files about to change) and the temporary `.*.partial` files of a run that was killed (atomic_output
    names them so)."""
    for name in (MANIFEST_NAME, SIGNATURE_NAME):
        (out_dir / name).unlink(missing_ok=True)
    for leftover in out_dir.glob(".*.partial"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)


def _io(t) -> dict:
    return {"name": t.name, "dtype": t.dtype, "shape": list(t.axes)}
