"""`describe_plan(path)`: what `hrm-export inspect` shows of a TensorRT plan.

Everywhere: the header (TensorRT version, serialization version), size and sha256, and — when the plan sits
in a bundle — what the manifest recorded (compute capability, profiles, build options). Where a TensorRT
library (full or lean) and a GPU are present: the I/O tensors, every optimization profile's shapes, and the
layers (IEngineInspector), or TensorRT's own reason for refusing the plan.
"""

from __future__ import annotations

import json
from pathlib import Path

from hrm_export.tensorrt.plan_header import read_plan_header
from model_src.atomic import file_sha256


def describe_plan(path: str | Path) -> dict:
    path = Path(path)
    header = read_plan_header(path)  # PlanError for anything that is not a plan
    info: dict = {"path": str(path), "format": "trt-plan", "bytes": path.stat().st_size,
                  "sha256": file_sha256(path), "tensorrt_version": header.version,
                  "serialization_version": header.serialization_version, "header_layout": "trtexec (TensorRT ≥ 8.6)"}
    recorded = _manifest_entry(path)
    if recorded:
        info["manifest"] = recorded
    from hrm_export.core.errors import MissingDependencyError
    from hrm_export.tensorrt.builder import install_command
    from hrm_export.tensorrt.library import load_library

    try:
        library = load_library()
    except MissingDependencyError:
        info["note"] = ("TensorRT is not installed: I/O tensors, profiles and layers need it to deserialize the "
                        f"plan ({install_command()}); shown: the header and the manifest record")
        return info
    info.update(_engine_details(path, library, bool((recorded or {}).get("extra", {}).get("version_compatible"))
                                and bool((recorded or {}).get("sha256_matches"))))
    return info


def _manifest_entry(path: Path) -> dict | None:
    from hrm_export.core.errors import ManifestError
    from hrm_export.core.manifest import MANIFEST_NAME, Manifest

    if not (path.parent / MANIFEST_NAME).is_file():
        return None
    try:
        m = Manifest.load(path.parent)
    except ManifestError:
        return None
    for a in m.artifacts:
        if a.format == "trt-plan" and (m.dir / a.path).resolve() == path.resolve():
            return {"module": a.module, "precision": a.precision, "profiles": a.profiles,
                    "sha256_matches": a.sha256 == file_sha256(path), "made_by": a.made_by, "extra": a.extra}
    return None


def _engine_details(path: Path, library, trusted_host_code: bool) -> dict:
    import torch

    from hrm_export.tensorrt.library import deserialize
    from hrm_export.tensorrt.plan_header import PlanError

    if not torch.cuda.is_available():
        return {"note": f"{library.describe()} is installed but no CUDA GPU is visible: the plan cannot be "
                        "deserialized here"}
    trt = library.module
    try:
        engine = deserialize(library, path, host_code_allowed=trusted_host_code).engine
    except PlanError as e:
        return {"note": str(e)}
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    io = [{"name": n, "mode": engine.get_tensor_mode(n).name, "dtype": engine.get_tensor_dtype(n).name,
           "shape": list(engine.get_tensor_shape(n))} for n in names]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    profiles = []
    for p in range(engine.num_optimization_profiles):
        shapes = {}
        for n in inputs:
            lo, opt, hi = engine.get_tensor_profile_shape(n, p)
            shapes[n] = {"min": list(lo), "opt": list(opt), "max": list(hi)}
        profiles.append(shapes)
    inspector = engine.create_engine_inspector()
    layers = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON)).get("Layers", [])
    return {"runtime_library": library.describe(), "io": io, "profiles": profiles, "num_layers": engine.num_layers,
            "layers": [layer if isinstance(layer, str) else layer.get("Name", "?") for layer in layers]}
