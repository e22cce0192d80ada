"""ONNX Runtime's TensorRT execution provider as a second route to TensorRT, from the same profile files.

ONNX Runtime builds (and caches) the engine itself; what it needs are provider options. The profile shapes
go in ONNX Runtime's explicit-profile format, "name:d0xd1x...,name:...", one entry per input per profile:
an input named twice means two profiles, in order (onnxruntime's ParseProfileShapes).

Precision comes from the graph, as in `hrm_export.tensorrt.builder`: the TensorRT EP builds a strongly typed
network only while trt_fp16/bf16/int8_enable are off, so they stay off for bf16-typed and Q/DQ graphs.
`weak_precision_flags=True` turns the matching flag on instead — TensorRT 10 only; TensorRT 11 removed them.
"""

from __future__ import annotations

from pathlib import Path

from hrm_export.tensorrt.shapes import ProfileShapes, Shape

PROVIDER = "TensorrtExecutionProvider"


def shape_token(name: str, shape: Shape) -> str:
    if ":" in name or "," in name:
        raise ValueError(f"input name {name!r} contains ':' or ',', which the TensorRT EP's shape format cannot hold")
    return f"{name}:{'x'.join(str(int(d)) for d in shape)}"


def profile_shape_strings(profiles: list[ProfileShapes]) -> dict[str, str]:
    """{'trt_profile_min_shapes': 'minutes:1x1x11,...', ...opt, ...max} for a list of profiles."""
    out = {}
    for which in ("min", "opt", "max"):
        out[f"trt_profile_{which}_shapes"] = ",".join(
            shape_token(name, getattr(r, which)) for p in profiles for name, r in p.items())
    return out


def _flag(on: bool) -> str:
    return "True" if on else "False"


def trt_ep_options(
    profiles: list[ProfileShapes],
    precision: str,
    cache_dir: str | Path,
    timing_cache: str | Path | None = None,
    workspace_mib: int | None = None,
    opt_level: int | None = None,
    hardware_compatibility: str = "none",
    weak_precision_flags: bool = False,
    device_id: int = 0,
) -> dict[str, str]:
    """Provider options (all strings, as ONNX Runtime takes them) for one module's ONNX file."""
    opts = {
        "device_id": str(device_id),
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_dir),
        "trt_fp16_enable": "False",
        "trt_bf16_enable": _flag(weak_precision_flags and precision.startswith("bf16")),
        "trt_int8_enable": _flag(weak_precision_flags and precision == "int8"),
        **profile_shape_strings(profiles),
    }
    if timing_cache is not None:
        opts["trt_timing_cache_enable"] = "True"
        opts["trt_timing_cache_path"] = str(Path(timing_cache).parent)  # the EP takes a folder
    if workspace_mib is not None:
        opts["trt_max_workspace_size"] = str(int(workspace_mib) << 20)
    if opt_level is not None:
        opts["trt_builder_optimization_level"] = str(opt_level)
    if hardware_compatibility == "ampere+":
        opts["trt_engine_hw_compatible"] = "True"
    return opts


def providers(options: dict[str, str]) -> list:
    """The `providers=` list for onnxruntime.InferenceSession: TensorRT first, CUDA for what it leaves."""
    return [(PROVIDER, options), "CUDAExecutionProvider"]
