"""The TensorRT step: one ONNX file → one serialized plan, strongly typed, one optimization profile per profile.

This is the only module that calls the TensorRT builder, and it stays thin: Polygraphy's loaders make the
strongly typed network and the builder config (profiles, timing cache, workspace, optimisation level,
compatibility, progress monitor); TensorRT's documented API parses the ONNX file (so parser errors can be
mapped to PyTorch modules) and serializes the plan. Precision is whatever the graph says — fp32, bf16-typed,
or Q/DQ int8 — because TensorRT 11 has no precision builder flags and TensorRT 10's strongly typed mode
(NetworkDefinitionCreationFlag.STRONGLY_TYPED) honours the same graphs without them.
"""

from __future__ import annotations

import time
from pathlib import Path

from hrm_export.core.errors import MissingDependencyError, UserError
from hrm_export.core.node_names import describe_parser_error
from hrm_export.tensorrt.options import HARDWARE_COMPATIBILITY, BuildOptions
from hrm_export.tensorrt.shapes import ProfileShapes
from model_src.atomic import atomic_output

# The wheels that bring libnvinfer, by the CUDA major version of the machine (PyPI, 2026-10: 11.4.0.106 for both;
# `pip install "tensorrt-cu12<11"` pins TensorRT 10 on CUDA 12).
INSTALL = {
    "13": "pip install tensorrt-cu13 (CUDA 13: TensorRT 11.x)",
    "12": "pip install tensorrt-cu12 (CUDA 12: TensorRT 10.x/11.x)",
}


class TensorRTBuildError(UserError):
    """The ONNX parser or the builder refused a graph."""


def tensorrt_version() -> str | None:
    """The installed TensorRT's version, or None if it cannot be imported (absent, or bindings without libs)."""
    try:
        import tensorrt as trt
    except Exception:  # noqa: BLE001 (a bindings-only wheel raises OSError/ImportError on libnvinfer)
        return None
    return getattr(trt, "__version__", None)


def install_command() -> str:
    """The pip command matching this machine's CUDA (torch's build), both when it cannot tell."""
    import torch

    cuda = (torch.version.cuda or "").split(".")[0]
    if cuda in INSTALL:
        return INSTALL[cuda]
    return f"{INSTALL['13']} or {INSTALL['12']}"


def require_tensorrt():
    if tensorrt_version() is None:
        raise MissingDependencyError("TensorRT is not installed (import tensorrt failed)",
                                     hint=f"install it: {install_command()}; see docs/tensorrt.md")
    import tensorrt as trt

    return trt


def compute_capability() -> str:
    import torch

    if not torch.cuda.is_available():
        raise UserError("TensorRT builds need a CUDA GPU and none is visible",
                        hint="run the build on the GPU machine the plans will serve on")
    major, minor = torch.cuda.get_device_capability()
    return f"{major}.{minor}"


def build_plan(
    onnx_path: str | Path,
    plan_path: str | Path,
    module: str,
    profiles: dict[str, ProfileShapes],
    opts: BuildOptions,
    progress=None,
) -> dict:
    """Build `plan_path` (written atomically) from `onnx_path`; returns facts for the manifest's `extra`.

    `profiles` is {profile name: {input: ShapeRange}}, in the order of the plan's optimization profiles.
    `progress` is a rich.progress.Progress to show TensorRT's build phases on (None: quiet).
    """
    trt = require_tensorrt()
    from polygraphy.backend.trt import CreateConfig, Profile, create_network
    from polygraphy.backend.trt import util as trt_util

    cc = compute_capability()
    builder, network = create_network(strongly_typed=True)  # ignored (always on) in TensorRT 11
    parser = trt.OnnxParser(network, trt_util.get_trt_logger())
    ok = parser.parse_from_file(str(onnx_path))  # from the file, so external weights resolve beside it
    if not ok or parser.num_errors:
        raise TensorRTBuildError(_parser_errors(parser, onnx_path, module),
                                 hint="see docs/tensorrt.md, 'Parser errors'; the module named is where to look")

    trt_profiles = []
    for shapes in profiles.values():
        p = Profile()
        for name, r in shapes.items():
            p.add(name, min=r.min, opt=r.opt, max=r.max)
        trt_profiles.append(p)
    config = CreateConfig(
        profiles=trt_profiles,
        load_timing_cache=str(opts.timing_cache) if opts.timing_cache else None,
        error_on_timing_cache_miss=opts.error_on_timing_cache_miss,
        memory_pool_limits=({trt.MemoryPoolType.WORKSPACE: opts.workspace_mib << 20} if opts.workspace_mib else None),
        builder_optimization_level=opts.opt_level,
        hardware_compatibility_level=(getattr(trt.HardwareCompatibilityLevel, HARDWARE_COMPATIBILITY[
            opts.hardware_compatibility]) if opts.hardware_compatibility != "none" else None),
        version_compatible=opts.version_compatible or None,
        progress_monitor=_progress_monitor(trt, progress, f"{module}"),
    )(builder, network)

    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if plan is None:
        raise TensorRTBuildError(f"TensorRT could not build {Path(onnx_path).name} (see the log above)",
                                 hint="with --error-on-timing-cache-miss a cache miss fails the build; "
                                 "otherwise see docs/tensorrt.md, 'Build failures'")
    with atomic_output(plan_path) as tmp:
        tmp.write_bytes(memoryview(plan))
    if opts.timing_cache:  # the config's cache holds the loaded entries plus this build's: write it back whole
        cache = config.get_timing_cache()
        with atomic_output(opts.timing_cache) as tmp:
            tmp.write_bytes(memoryview(cache.serialize()))
    return {"tensorrt_version": trt.__version__, "compute_capability": cc, "build_seconds": round(seconds, 1),
            "strongly_typed": True, "profiles": {name: {i: r.as_dict() for i, r in shapes.items()}
                                                  for name, shapes in profiles.items()}}


def _parser_errors(parser, onnx_path, module: str) -> str:
    lines = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        node_name = e.node_name() if hasattr(e, "node_name") else ""
        op = e.node_operator() if hasattr(e, "node_operator") else ""
        lines.append(describe_parser_error(onnx_path, module, e.desc(), e.node(), node_name or "", op or ""))
    return lines[0] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else "") if lines else \
        f"{Path(onnx_path).name}: TensorRT's ONNX parser failed without an error record"


def _progress_monitor(trt, progress, label: str):
    """A trt.IProgressMonitor that shows build phases as rich progress tasks (None where unsupported)."""
    if progress is None or not hasattr(trt, "IProgressMonitor"):
        return None

    class Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.tasks = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            indent = "  " if parent_phase else ""
            self.tasks[phase_name] = progress.add_task(f"{indent}{label}: {phase_name}", total=max(num_steps, 1))

        def step_complete(self, phase_name, step):
            progress.update(self.tasks[phase_name], completed=step + 1)
            return True  # keep building

        def phase_finish(self, phase_name):
            progress.remove_task(self.tasks.pop(phase_name))

    return Monitor()
