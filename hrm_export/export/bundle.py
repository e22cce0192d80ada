"""`export_bundle`: the reference HRM → DIR/{h_module,l_module,l_step}.onnx + DIR/manifest.json.

The manifest is written last: an interrupted export leaves ONNX files (each complete, written atomically)
but no manifest, so nothing downstream mistakes the directory for a finished bundle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from hrm_export.core.errors import UserError
from hrm_export.core.machine import versions
from hrm_export.core.manifest import MANIFEST_NAME, Artifact, Manifest
from hrm_export.core.profiles import load_profile
from hrm_export.core.reference import load_reference
from hrm_export.core.specs import MODULES, module_specs
from hrm_export.export import DEFAULT_OPSET, DEFAULT_PROFILES, MIN_OPSET
from hrm_export.export.onnx_module import export_module
from model_src.atomic import file_sha256
from model_src.features import token_ranges
from model_src.model import LStep

EXPORT_DISTS = ("torch", "onnx", "onnxscript", "onnxruntime", "hrm-export")


def export_bundle(
    checkpoint: Path | None,
    out_dir: str | Path,
    profiles: Sequence[str | Path] = DEFAULT_PROFILES,
    opset: int = DEFAULT_OPSET,
    on_module: Callable[[str, float], None] | None = None,
) -> Manifest:
    """Export the three modules of the checkpoint's HRM (seeded random init if none) and write the manifest.

    `on_module(name, seconds)` is called after each module is written (the CLI's progress bar).
    """
    if opset < MIN_OPSET:
        raise UserError(f"opset {opset} is below {MIN_OPSET}", hint=f"use --opset {MIN_OPSET} or more "
                        f"(default {DEFAULT_OPSET})")
    out_dir = Path(out_dir)
    loaded = [load_profile(p) for p in profiles]
    if not loaded:
        raise UserError("no profile given", hint="pass --profile latency,throughput")
    model, ckpt_record = load_reference(checkpoint)
    cfg = model.cfg
    for p in loaded:  # a profile larger than the model is refused, never shrunk under its own name
        p.check_model(cfg)
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)  # the old manifest would describe files about to change
    specs = module_specs(cfg)
    torch_modules = {"h_module": model.h, "l_module": model.l, "l_step": LStep(model.l)}
    manifest = Manifest(dir=out_dir, config_dict=cfg.to_dict(), checkpoint=ckpt_record, versions=versions(EXPORT_DISTS),
                        profiles={p.name: p.to_dict() for p in loaded},
                        token_ranges=token_ranges(cfg.n_day_features, cfg.n_minute_features))
    profile_names = [p.name for p in loaded]
    for name in MODULES:
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
    manifest.save()
    return manifest


def _io(t) -> dict:
    return {"name": t.name, "dtype": t.dtype, "shape": list(t.axes)}
