"""`write_repository`: a bundle → a Triton model repository.

    REPO/
      h_module_fp32/  config.pbtxt  1/model.onnx          onnxruntime_onnx, one per module × ONNX precision
      l_step_int8_cpu/ ...
      l_module_int8_trt/ config.pbtxt  1/model_sm90.plan   tensorrt_plan, one per module × plan precision,
                                                            one file per compute capability
      hrm_day/     config.pbtxt  1/model.py  1/bundle/     Python backend over the runtime: a day → decisions
      hrm_stream/  config.pbtxt  1/model.py  1/bundle/     Python backend, sequence batching: live minutes

Each Python model carries the whole bundle (manifest and every artifact it lists: the runtime opens a bundle
whole or refuses it); files are hard-linked between models where the filesystem allows. The repository is
assembled in a temp directory beside REPO and renamed into place, so an interrupted run leaves no half
repository.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import hrm_export
from hrm_export.core.errors import ManifestError, UserError
from hrm_export.core.manifest import MANIFEST_NAME, Manifest
from hrm_export.core.specs import MODULES
from hrm_export.triton import configs
from hrm_export.triton.pbtxt import to_pbtxt

PYTHON_MODELS = ("hrm_day", "hrm_stream")
BACKENDS = ("auto", "tensorrt", "ort-cuda", "ort-cpu")


@dataclass(frozen=True)
class RepositoryOptions:
    max_batch: int | None = None  # cap on max_batch_size (default: the profiles' largest batch)
    instances: int = 1  # instances per device (per GPU where there are GPUs)
    precision: str = "fp32"  # what hrm_day / hrm_stream run
    backend: str = "auto"  # the runtime backend of hrm_day / hrm_stream
    stream_idle_s: float = 300.0  # a live sequence with no request for this long is freed
    max_sequences: int = 1024  # sequences hrm_stream batches over (others wait for a slot)
    stream_batch: int = 8  # requests of different sequences in one hrm_stream execute()
    plan_bundles: tuple[Path, ...] = ()  # more bundles (same weights) whose plans join the repository


@dataclass
class Written:
    path: Path
    models: dict[str, str] = field(default_factory=dict)  # name → platform/backend


def write_repository(bundle: str | Path, out: str | Path, opts: RepositoryOptions = RepositoryOptions(),
                     force: bool = False) -> Written:
    out = Path(out)
    manifest = _load(Path(bundle))
    _check_options(manifest, opts)
    plans = _collect_plans(manifest, opts.plan_bundles)
    if out.exists() and not force:
        raise UserError(f"{out} exists", hint="pass --force to replace it, or pick another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        written = _assemble(manifest, tmp, plans, opts)
        _replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Written(out, written)


def _load(bundle: Path) -> Manifest:
    manifest = Manifest.load(bundle)
    manifest.verify_hashes()
    return manifest


def _check_options(manifest: Manifest, opts: RepositoryOptions) -> None:
    if opts.backend not in BACKENDS:
        raise UserError(f"--backend {opts.backend!r} is not a runtime backend for Triton",
                        hint=f"use one of {', '.join(BACKENDS)}")
    for name, value in (("--max-batch", opts.max_batch), ("--instances", opts.instances),
                        ("--max-sequences", opts.max_sequences), ("--stream-batch", opts.stream_batch)):
        if value is not None and value < 1:
            raise UserError(f"{name} {value} is not a positive count", hint=f"pass {name} 1 or more")
    if not opts.stream_idle_s > 0:
        raise UserError(f"--stream-idle {opts.stream_idle_s} s is not a positive time",
                        hint="pass the seconds after which a silent sequence is freed, e.g. 300")
    fmt = "trt-plan" if opts.backend == "tensorrt" else "onnx"
    for module in MODULES:
        manifest.find(module, opts.precision, fmt)  # ManifestError naming what the bundle has


def _collect_plans(manifest: Manifest, extra: tuple[Path, ...]) -> dict[tuple[str, str], dict[str, tuple]]:
    """(module, precision) → {compute capability: (manifest, artifact)} over the bundle and `extra` bundles."""
    identity = _weights_identity(manifest)
    plans: dict[tuple[str, str], dict[str, tuple]] = {}
    for m in (manifest, *(_load(Path(b)) for b in extra)):
        if _weights_identity(m) != identity:
            raise UserError(f"{m.dir}: its plans were built from other weights than {manifest.dir}",
                            hint="pass --plans-from only bundles built from the same checkpoint")
        for a in m.artifacts:
            if a.format != "trt-plan":
                continue
            cc = str(a.extra.get("compute_capability", ""))
            if not cc:
                raise ManifestError(f"{m.dir}/{a.path}: the manifest does not record the plan's compute capability",
                                    hint=f"rebuild the plans: hrm-export build {m.dir} --precision {a.precision}")
            per_cc = plans.setdefault((a.module, a.precision), {})
            if cc in per_cc:
                raise UserError(f"two {a.module}/{a.precision} plans for compute capability {cc} "
                                f"({per_cc[cc][0].dir} and {m.dir})", hint="pass one bundle per GPU model")
            per_cc[cc] = (m, a)
    return plans


def _weights_identity(m: Manifest) -> str | None:
    return m.checkpoint.get("weights_sha256") or m.checkpoint.get("sha256")


def _assemble(manifest: Manifest, root: Path, plans: dict, opts: RepositoryOptions) -> dict[str, str]:
    bundle = _python_models(manifest, root, opts)  # the repository's own copy; later models link to it
    models = dict.fromkeys(PYTHON_MODELS, "python")
    for a in manifest.artifacts:
        if a.format != "onnx" or a.module not in MODULES:  # l_step_static binds a session's host buffer: not a
            continue                                        # stateless Triton model (hrm_stream keeps its own K/V)
        name = f"{a.module}_{_tag(a.precision)}"
        version = root / name / "1"
        _place(bundle / a.path, version / "model.onnx")
        data = bundle / (a.path + ".data")  # external weights keep the file name the graph refers to
        if data.is_file():
            _place(data, version / data.name)
        _config(root / name, configs.module_config(name, manifest, a, opts.max_batch, opts.instances))
        models[name] = "onnxruntime_onnx"
    for (module, precision), per_cc in sorted(plans.items()):
        name = f"{module}_{_tag(precision)}_trt"
        version = root / name / "1"
        files = {cc: "model.plan" if len(per_cc) == 1 else f"model_sm{cc.replace('.', '')}.plan" for cc in per_cc}
        for cc, (m, a) in per_cc.items():
            _place(bundle / a.path if m is manifest else m.artifact_path(a), version / files[cc])
        arts = {cc: a for cc, (_m, a) in per_cc.items()}
        _config(root / name, configs.plan_config(name, manifest, arts, files, opts.max_batch, opts.instances))
        models[name] = "tensorrt_plan"
    root.chmod(0o755)  # mkdtemp made it 0700; the server may run as another user
    return models


def _python_models(manifest: Manifest, root: Path, opts: RepositoryOptions) -> Path:
    """hrm_day and hrm_stream, each with the whole bundle; returns hrm_day's copy of the bundle."""
    params = {"bundle": "bundle", "backend": opts.backend, "precision": opts.precision,
              "hrm_export_version": hrm_export.__version__}
    day_batch = opts.max_batch or max(int(p["axes"]["batch"][2]) for p in manifest.profiles.values())
    first: Path | None = None
    for name in PYTHON_MODELS:
        version = root / name / "1"
        bundle = version / "bundle"
        for rel in _bundle_files(manifest):
            if first is None:
                _copy(manifest.dir / rel, bundle / rel)
            else:
                _place(first / rel, bundle / rel)
        _copy(manifest.path, bundle / MANIFEST_NAME)
        first = first or bundle
        (version / "model.py").write_text(
            f'"""{name}: generated by hrm-export {hrm_export.__version__}; the model is '
            f'hrm_export.triton.models.{name}."""\n\nfrom hrm_export.triton.models.{name} import TritonPythonModel  '
            "# noqa: F401\n")
        if name == "hrm_day":
            config = configs.day_config(manifest, day_batch, opts.instances, params)
        else:
            config = configs.stream_config(manifest, opts.stream_batch, opts.instances, params, opts.stream_idle_s,
                                           opts.max_sequences)
        _config(root / name, config)
    return first


