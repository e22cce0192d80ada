"""The interface every backend implements.

Feeds and results are torch tensors keyed by the names in `hrm_export.core.specs`. A CPU backend takes and
returns CPU tensors (ONNX Runtime CPU shares their memory through numpy); a GPU backend accepts tensors
already on its device and returns device tensors, so H → L hand-offs never round-trip through the host.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import Tensor


class Backend(ABC):
    name: str = "?"  # "torch", "ort-cpu", "ort-cuda", "tensorrt", ...
    precision: str = "fp32"  # "fp32" | "bf16" | "int8" | "int8-cpu"
    device: str = "cpu"  # where infer() wants its feeds and returns its results

    def activate(self) -> None:  # noqa: B027 (optional hook)
        """Load sessions/engines; called once before the first infer()."""

    @abstractmethod
    def infer(self, module: str, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        """Run one module ("h_module" | "l_module" | "l_step") on named inputs, return named outputs."""

    def infer_numpy(self, module: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """infer() on numpy arrays (host memory), returning float32 numpy arrays."""
        out = self.infer(module, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()})
        return {k: v.detach().float().cpu().numpy() for k, v in out.items()}

    def stream_state(self, film: dict[str, Tensor]):
        """A session's fixed-capacity K/V cache and its l_step_static call (`backends/stream.py`), or None where this
        backend has no such step (a bundle made before it, TensorRT, ONNX Runtime CUDA): the runtime then streams
        through l_step and its growing past_kv. `film`: film_gamma, film_beta (and h_tokens) of the day."""
        return None

    def deactivate(self) -> None:  # noqa: B027 (optional hook)
        """Release sessions/engines and device memory."""

    def __enter__(self) -> Backend:
        self.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def describe(self) -> str:
        return f"{self.name}/{self.precision}@{self.device}"
