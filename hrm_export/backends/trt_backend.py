"""TensorRT backend: the bundle's plans on one GPU, torch CUDA tensors in and out.

Per module: the plan is checked against this machine before TensorRT reads it (header version and the
manifest's compute capability, `hrm_export.tensorrt.compat`), deserialized once, and given one execution context
per optimization profile. A call picks the profile that admits its shapes (nearest opt shape), sets the
input shapes, binds torch tensors by `data_ptr()` with `set_tensor_address`, and enqueues with
`execute_async_v3` on the backend's CUDA stream, ordered against torch's current stream both ways (no host
sync). With `cuda_graphs=True` each distinct input-shape bucket gets its own context and a captured CUDA graph,
replayed on later calls of the same shapes (launch overhead gone; inputs are copied into static buffers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from hrm_export.backends.base import Backend
from hrm_export.core.errors import UserError
from hrm_export.core.manifest import Manifest
from hrm_export.core.profiles import Profile, check_shapes
from hrm_export.core.specs import module_specs
from hrm_export.tensorrt.compat import check_plan_runnable, rebuild_command
from hrm_export.tensorrt.plan_header import PlanError
from hrm_export.tensorrt.shapes import ProfileShapes, ShapeRange, select_profile


@dataclass
class _Engine:
    engine: object  # trt.ICudaEngine
    profile_names: list[str]
    ranges: list[ProfileShapes]
    contexts: list = field(default_factory=list)  # one trt.IExecutionContext per optimization profile
    graphs: dict = field(default_factory=dict)  # shape key -> (context, CUDAGraph, static inputs, static outputs)


_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT8": torch.int8,
           "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool}  # trt.DataType member name -> torch


def _torch_dtype(dtype) -> torch.dtype:
    name = getattr(dtype, "name", str(dtype))
    if name not in _DTYPES:
        raise UserError(f"TensorRT I/O dtype {name} has no torch equivalent here", hint="re-export with fp32 I/O")
    return _DTYPES[name]


class TrtBackend(Backend):
    name = "tensorrt"

    def __init__(self, bundle: str | Path | Manifest, precision: str = "fp32", device: str = "cuda",
                 cuda_graphs: bool = False, check_hashes: bool = True):
        self.manifest = bundle if isinstance(bundle, Manifest) else Manifest.load(bundle)
        self.precision, self.device, self.cuda_graphs, self.check_hashes = precision, device, cuda_graphs, check_hashes
        self.specs = module_specs(self.manifest.config)
        self._engines: dict[str, _Engine] = {}
        self._trt = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def activate(self) -> None:
        from hrm_export.tensorrt.builder import require_tensorrt

        trt = self._trt = require_tensorrt()
        if not torch.cuda.is_available():
            raise UserError("the tensorrt backend needs a CUDA GPU and none is visible", hint="use --backend ort-cpu")
        dev = torch.device(self.device)
        self._stream = torch.cuda.Stream(dev)
        running_cc = torch.cuda.get_device_capability(dev)
        if self.check_hashes:
            self.manifest.verify_hashes()
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        for module in self.specs:
            artifact = self.manifest.find(module, self.precision, "trt-plan")
            path = self.manifest.artifact_path(artifact)
            x = artifact.extra
            check_plan_runnable(path, built_version=x["tensorrt_version"], built_cc=x["compute_capability"],
                                running_version=trt.__version__, running_cc=running_cc,
                                version_compatible=bool(x.get("version_compatible")),
                                hardware_compatibility=x.get("hardware_compatibility", "none"),
                                rebuild=rebuild_command(self.manifest.dir, self.precision))
            with torch.cuda.device(dev):
                engine = runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise PlanError(f"{path}: TensorRT {trt.__version__} could not deserialize the plan",
                                hint=f"rebuild it: {rebuild_command(self.manifest.dir, self.precision)}")
            names = artifact.profiles
            ranges = [{i: ShapeRange(tuple(r["min"]), tuple(r["opt"]), tuple(r["max"])) for i, r in
                       x["profiles"][n].items()} for n in names]
            if engine.num_optimization_profiles != len(ranges):
                raise PlanError(f"{path}: plan has {engine.num_optimization_profiles} optimization profiles, the "
                                f"manifest lists {len(ranges)}", hint=f"rebuild it: "
                                f"{rebuild_command(self.manifest.dir, self.precision)}")
            e = _Engine(engine, names, ranges)
            for i in range(engine.num_optimization_profiles):
                e.contexts.append(self._context(engine, i))
            self._engines[module] = e

    def _context(self, engine, profile: int):
        ctx = engine.create_execution_context()
        if ctx is None:
            raise UserError("TensorRT could not create an execution context (out of GPU memory?)",
                            hint="free GPU memory, or build with fewer/smaller profiles")
        ctx.set_optimization_profile_async(profile, self._stream.cuda_stream)
        return ctx

    def deactivate(self) -> None:
        self._engines = {}
        torch.cuda.empty_cache()

    # -- inference -------------------------------------------------------------------------------------------
    def infer(self, module: str, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self._engines:
            self.activate()
        e, spec = self._engines[module], self.specs[module]
        shapes = {n: tuple(feeds[n].shape) for n in spec.input_names}
        profiles = [Profile.from_dict(self.manifest.profiles[n]) for n in e.profile_names
                    if n in self.manifest.profiles]
        if profiles:
            check_shapes(profiles, module, shapes, self.manifest.config)  # names the profile that would admit it
        idx = select_profile(e.ranges, shapes, e.profile_names, f"{module}/{self.precision} plan")
        dev = torch.device(self.device)
        inputs = {n: feeds[n].to(dev, _torch_dtype(e.engine.get_tensor_dtype(n))).contiguous()
                  for n in spec.input_names}
        current = torch.cuda.current_stream(dev)
        self._stream.wait_stream(current)  # feeds were written on torch's stream
        if self.cuda_graphs:
            outputs = self._replay(e, idx, module, inputs)
        else:
            ctx = e.contexts[idx]
            outputs = self._bind(ctx, e.engine, spec, inputs)
            if not ctx.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError(f"TensorRT execute_async_v3 failed for {module} (see the TensorRT log)")
        for t in inputs.values():
            t.record_stream(self._stream)  # keep the feed memory alive until the plan has read it
        current.wait_stream(self._stream)  # results are ready for whatever torch does next
        return {n: o.float() for n, o in outputs.items()}

    def _bind(self, ctx, engine, spec, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        dev = torch.device(self.device)
        for n, t in inputs.items():
            ctx.set_input_shape(n, tuple(t.shape))
            ctx.set_tensor_address(n, _address(t, dev))
        outputs = {}
        for n in spec.output_names:
            shape = tuple(ctx.get_tensor_shape(n))
            outputs[n] = torch.empty(shape, dtype=_torch_dtype(engine.get_tensor_dtype(n)), device=dev)
            ctx.set_tensor_address(n, _address(outputs[n], dev))
        return outputs

    def _replay(self, e: _Engine, idx: int, module: str, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Run through the CUDA graph of this exact shape bucket, capturing it on first sight."""
        key = (idx, tuple((n, tuple(t.shape)) for n, t in inputs.items()))
        if key not in e.graphs:
            ctx = self._context(e.engine, idx)  # its own context: a graph bakes shapes and addresses in
            static_in = {n: t.clone() for n, t in inputs.items()}
            static_out = self._bind(ctx, e.engine, self.specs[module], static_in)
            with torch.cuda.stream(self._stream):
                if not ctx.execute_async_v3(self._stream.cuda_stream):  # the first enqueue after a shape change
                    raise RuntimeError(f"TensorRT execute_async_v3 failed for {module}")  # does one-time setup
            self._stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self._stream):
                ctx.execute_async_v3(self._stream.cuda_stream)
            e.graphs[key] = (ctx, graph, static_in, static_out)
        _, graph, static_in, static_out = e.graphs[key]
        with torch.cuda.stream(self._stream):
            for n, t in inputs.items():
                static_in[n].copy_(t, non_blocking=True)
            graph.replay()
            return {n: o.clone() for n, o in static_out.items()}  # the static buffers are reused by the next call


_EMPTY: dict[torch.device, Tensor] = {}


def _address(t: Tensor, dev: torch.device) -> int:
    """A device pointer for TensorRT; zero-size tensors (past_kv of an empty session) get a valid dummy one."""
    if t.numel():
        return t.data_ptr()
    if dev not in _EMPTY:
        _EMPTY[dev] = torch.empty(16, dtype=torch.uint8, device=dev)
    return _EMPTY[dev].data_ptr()
