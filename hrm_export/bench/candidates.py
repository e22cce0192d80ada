"""Which backend × precision pairs a bench run measures, each either buildable here or with its skip reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from hrm_export.backends.base import Backend
from hrm_export.manifest import Manifest
from model_src.model import HRM

BACKENDS = ("torch", "torch-compile", "ort-cpu", "ort-cuda", "tensorrt")
DEFAULT_BACKENDS = ("torch", "ort-cpu", "ort-cuda", "tensorrt")  # torch-compile: minutes of compiling, opt in
PRECISIONS = ("fp32", "bf16", "int8-cpu", "int8")
# The precisions each backend could run at all; other pairs are not listed (int8-cpu is an ONNX Runtime CPU
# artifact; PyTorch's integer route is not part of the product).
PAIRS = {"torch": ("fp32", "bf16"), "torch-compile": ("fp32", "bf16"), "ort-cpu": ("fp32", "bf16", "int8-cpu", "int8"),
         "ort-cuda": ("fp32", "bf16", "int8"), "tensorrt": ("fp32", "bf16", "int8")}
BASELINE = ("torch", "fp32")


@dataclass
class Candidate:
    """One backend × precision the run will measure, or skip with the reason."""

    name: str
    precision: str
    make: Callable[[], Backend] | None = None
    reason: str = ""  # why it is skipped (make is None)
    facts: dict = field(default_factory=dict)  # threads, compile, cuda graphs, transfers


def candidates(manifest: Manifest, reference: HRM, opts) -> list[Candidate]:
    """Every backend × precision asked for, each either buildable here or carrying its skip reason."""
    from hrm_export.backends.torch_backend import TorchBackend

    dev = opts.device
    on_gpu = dev.startswith("cuda")
    threads = torch.get_num_threads()
    moves = ({"in": "none: feeds built on the device before timing", "out": "none: outputs stay on the device"}
             if on_gpu else {"in": "none (host memory)", "out": "none (host memory)"})
    out: list[Candidate] = []
    for name in opts.backends:
        precs = [p for p in opts.precisions if p in PAIRS[name]]
        if not precs:
            continue
        unavailable = _backend_unavailable(name, opts)
        if unavailable:  # one row for the whole backend, not one per precision
            out.append(Candidate(name, "/".join(precs), reason=unavailable))
            continue
        for prec in precs:
            if name in ("torch", "torch-compile"):
                compile_ = name == "torch-compile"
                out.append(Candidate(name, prec, _torch_maker(TorchBackend, reference, prec, dev, compile_),
                                     facts={"threads": threads, "compile": compile_, "cuda_graphs": False,
                                            "transfers": moves}))
            elif name in ("ort-cpu", "ort-cuda"):
                out.append(_ort_candidate(name, prec, manifest, opts))
            else:
                out.append(_trt_candidate(prec, manifest, dev))
    if not any((c.name, c.precision) == BASELINE for c in out):  # the baseline is never optional
        out.insert(0, Candidate(*BASELINE, _torch_maker(TorchBackend, reference, "fp32", dev, False),
                                facts={"threads": threads, "compile": False, "cuda_graphs": False, "transfers": moves}))
    out.sort(key=lambda c: (c.name, c.precision) != BASELINE)  # baseline first: its figures anchor the ratios
    return out


def _torch_maker(cls, reference: HRM, precision: str, device: str, compile_: bool) -> Callable[[], Backend]:
    # TorchBackend casts a copy when the precision or device differs, so one reference serves every candidate.
    return lambda: cls(reference, precision, device, compile=compile_)


def _backend_unavailable(name: str, opts) -> str:
    """Why a whole backend cannot run here ("" if it can)."""
    if name.startswith("ort"):
        try:
            ort = __import__("onnxruntime")
        except ImportError:
            return "onnxruntime is not installed (pip install 'hrm-export[ort]')"
        if name == "ort-cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            return "this onnxruntime has no CUDAExecutionProvider (onnxruntime-gpu on a CUDA machine)"
    if name == "tensorrt":
        try:
            __import__("tensorrt")
        except ImportError:
            return "TensorRT (libnvinfer) is not installed on this machine"
    if name in ("ort-cuda", "tensorrt") and not opts.device.startswith("cuda"):
        return "needs a CUDA device (the run is on the host; pass --device cuda)"
    return ""


def _ort_candidate(name: str, prec: str, manifest: Manifest, opts) -> Candidate:
    if prec == "int8" and name == "ort-cpu" and "int8-cpu" in opts.precisions:
        # ORT's CPU provider does fuse the Q/DQ graph into integer kernels (2.1× over fp32 on l_module 390 on the
        # 2-core CPU), but int8-cpu is faster still and closer to fp32, so one INT8 row per backend is enough.
        return Candidate(name, prec, reason="Q/DQ int8 is the TensorRT artifact; on this provider int8-cpu is the "
                         "faster INT8 route (time both: hrm-export precision bench-cpu, or --precision int8)")
    if prec == "bf16" and name == "ort-cpu":
        return Candidate(name, prec, reason="ONNX Runtime's CPU provider has no bf16 MatMul kernel")
    have = {a.module for a in manifest.artifacts if a.precision == prec and a.format == "onnx"}
    missing = sorted({"h_module", "l_module", "l_step"} - have)
    if missing:
        return Candidate(name, prec, reason=f"bundle has no {prec} ONNX for {', '.join(missing)}")
    from hrm_export.backends.ort_backend import OrtBackend

    device = opts.device if name == "ort-cuda" else "cpu"
    threads = opts.threads or 0
    facts = {"threads": f"{threads or 'ORT default (one per physical core)'}, no spin-wait", "compile": False,
             "cuda_graphs": False,
             "graph_optimization": "ORT_ENABLE_ALL",
             "transfers": ({"in": "none: IOBinding on device tensors", "out": "none: bound device outputs"}
                           if name == "ort-cuda" else {"in": "none (numpy views of torch tensors)",
                                                       "out": "none (torch views of numpy arrays)"})}
    return Candidate(name, prec, lambda: OrtBackend(manifest, prec, device, intra_op_threads=threads), facts=facts)


def _trt_candidate(prec: str, manifest: Manifest, device: str) -> Candidate:
    if not any(a.format == "trt-plan" and a.precision == prec for a in manifest.artifacts):
        return Candidate("tensorrt", prec, reason=f"bundle has no {prec} TensorRT plans (hrm-export build)")
    try:
        from hrm_export.backends.trt_backend import TrtBackend
    except ImportError as e:
        return Candidate("tensorrt", prec, reason=f"TensorRT backend unavailable: {e}")
    facts = {"threads": "n/a", "compile": False, "cuda_graphs": False,
             "transfers": {"in": "none: device tensors bound by pointer", "out": "none: outputs stay on the device"}}
    return Candidate("tensorrt", prec, lambda: TrtBackend(manifest, prec, device), facts=facts)
