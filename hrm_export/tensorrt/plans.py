"""Plans for a bundle: every requested module × precision ONNX artifact → a TensorRT plan in the manifest.

Shapes are checked for every plan before any is built, and on machines without TensorRT too, so a profile
that cannot work is reported at once. Each plan is written atomically and recorded in the manifest as
format "trt-plan" with its TensorRT version, compute capability, profiles, build options and hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hrm_export.core.errors import ManifestError
from hrm_export.core.manifest import Artifact, Manifest
from hrm_export.core.profiles import Profile, load_profile
from hrm_export.core.specs import module_specs
from hrm_export.tensorrt.graph_checks import check_qdq_for_tensorrt
from hrm_export.tensorrt.options import BuildOptions
from hrm_export.tensorrt.shapes import ProfileShapes, check_profile_shapes, profile_shapes
from model_src.atomic import file_sha256

FORMAT = "trt-plan"


@dataclass
class PlanJob:
    module: str
    precision: str
    onnx: Artifact
    plan_path: str  # relative to the bundle
    profiles: dict[str, ProfileShapes] = field(default_factory=dict)


def plan_name(module: str, precision: str) -> str:
    return f"{module}.{precision}.plan"


def bundle_profiles(manifest: Manifest, names: tuple[str, ...]) -> list[Profile]:
    """The named profiles as the bundle was exported for them (else shipped or from a path, within the model)."""
    out = []
    for name in names:
        if name in manifest.profiles:
            out.append(Profile.from_dict(manifest.profiles[name]))
        else:
            out.append(load_profile(name))
            out[-1].check_model(manifest.config)
    return out


def plan_jobs(manifest: Manifest, opts: BuildOptions) -> tuple[list[PlanJob], list[str]]:
    """The plans to build, shape-checked; plus one line per requested plan that has no ONNX to start from."""
    cfg = manifest.config
    specs = module_specs(cfg)
    profiles = bundle_profiles(manifest, opts.profiles)
    jobs, missing = [], []
    for precision in opts.precisions:
        for module in opts.modules:
            try:
                onnx = manifest.find(module, precision, "onnx")
            except ManifestError:
                missing.append(f"{module}/{precision}: no {precision} ONNX in the bundle")
                continue
            job = PlanJob(module, precision, onnx, plan_name(module, precision))
            check_qdq_for_tensorrt(manifest.artifact_path(onnx), module)
            for p in profiles:
                shapes = profile_shapes(p, specs[module])
                check_profile_shapes(manifest.artifact_path(onnx), module, p.name, shapes, cfg)
                job.profiles[p.name] = shapes
            jobs.append(job)
    return jobs, missing


def build_job(manifest: Manifest, job: PlanJob, opts: BuildOptions, progress=None) -> Artifact:
    """Build one plan, add it to the manifest (saved atomically) and return its artifact."""
    from hrm_export.tensorrt.builder import build_plan

    path = Path(manifest.dir) / job.plan_path
    facts = build_plan(manifest.artifact_path(job.onnx), path, job.module, job.profiles, opts, progress)
    artifact = Artifact(
        module=job.module, precision=job.precision, format=FORMAT, path=job.plan_path, sha256=file_sha256(path),
        inputs=job.onnx.inputs, outputs=job.onnx.outputs, opset=job.onnx.opset, profile=list(job.profiles),
        made_by={"tool": "tensorrt", "version": facts["tensorrt_version"], "options": opts.to_manifest(),
                 "from": {"path": job.onnx.path, "sha256": job.onnx.sha256}},
        extra={**facts, "version_compatible": opts.version_compatible,
               "hardware_compatibility": opts.hardware_compatibility},
    )
    manifest.add(artifact)
    manifest.save()
    return artifact
