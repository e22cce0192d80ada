"""Which backend × precision pairs a bench run measures, each either buildable here or with its skip reason.

Whether a backend can run a precision here is the registry's answer (hrm_export.core.backend_registry), the same
one the runtime and verify get; the bench adds only its own choices (torch-compile as a separate row, one INT8
row per ONNX Runtime CPU run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from hrm_export.backends.base import Backend
from hrm_export.backends.factory import make_backend
from hrm_export.core.backend_registry import PRECISIONS as RUNS
from hrm_export.core.backend_registry import unavailable
from hrm_export.core.manifest import Manifest
from model_src.model import HRM

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
    out: list[Candidate] = []
    for name in opts.backends:
        registry_name = "torch" if name.startswith("torch") else name
        precs = [p for p in opts.precisions if p in RUNS[registry_name] or (name == "ort-cpu" and p == "bf16")]
        if not precs:
            continue
        whole = unavailable(registry_name, "fp32", None, opts.device if registry_name == "torch" else None)
        if whole:  # one row for the whole backend, not one per precision
            out.append(Candidate(name, "/".join(precs), reason=whole))
            continue
        out += [_candidate(name, prec, manifest, reference, opts) for prec in precs]
    if not any((c.name, c.precision) == BASELINE for c in out):  # the baseline is never optional
        out.insert(0, _candidate(*BASELINE, manifest, reference, opts))
    out.sort(key=lambda c: (c.name, c.precision) != BASELINE)  # baseline first: its figures anchor the ratios
    return out


def _candidate(name: str, prec: str, manifest: Manifest, reference: HRM, opts) -> Candidate:
    if name == "ort-cpu" and prec == "int8" and "int8-cpu" in opts.precisions:
        # ORT's CPU provider does fuse the Q/DQ graph into integer kernels (2.1× over fp32 on l_module 390 on the
        # 2-core CPU), but int8-cpu is faster still and closer to fp32, so one INT8 row per backend is enough.
        return Candidate(name, prec, reason="Q/DQ int8 is the TensorRT artifact; on this provider int8-cpu is the "
                         "faster INT8 route (time both: hrm-export precision bench-cpu, or --precision int8)")
    registry_name = "torch" if name.startswith("torch") else name
    device = opts.device if registry_name in ("torch", "tensorrt", "ort-cuda") else "cpu"
    why = unavailable(registry_name, prec, manifest, device if registry_name == "torch" else None)
    graphs = name == "torch-graphs"
    if graphs and not why and not device.startswith("cuda"):
        why = "CUDA graphs need a CUDA device (bench --device cuda)"
    if why:
        return Candidate(name, prec, reason=why)
    compile_ = name == "torch-compile"
    threads = opts.threads or 0

    def make() -> Backend:
        return make_backend(registry_name, manifest, prec, device, compile=compile_, cuda_graphs=graphs,
                            intra_op_threads=threads, model=reference)

    return Candidate(name, prec, make, facts=_facts(registry_name, compile_, threads, device, graphs))


def _facts(name: str, compile_: bool, threads: int, device: str, graphs: bool = False) -> dict:
    on_gpu = device.startswith("cuda")
    if name == "torch":
        moves = ({"in": "none: feeds built on the device before timing", "out": "none: outputs stay on the device"}
                 if on_gpu else {"in": "none (host memory)", "out": "none (host memory)"})
        return {"threads": torch.get_num_threads(), "compile": compile_, "cuda_graphs": graphs, "transfers": moves}
    if name == "tensorrt":
        return {"threads": "n/a", "compile": False, "cuda_graphs": False,
                "transfers": {"in": "none: device tensors bound by pointer", "out": "none: outputs stay on the device"}}
    return {"threads": f"{threads or 'ORT default (one per physical core)'}, no spin-wait", "compile": False,
            "cuda_graphs": False, "graph_optimization": "ORT_ENABLE_ALL",
            "transfers": ({"in": "none: IOBinding on device tensors", "out": "none: bound device outputs"}
                          if name == "ort-cuda" else {"in": "none (numpy views of torch tensors)",
                                                      "out": "none (torch views of numpy arrays)"})}
