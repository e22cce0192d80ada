"""The interface every backend implements.

Feeds and results are torch tensors keyed by the names in `hrm_export.specs`. A CPU backend takes and
returns CPU tensors (ONNX Runtime CPU shares their memory through numpy); a GPU backend accepts tensors
already on its device and returns device tensors, so H → L hand-offs never round-trip through the host.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

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

    def deactivate(self) -> None:  # noqa: B027 (optional hook)
        """Release sessions/engines and device memory."""

    def __enter__(self) -> Backend:
        self.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def describe(self) -> str:
        return f"{self.name}/{self.precision}@{self.device}"
