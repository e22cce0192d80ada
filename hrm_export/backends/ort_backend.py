"""ONNX Runtime backend: the bundle's ONNX per module on the CPU provider ("ort-cpu") or CUDA ("ort-cuda").

CPU: torch CPU tensors go in and come out sharing memory with numpy (no copies). CUDA: IOBinding binds torch
CUDA tensors by pointer for inputs and pre-allocated torch CUDA outputs, so H → L hand-offs stay on the device.
Sessions open lazily per module (an l_step-only runtime never loads l_module).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from hrm_export.backends.base import Backend
from hrm_export.core.backend_registry import check
from hrm_export.core.errors import UserError
from hrm_export.core.manifest import Manifest
from hrm_export.core.ort_session import open_session
from hrm_export.core.profiles import Profile, check_shapes
from hrm_export.core.specs import STATIC_STEP, module_specs


class OrtBackend(Backend):
    def __init__(
        self,
        bundle: str | Path | Manifest,
        precision: str = "fp32",
        device: str = "cpu",
        intra_op_threads: int = 0,  # 0: ONNX Runtime's default (one per physical core)
        save_optimized: bool = False,  # write <module>.<precision>.ort-opt.onnx beside the ONNX (the ORT artifact)
        check_hashes: bool = True,
        memory_arena: bool = True,  # off: memory returns after each run (verify's batch-128 cases), a bit slower
        spin_wait: bool = False,  # ORT's default is on; see core.ort_session
        static_step_threads: int = 0,  # l_step_static's own intra-op threads (0: as intra_op_threads); 1 is faster
        #                                for one minute at batch 1, slower for chunked days at large batches
        #                                (docs/benchmarks.md, "Streaming at the floor")
    ):
        self.manifest = bundle if isinstance(bundle, Manifest) else Manifest.load(bundle)
        self.precision, self.device = precision, device
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise UserError(f"ort backend device {device!r}", hint="use cpu or cuda[:N]")
        self.name = "ort-cpu" if device == "cpu" else "ort-cuda"
        self.intra_op_threads, self.save_optimized, self.check_hashes = intra_op_threads, save_optimized, check_hashes
        self.memory_arena, self.spin_wait = memory_arena, spin_wait
        self.static_step_threads = static_step_threads
        self.specs = module_specs(self.manifest.config)
        self.check_profiles = True  # refuse shapes outside the artifact's profiles before running
        self._sessions: dict = {}
        self._profiles: dict[str, list[Profile]] = {}
        self._active = False

    # -- lifecycle -------------------------------------------------------------------------------------------
    def activate(self) -> None:
        check(self.name, self.precision, self.manifest)  # installed, a device, the artifacts: one line if not
        self._active = True
        if self.check_hashes:
            self.manifest.verify_hashes()

    def session(self, module: str):
        """The InferenceSession of one module, created on first use."""
        if module not in self._sessions:
            if not self._active:
                self.activate()
            artifact = self.manifest.find(module, self.precision, "onnx")
            path = self.manifest.artifact_path(artifact)
            optimized = path.with_name(f"{module}.{self.precision}.ort-opt.onnx") if self.save_optimized else None
            threads = self.intra_op_threads
            if module == STATIC_STEP and self.static_step_threads:
                threads = self.static_step_threads
            self._sessions[module] = open_session(path, self._providers(), intra_op_threads=threads,
                                                  spin_wait=self.spin_wait, memory_arena=self.memory_arena,
                                                  optimized_path=optimized)
            self._profiles[module] = [Profile.from_dict(self.manifest.profiles[n]) for n in artifact.profiles
                                      if n in self.manifest.profiles]
        return self._sessions[module]

    def _providers(self) -> list:
        if self.device == "cpu":
            return ["CPUExecutionProvider"]
        device_id = int(self.device.split(":")[1]) if ":" in self.device else 0
        return [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"]

    def deactivate(self) -> None:
        self._sessions, self._active = {}, False

    def has_static_step(self) -> bool:
        return any(a.key() == (STATIC_STEP, self.precision, "onnx") for a in self.manifest.artifacts)

    def stream_state(self, film: dict[str, Tensor]):
        if self.device != "cpu" or not self.has_static_step():
            return None  # CUDA: the same binding on device memory is not written yet (docs/runtime.md, Streaming)
        from hrm_export.backends.stream import OrtStream

        return OrtStream(self.session(STATIC_STEP), self.manifest.config, film)

    # -- inference -------------------------------------------------------------------------------------------
    def infer(self, module: str, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        spec = self.specs[module]
        sess = self.session(module)
        if self.check_profiles and self._profiles[module]:
            shapes = {n: tuple(feeds[n].shape) for n in spec.input_names if n in feeds}
            check_shapes(self._profiles[module], module, shapes, self.manifest.config)
        if self.device == "cpu":
            arrays = {n: feeds[n].detach().to("cpu", torch.float32).contiguous().numpy() for n in spec.input_names}
            outs = sess.run(spec.output_names, arrays)
            return {n: torch.from_numpy(o) for n, o in zip(spec.output_names, outs, strict=True)}
        return self._infer_cuda(module, sess, feeds)

    def _infer_cuda(self, module: str, sess, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        """IOBinding on torch CUDA tensors: inputs and outputs are bound by device pointer, no host copies."""
        import numpy as np

        spec = self.specs[module]
        dev = torch.device(self.device)
        binding = sess.io_binding()
        inputs = {n: feeds[n].to(dev, torch.float32).contiguous() for n in spec.input_names}
        for n, t in inputs.items():
            binding.bind_input(name=n, device_type="cuda", device_id=dev.index or 0, element_type=np.float32,
                               shape=tuple(t.shape), buffer_ptr=t.data_ptr())
        outputs = {t.name: torch.empty(_output_shape(t.axes, inputs, spec), device=dev, dtype=torch.float32)
                   for t in spec.outputs}
        for n, t in outputs.items():
            binding.bind_output(name=n, device_type="cuda", device_id=dev.index or 0, element_type=np.float32,
                                shape=tuple(t.shape), buffer_ptr=t.data_ptr())
        sess.run_with_iobinding(binding)
        return outputs


def _output_shape(axes, inputs: dict[str, Tensor], spec) -> tuple[int, ...]:
    """Resolve an output's named axes from the input shapes (total_minutes = past_minutes + new_minutes)."""
    sizes: dict[str, int] = {}
    for t in spec.inputs:
        for i, a in t.dynamic_axes.items():
            sizes[a] = inputs[t.name].shape[i]
    if "past_minutes" in sizes:
        sizes["total_minutes"] = sizes["past_minutes"] + sizes["new_minutes"]
    return tuple(a if isinstance(a, int) else sizes[a] for a in axes)
