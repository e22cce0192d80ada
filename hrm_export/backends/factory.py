"""The one factory of backends: a name from the registry, a bundle and a precision → a Backend, after the
registry said it can run here (BackendUnavailableError otherwise). The runtime, verify and bench build theirs
here.
"""

from __future__ import annotations

import copy

import torch

from hrm_export.backends.base import Backend
from hrm_export.core.backend_registry import check
from hrm_export.core.manifest import Manifest

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def make_backend(name: str, manifest: Manifest, precision: str, device: str | None = None, *,
                 compile: bool = False, cuda_graphs: bool = False, check_hashes: bool = False,
                 intra_op_threads: int = 0, memory_arena: bool = True, model=None) -> Backend:
    """A backend not yet activated. Hashes are left to the caller (checked once per bundle), unless asked.
    `model`: an HRM already loaded for the torch backend (default: the bundle's reference, hash-checked)."""
    check(name, precision, manifest, device)
    if name == "tensorrt":
        from hrm_export.backends.trt_backend import TrtBackend

        return TrtBackend(manifest, precision=precision, device=device or "cuda", cuda_graphs=cuda_graphs,
                          check_hashes=check_hashes)
    if name in ("ort-cuda", "ort-cpu"):
        from hrm_export.backends.ort_backend import OrtBackend

        return OrtBackend(manifest, precision, device or ("cuda" if name == "ort-cuda" else "cpu"),
                          intra_op_threads=intra_op_threads, check_hashes=check_hashes, memory_arena=memory_arena)
    if model is None:
        from hrm_export.core.reference import reference_from_manifest

        model = reference_from_manifest(manifest)  # checks the checkpoint's sha256 against the manifest
    return torch_backend(model, precision, device or ("cuda" if torch.cuda.is_available() else "cpu"), compile,
                         cuda_graphs)


def torch_backend(model, precision: str, device: str, compile: bool = False, cuda_graphs: bool = False) -> Backend:
    """PyTorch eager (or torch.compile'd, or CUDA-graphed) over an HRM; the caller's model is never cast."""
    from hrm_export.backends.torch_backend import TorchBackend

    check("torch", precision, None, device)
    param = next(model.parameters())
    if param.dtype != _DTYPES[precision] or param.device != torch.device(device):
        model = copy.deepcopy(model)  # TorchBackend moves the model in place; the caller's model stays as it was
    if cuda_graphs:
        from hrm_export.backends.cuda_graphs import CudaGraphBackend
        from hrm_export.core.errors import UserError

        if not device.startswith("cuda"):
            raise UserError("CUDA graphs need a CUDA device", hint="pass device='cuda' or drop cuda_graphs")
        return CudaGraphBackend(TorchBackend(model, precision, device, compile=False))
    return TorchBackend(model, precision, device, compile=compile)
