"""PyTorch eager backend: the reference itself (fp32 or bf16 weights), optionally torch.compile'd."""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from hrm_export.backends.base import Backend
from hrm_export.core.specs import FP32_MODULES, STATIC_STEP, module_specs
from model_src.model import HRM, LStep, LStepStatic

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model: HRM, precision: str = "fp32", device: str = "cpu", compile: bool = False):
        if precision not in _DTYPES:
            raise ValueError(f"torch backend runs fp32 or bf16, not {precision!r}")
        self.model, self.precision, self.device, self.compile = model, precision, device, compile
        self.specs = module_specs(model.cfg)
        self._modules: dict[str, torch.nn.Module] = {}

    def activate(self) -> None:
        dtype, device = _DTYPES[self.precision], torch.device(self.device)
        p = next(self.model.parameters())
        # Never cast the caller's model in place: verify keeps using it as the fp32 reference.
        same = p.dtype == dtype == torch.float32 and p.device.type == device.type
        m = (self.model if same else copy.deepcopy(self.model).to(device)).eval()
        for name, part in (("h_module", m.h), ("l_module", m.l)):
            if name not in FP32_MODULES:  # as the bf16 graphs do: what runs once a day stays fp32, weights too
                part.to(dtype)  # the model casts between the parts (γ, β enter the L-module's FiLM in fp32)
        mods = {"h_module": m.h, "l_module": m.l, "l_step": LStep(m.l), STATIC_STEP: LStepStatic(m.l)}
        self._modules = {k: torch.compile(v, dynamic=True) if self.compile else v for k, v in mods.items()}

    @torch.inference_mode()
    def infer(self, module: str, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        spec = self.specs[module]
        args = [feeds[name].to(self.device) for name in spec.input_names]
        outs = self._modules[module](*args)
        return {name: out.float() for name, out in zip(spec.output_names, outs, strict=True)}

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.precision]

    def static_step_module(self) -> torch.nn.Module:
        return self._modules[STATIC_STEP]

    def stream_state(self, film: dict[str, Tensor]):
        from hrm_export.backends.stream import TorchStream

        return TorchStream(self.static_step_module(), self.model.cfg, film, self.device, self.dtype)

    def deactivate(self) -> None:
        self._modules = {}

    def describe(self) -> str:
        return super().describe() + ("+compile" if self.compile else "")
