"""Open a bundle for the runtime, fail closed: every check runs before the first inference.

Checks, in order: with `trust`, the bundle's signature over every file (core/signing.py); the manifest loads
(format, every path inside the bundle), the bundle was made by a compatible hrm-export, every file's sha256
matches (artifacts and checkpoint); the manifest's config is the one the checkpoint and the graphs were made
with; the chosen artifacts' I/O (as the manifest records it and, for ONNX, as the graph itself declares it)
equals `module_specs(manifest.config)`, the opset is one this onnx knows, the profile exists and every artifact
admits it. Any mismatch raises a ManifestError (ArtifactMismatchError, SignatureError): one line naming what
differs, a hint how to rebuild. TensorRT plans get their one compatibility check (release, compute capability,
lean runtime) from the TensorRT backend as it deserializes them, which HRMRuntime does at open (activate):
TensorRT's own verdict is final there, with the header's advice beside it (hrm_export.tensorrt.compat).

`auto` tries tensorrt > ort-cuda > ort-cpu > torch and takes the first that is installed, has a device
and has artifacts in the bundle; the reasons the others were passed over are kept in `Opened.reason`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import hrm_export
from hrm_export.backends.base import Backend
from hrm_export.backends.factory import make_backend
from hrm_export.core.backend_registry import BACKENDS, check, unavailable
from hrm_export.core.errors import UserError
from hrm_export.core.manifest import Artifact, Manifest, config_differences
from hrm_export.core.reference import check_checkpoint_config
from hrm_export.core.specs import MODULES, ModuleSpec, module_specs
from hrm_export.runtime.errors import ArtifactMismatchError
from hrm_export.runtime.inputs import Limits

log = logging.getLogger("hrm_export.runtime")


@dataclass
class Opened:
    backend: Backend
    cfg: object
    limits: Limits
    model_sha256: str
    reason: str
    manifest: Manifest


def open_backend(
    directory: Path, backend: str = "auto", precision: str = "fp32", profile: str | None = None,
    device: str | None = None, compile: bool = False, cuda_graphs: bool = False, trust: str | Path | None = None,
) -> Opened:
    if backend not in ("auto", *BACKENDS):
        raise UserError(f"unknown backend {backend!r}", hint=f"use one of auto, {', '.join(BACKENDS)}")
    manifest = Manifest.load(directory, trust=trust)  # with trust: the signature first, before anything is read
    check_versions(manifest)
    manifest.verify_hashes()  # every file, not only the ones this backend reads: a bundle is whole or refused
    check_checkpoint_config(manifest)  # before the I/O checks, so that an edited config is named as such
    specs = module_specs(manifest.config)
    skipped: list[str] = []
    for name in BACKENDS if backend == "auto" else (backend,):
        why_not = unavailable(name, precision, manifest, device)
        if why_not:
            if backend != "auto":
                check(name, precision, manifest, device)  # raises with the registry's line and hint
            skipped.append(f"{name}: {why_not}")
            continue
        fmt = "trt-plan" if name == "tensorrt" else "onnx"
        artifacts = {m: manifest.find(m, precision, fmt) for m in MODULES} if name != "torch" else {}
        for module, artifact in artifacts.items():
            check_io(manifest, artifact, specs[module])
        if name == "torch" and manifest.checkpoint_path() is None:  # random init: no checkpoint holds the config,
            for a in manifest.artifacts:                              # the fp32 graphs it was exported to do
                if a.precision == "fp32" and a.format == "onnx" and importlib.util.find_spec("onnx") is not None:
                    check_graph_config(manifest, _load_graph(manifest.artifact_path(a)), a)
        limits = choose_limits(manifest, artifacts, profile)
        # hashes were verified above, once for the whole bundle; plans are checked once, by the backend's activate
        be = make_backend(name, manifest, precision, device, compile=compile, cuda_graphs=cuda_graphs)
        reason = f"picked {name}" + (f" (passed over {'; '.join(skipped)})" if skipped else "")
        if backend == "auto":
            log.info("backend auto: %s", reason)
        model_id = manifest.checkpoint_sha256 or manifest.checkpoint.get("weights_sha256") or "unknown"
        return Opened(be, manifest.config, limits, model_id, reason, manifest)
    raise UserError(f"{directory}: no backend can run {precision} here ({'; '.join(skipped)})",
                    hint="install what one of those backends lacks, or run a precision one of them has")


def check_versions(manifest: Manifest) -> None:
    made = manifest.versions.get("hrm_export")
    if made and _release(made) != _release(hrm_export.__version__):
        raise ArtifactMismatchError(
            f"{manifest.dir}: made by hrm-export {made}, this is {hrm_export.__version__} (manifest format may differ)",
            hint=f"re-export with this version: hrm-export export --out {manifest.dir}")


def _release(version: str) -> tuple[str, ...]:
    parts = str(version).split(".")
    return tuple(parts[:2]) if parts[0] == "0" else tuple(parts[:1])  # 0.x: minor releases may break the format


def check_io(manifest: Manifest, artifact: Artifact, spec: ModuleSpec) -> None:
    """The artifact's I/O (manifest record and, for ONNX, the graph) equals the module spec of the config; an
    ONNX graph's own config (its metadata) equals the manifest's, checked first."""
    rebuild = f"re-export the bundle: hrm-export export --out {manifest.dir}"
    where = f"{manifest.dir}/{artifact.path}"
    graph = None
    if artifact.format == "onnx" and importlib.util.find_spec("onnx") is not None:
        graph = _load_graph(manifest.artifact_path(artifact))
        check_graph_config(manifest, graph, artifact)
    strict_dtype = artifact.precision in ("fp32", "int8-cpu", "int8")
    for side, recorded, wanted in (("inputs", artifact.inputs, spec.inputs), ("outputs", artifact.outputs,
                                                                                 spec.outputs)):
        got = [(r.get("name"), [_axis(d) for d in r.get("shape", [])]) for r in recorded]
        want = [(t.name, list(t.axes)) for t in wanted]
        if got != want:
            raise ArtifactMismatchError(f"{where}: {side} {got} differ from the config's {want}", hint=rebuild)
        if strict_dtype:
            bad = [r["name"] for r, t in zip(recorded, wanted, strict=True) if r.get("dtype") != t.dtype]
            if bad:
                raise ArtifactMismatchError(f"{where}: {side} {bad} are not {wanted[0].dtype}", hint=rebuild)
    if graph is not None:
        check_onnx_graph(manifest.artifact_path(artifact), artifact, spec, rebuild, graph)


def _load_graph(path: Path):
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)  # graph only: the weights are not needed here
    except Exception as e:  # noqa: BLE001 (protobuf's DecodeError and friends: a file that is no ONNX model)
        raise ArtifactMismatchError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})",
                                    hint=f"re-export the bundle: hrm-export export --out {path.parent}") from None


def graph_config(graph, path: Path) -> dict | None:
    """The config a graph was exported with: its `hrm_export.config` metadata (export_module writes it), or None
    for a graph made elsewhere (its I/O is still checked against the manifest's config)."""
    raw = next((p.value for p in graph.metadata_props if p.key == "hrm_export.config"), None)
    if raw is None:
        return None
    try:
        config = json.loads(raw)
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise ArtifactMismatchError(f"{path}: its hrm_export.config metadata is not a JSON object",
                                    hint=f"re-export the bundle: hrm-export export --out {path.parent}")
    return config


def check_graph_config(manifest: Manifest, graph, artifact: Artifact) -> None:
    """The config the graph was exported with equals the manifest's."""
    config = graph_config(graph, manifest.dir / artifact.path)
    differ = config is not None and config_differences(manifest.config.to_dict(), config, artifact.path)
    if differ:
        raise ArtifactMismatchError(
            f"{manifest.dir}: the config in manifest.json is not the one {artifact.path} was exported with: {differ}",
            hint=f"restore manifest.json (the graphs and checkpoint define the model), or re-export the bundle: "
            f"hrm-export export --out {manifest.dir}")


def _axis(d):
    return int(d) if isinstance(d, int) or (isinstance(d, str) and d.isdigit()) else d


def check_onnx_graph(path: Path, artifact: Artifact, spec: ModuleSpec, rebuild: str, model=None) -> None:
    import onnx

    model = model if model is not None else _load_graph(path)
    if artifact.opset is not None and artifact.opset > onnx.defs.onnx_opset_version():
        raise ArtifactMismatchError(f"{path}: opset {artifact.opset} is newer than this onnx "
                                    f"({onnx.__version__}, up to {onnx.defs.onnx_opset_version()})",
                                    hint=f"upgrade onnx/onnxruntime, or {rebuild} --opset 18")

    def sig(values) -> list:
        return [(v.name, [d.dim_value if d.HasField("dim_value") else d.dim_param
                          for d in v.type.tensor_type.shape.dim]) for v in values]

    for side, values, wanted in (("inputs", model.graph.input, spec.inputs), ("outputs", model.graph.output,
                                                                              spec.outputs)):
        got = sig(values)
        names = [n for n, _ in got]
        if names != [t.name for t in wanted]:
            raise ArtifactMismatchError(f"{path}: graph {side} {names} differ from {[t.name for t in wanted]}",
                                        hint=rebuild)
        for (name, dims), t in zip(got, wanted, strict=True):
            fixed = [(i, d, w) for i, (d, w) in enumerate(zip(dims, t.axes, strict=False))
                     if isinstance(w, int) and d != w]
            if len(dims) != len(t.axes) or fixed:
                raise ArtifactMismatchError(f"{path}: graph {side[:-1]} {name} has shape {dims}, the config gives "
                                            f"{list(t.axes)}", hint=rebuild)


def choose_limits(manifest: Manifest, artifacts: dict[str, Artifact], profile: str | None) -> Limits:
    cfg = manifest.config
    common = None
    for a in artifacts.values():
        common = a.profiles if common is None else [p for p in common if p in a.profiles]
    candidates = common if common is not None else list(manifest.profiles)
    if profile is None:
        if not candidates:
            return Limits(64, cfg.max_days, cfg.max_minutes, cfg.max_minutes, cfg.max_minutes)
        profile = candidates[0]
    if profile not in manifest.profiles or (common is not None and profile not in common):
        raise ArtifactMismatchError(f"{manifest.dir}: no artifact set built for profile {profile!r} "
                                    f"(bundle profiles: {candidates})",
                                    hint=f"pick one of them, or export with it: hrm-export export --profile {profile}")
    axes = {k: tuple(v) for k, v in manifest.profiles[profile].get("axes", {}).items()}
    return Limits.from_axes(axes, cfg, profile)

