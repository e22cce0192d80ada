"""What is inside an artifact: I/O, opset, size, node and op counts (an .onnx), or a bundle's manifest."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from hrm_export.core.errors import UserError, require
from hrm_export.core.manifest import MANIFEST_NAME, Manifest

_DTYPES = {1: "float32", 10: "float16", 16: "bfloat16", 3: "int8", 2: "uint8", 6: "int32", 7: "int64", 9: "bool"}


def describe_onnx(path: str | Path) -> dict:
    onnx = require("onnx", "pip install 'hrm-export[ort]'")
    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    g = model.graph
    init_names = {i.name for i in g.initializer}

    def io(v) -> dict:
        t = v.type.tensor_type
        return {"name": v.name, "dtype": _DTYPES.get(t.elem_type, str(t.elem_type)),
                "shape": [d.dim_param or d.dim_value for d in t.shape.dim]}

    ops = Counter(n.op_type if not n.domain else f"{n.domain}::{n.op_type}" for n in g.node)
    return {
        "path": str(path), "bytes": path.stat().st_size,
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [io(v) for v in g.input if v.name not in init_names], "outputs": [io(v) for v in g.output],
        "nodes": len(g.node), "initializers": len(g.initializer), "ops": dict(ops.most_common()),
        "metadata": {p.key: p.value for p in model.metadata_props if p.key != "hrm_export.config"},
    }


def describe_plan(path: str | Path) -> dict:
    try:
        from hrm_export.tensorrt.plan_info import describe_plan as _describe
    except ImportError as e:
        raise UserError(f"{path}: cannot describe a TensorRT plan here ({e})",
                        hint="install TensorRT (pip install 'hrm-export[trt]') where an NVIDIA GPU is") from None
    return _describe(path)


def describe(path: str | Path) -> dict:
    """A bundle directory (manifest + each artifact), an .onnx, or a TensorRT .plan."""
    path = Path(path)
    if path.is_dir() or path.name == MANIFEST_NAME:
        m = Manifest.load(path)
        arts = []
        for a in m.artifacts:
            p = m.artifact_path(a)
            info = {"module": a.module, "precision": a.precision, "format": a.format, "path": a.path,
                    "profile": a.profiles, "exists": p.is_file()}
            if p.is_file():
                info["details"] = describe_onnx(p) if a.format == "onnx" else _plan_or_note(p)
            arts.append(info)
        d = m.to_dict()
        d.pop("artifacts")
        return {"bundle": str(m.dir), "manifest": d, "artifacts": arts}
    if not path.is_file():
        raise UserError(f"{path}: no such file or directory", hint="pass a bundle directory, an .onnx or a .plan")
    if path.suffix == ".onnx":
        return describe_onnx(path)
    if path.suffix in (".plan", ".engine"):
        return describe_plan(path)
    raise UserError(f"{path}: unknown artifact type {path.suffix!r}", hint="pass a bundle directory, .onnx or .plan")


def _plan_or_note(path: Path) -> dict:
    try:
        return describe_plan(path)
    except UserError as e:
        return {"note": str(e)}
