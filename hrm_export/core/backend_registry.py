"""Which inference backends exist, and whether each can run a precision of a bundle on this machine — and if
not, why, in one line. The runtime's loader (including `auto`), verify's candidates and the bench's
candidates all ask here, so they give the same answer.

Nothing heavy is imported: availability is a question of installed packages, devices and artifacts.
"""

from __future__ import annotations

import importlib.util

from hrm_export.core.errors import BackendUnavailableError

# In `auto`'s order of preference: fastest first.
BACKENDS = ("tensorrt", "ort-cuda", "ort-cpu", "torch")
# What each backend can run. ONNX Runtime's CPU provider has no bf16 MatMul kernel, so on the CPU the bf16 graph
# runs through its fp32 emulation (bf16-emulated); the TensorRT-bound Q/DQ int8 graph also runs there.
PRECISIONS = {
    "tensorrt": ("fp32", "bf16", "int8"),
    "ort-cuda": ("fp32", "bf16", "int8"),
    "ort-cpu": ("fp32", "bf16-emulated", "int8", "int8-cpu"),
    "torch": ("fp32", "bf16"),
}
FORMAT = {"tensorrt": "trt-plan", "ort-cuda": "onnx", "ort-cpu": "onnx", "torch": "checkpoint"}
# The Python modules that run TensorRT plans, preferred first: the full library, then the lean runtime, which
# runs version-compatible plans only (hrm_export.tensorrt.library).
TENSORRT_MODULES = ("tensorrt", "tensorrt_lean")
INSTALL = {"tensorrt": "pip install 'hrm-export[trt]' on a machine with an NVIDIA GPU",
           "tensorrt_lean": "pip install 'hrm-export[lean]' (the lean runtime, for version-compatible plans)",
           "ort-cuda": "pip install onnxruntime-gpu on a machine with an NVIDIA GPU",
           "ort-cpu": "pip install 'hrm-export[ort]'"}


def unavailable(name: str, precision: str, manifest=None, device: str | None = None) -> str:
    """Why backend `name` cannot run `precision` here ("" if it can). With a manifest, the bundle must also hold
    the artifacts it would load; `device` ("cpu", "cuda[:N]") is where torch would run."""
    if name not in PRECISIONS:
        return f"unknown backend {name!r} (backends: {', '.join(BACKENDS)})"
    if precision not in PRECISIONS[name]:
        return _cannot(name, precision)
    if name in ("ort-cpu", "ort-cuda") and not installed("onnxruntime"):
        return f"onnxruntime is not installed ({INSTALL['ort-cpu']})"
    if name == "ort-cuda":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return f"this onnxruntime has no CUDAExecutionProvider ({INSTALL['ort-cuda']})"
    if name == "tensorrt" and tensorrt_module() is None:
        return f"TensorRT is not installed ({INSTALL['tensorrt']})"
    needs_gpu = name in ("tensorrt", "ort-cuda") or (device or "cpu").startswith("cuda")
    if needs_gpu and not cuda_available():
        return "no CUDA GPU is visible"
    if manifest is not None:
        missing = _missing_artifacts(name, precision, manifest)
        if missing or name != "tensorrt" or tensorrt_module() != "tensorrt_lean":
            return missing
        return _lean_cannot(precision, manifest)
    return ""


def check(name: str, precision: str, manifest=None, device: str | None = None) -> None:
    """BackendUnavailableError (one line and a hint naming what can run it) unless the backend can run it."""
    why = unavailable(name, precision, manifest, device)
    if why:
        can = [b for b in BACKENDS if precision in PRECISIONS[b]]
        hint = (f"backends that run {precision}: {', '.join(can)}" if can else
                f"precisions: {sorted({p for ps in PRECISIONS.values() for p in ps})}")
        if name == "ort-cpu" and precision == "bf16":
            hint = "on the CPU verify the bf16 graph as --precision bf16-emulated, or run bf16 with --backend torch"
        raise BackendUnavailableError(f"backend {name} cannot run {precision} here: {why}", hint=hint)


def installed(module: str) -> bool:
    """Whether `module` can be imported as a real module (a folder of the same name on sys.path — a namespace
    package, such as a tests/ folder — does not count)."""
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.origin not in (None, "namespace")


def tensorrt_module() -> str | None:
    """The TensorRT module plans would run with here (the first of TENSORRT_MODULES installed), or None."""
    return next((m for m in TENSORRT_MODULES if installed(m)), None)


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    if not installed("torch"):
        return False
    import torch

    return torch.cuda.is_available()


def _cannot(name: str, precision: str) -> str:
    if name == "ort-cpu" and precision == "bf16":
        return "ONNX Runtime's CPU provider has no bf16 MatMul kernel"
    return f"{name} runs {', '.join(PRECISIONS[name])}, not {precision}"


def _missing_artifacts(name: str, precision: str, manifest) -> str:
    if name == "torch":
        return "" if manifest.checkpoint else "the manifest names no checkpoint"
    fmt = FORMAT[name]
    have = {a.module for a in manifest.artifacts if a.precision == precision and a.format == fmt}
    missing = [m for m in ("h_module", "l_module", "l_step") if m not in have]
    return f"the bundle has no {precision} {fmt} for {', '.join(missing)}" if missing else ""


def _lean_cannot(precision: str, manifest) -> str:
    plans = [a for a in manifest.artifacts if a.precision == precision and a.format == "trt-plan"]
    fixed = sorted(a.module for a in plans if not a.extra.get("version_compatible"))
    if not fixed:
        return ""
    return (f"only the lean runtime (tensorrt_lean) is installed and it runs version-compatible plans only; the "
            f"{precision} plans of {', '.join(fixed)} were built without --version-compatible (install the full "
            f"TensorRT: {INSTALL['tensorrt']}, or rebuild them with --version-compatible)")
