"""What is inside an artifact: I/O, opset, size, node and op counts (an .onnx), or a bundle's manifest — and,
for a bundle, whether it is whole: every file against its sha256, the config against the checkpoint's and the
graphs', the signature (checked with `trust`, else only reported)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from hrm_export.core.errors import ManifestError, UserError, require
from hrm_export.core.manifest import MANIFEST_NAME, Manifest, config_differences
from hrm_export.runtime.loader import graph_config

_DTYPES = {1: "float32", 10: "float16", 16: "bfloat16", 3: "int8", 2: "uint8", 6: "int32", 7: "int64", 9: "bool"}


def describe_onnx(path: str | Path) -> dict:
    onnx = require("onnx", "pip install 'hrm-export[ort]'")
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 (protobuf's DecodeError and friends: truncated or not ONNX at all)
        raise UserError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})",
                        hint="re-export it (hrm-export export), or check that the copy is complete") from None
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
        "config": graph_config(model, path),  # what it was exported with; inspect holds it against the manifest
    }


def describe_plan(path: str | Path) -> dict:
    try:
        from hrm_export.tensorrt.plan_info import describe_plan as _describe
    except ImportError as e:
        raise UserError(f"{path}: cannot describe a TensorRT plan here ({e})",
                        hint="install TensorRT (pip install 'hrm-export[trt]') where an NVIDIA GPU is") from None
    return _describe(path)


def describe(path: str | Path, trust: str | Path | None = None) -> dict:
    """A bundle directory (manifest, each artifact, `integrity`), an .onnx, or a TensorRT .plan."""
    path = Path(path)
    if path.is_dir() or path.name == MANIFEST_NAME:
        return describe_bundle(path, trust)
    if not path.is_file():
        raise UserError(f"{path}: no such file or directory", hint="pass a bundle directory, an .onnx or a .plan")
    if path.suffix == ".onnx":
        return describe_onnx(path)
    if path.suffix in (".plan", ".engine"):
        return describe_plan(path)
    raise UserError(f"{path}: unknown artifact type {path.suffix!r}", hint="pass a bundle directory, .onnx or .plan")


def describe_bundle(path: Path, trust: str | Path | None = None) -> dict:
    """The manifest and each artifact, with `integrity`: {ok, problems: [{message, hint}], signature}. A problem
    does not stop the description: `inspect` shows what is there, then says what is wrong."""
    from hrm_export.core.reference import check_checkpoint_config
    from hrm_export.core.signing import SignatureError, is_signed, verify_signature

    m = Manifest.load(path)  # unreadable or escaping paths: nothing to describe, one error line
    problems: list[ManifestError] = []
    if trust is not None:
        try:
            verify_signature(m.dir, trust)
            signature = f"signed with the trusted key {trust}"
        except SignatureError as e:
            problems.append(e)
            signature = "FAILED"
    else:
        signature = "signed, not checked (pass --trust KEY.pub)" if is_signed(m.dir) else "unsigned"
    bad_files = dict(m.file_problems())
    problems += bad_files.values()
    try:
        check_checkpoint_config(m)
    except (ManifestError, UserError) as e:  # a config that differs, or a checkpoint that cannot be read
        problems.append(e)
    arts = []
    for a in m.artifacts:
        info = {"module": a.module, "precision": a.precision, "format": a.format, "path": a.path,
                "profile": a.profiles, "status": str(bad_files[a.path]) if a.path in bad_files else "ok"}
        p = m.dir / a.path
        if a.path not in bad_files or "sha256" in info["status"]:  # inside the bundle and present: describable
            try:
                info["details"] = describe_onnx(p) if a.format == "onnx" else _plan_or_note(p)
            except UserError as e:
                problems.append(ManifestError(str(e), hint=e.hint))
                info["status"] = str(e) if info["status"] == "ok" else info["status"]
        config = info.get("details", {}).get("config")
        differ = config and config_differences(m.config.to_dict(), config, a.path)
        if differ:
            problems.append(ManifestError(f"{m.dir}: the config in {MANIFEST_NAME} is not the one {a.path} was "
                                          f"exported with: {differ}",
                                          hint=f"restore {MANIFEST_NAME}, or re-export: hrm-export export "
                                          f"--out {m.dir}"))
        arts.append(info)
    d = m.to_dict()
    d.pop("artifacts")
    integrity = {"ok": not problems, "signature": signature,
                 "problems": [{"message": str(e), "hint": e.hint} for e in problems]}
    return {"bundle": str(m.dir), "manifest": d, "artifacts": arts, "integrity": integrity}


def _plan_or_note(path: Path) -> dict:
    try:
        return describe_plan(path)
    except UserError as e:
        return {"note": str(e)}