def _bundle_files(manifest: Manifest) -> list[str]:
    """Every file the bundle's manifest lists — the artifacts, the external-weights file beside an ONNX graph that
    has one, the checkpoint inside the bundle — so that the copy opens (and hash-checks) whole."""
    files = [a.path for a in manifest.artifacts]
    files += [f + ".data" for f in files if (manifest.dir / (f + ".data")).is_file()]
    return files + ([manifest.checkpoint["path"]] if manifest.checkpoint.get("path") else [])


def python_model_parameters(repo: str | Path, model: str) -> dict[str, str]:
    """The string parameters of a Python model's config.pbtxt as this module writes them (bundle, backend, ...)."""
    path = Path(repo) / model / "config.pbtxt"
    if not path.is_file():
        raise UserError(f"{path}: missing (not a repository from `hrm-export triton`?)",
                        hint="write one: hrm-export triton BUNDLE --out REPO")
    return dict(re.findall(r'key: "([^"]+)"\s*value \{\s*string_value: "([^"]*)"', path.read_text()))


def _tag(precision: str) -> str:
    return precision.replace("-", "_")


def _config(model_dir: Path, config: dict) -> None:
    (model_dir / "config.pbtxt").write_text(to_pbtxt(config))


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def _place(src: Path, dst: Path) -> None:
    """A file inside the repository again: a hard link where the filesystem allows, else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _replace_dir(new: Path, out: Path) -> None:
    if not out.exists():
        os.replace(new, out)
        return
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)
