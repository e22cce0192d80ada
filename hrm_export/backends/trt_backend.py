"""TensorRT backend: the bundle's plans on one GPU, torch CUDA tensors in and out.

Opening (activate): the TensorRT library is the full one or the lean runtime (`tensorrt.library`); a CUDA device
must exist before any TensorRT runtime is made; then per module the plan gets ONE compatibility check — the
header and the manifest's record against this machine (`tensorrt.compat`), as advice — and is deserialized,
TensorRT's verdict being final and its refusal reported in one line with that advice beside it.

Running: each module has one execution context per optimization profile, all sharing one activation buffer
(contexts made USER_MANAGED). A call picks the profile that admits its shapes (nearest opt shape; memoised per
shape), sets the input shapes, binds torch tensors by `data_ptr()` and enqueues with `execute_async_v3` on the
backend's stream, ordered against torch's current stream both ways (no host sync). Everything a call needs
besides its outputs is made at activation; the outputs are new tensors from torch's caching allocator, because
the caller keeps them (the present K/V becomes the next call's past K/V).

With `cuda_graphs=True` each input-shape bucket gets a context and a captured graph, kept in an LRU of
`max_graphs` (a streaming day at one batch size has 390 l_step buckets); the graphs read their inputs from
shared static buffers (static_buffers.py) and all contexts share the activation buffer, so memory does not
grow with the number of buckets.

Why not Polygraphy's TrtRunner (docs/tensorrt.md has the detail): it imports only the full `tensorrt` (no lean
runtime), synchronizes the host after every call, cannot be captured in a CUDA graph (output allocators and a
host sync inside infer), and returns outputs that alias its own buffers until the next call.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from hrm_export.backends.base import Backend
from hrm_export.backends.static_buffers import StaticBuffers
from hrm_export.core.errors import UserError
from hrm_export.core.manifest import Artifact, Manifest
from hrm_export.core.profiles import Profile, check_shapes
from hrm_export.core.specs import module_specs
from hrm_export.tensorrt.compat import rebuild_command, record_problem
from hrm_export.tensorrt.library import Engine, deserialize, load_library, require_cuda_device
from hrm_export.tensorrt.plan_header import PlanError
from hrm_export.tensorrt.shapes import ProfileShapes, ShapeRange, select_profile

log = logging.getLogger("hrm_export.tensorrt")
Shapes = tuple[tuple[int, ...], ...]  # the input shapes of one call, in the spec's input order
MAX_MEMO = 4096  # profile choices remembered per module (a day's shapes are a few hundred)

_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT8": torch.int8,
           "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool}  # trt.DataType member name -> torch


def _torch_dtype(dtype) -> torch.dtype:
    name = getattr(dtype, "name", str(dtype))
    if name not in _DTYPES:
        raise UserError(f"TensorRT I/O dtype {name} has no torch equivalent here", hint="re-export with fp32 I/O")
    return _DTYPES[name]


@dataclass
class _Graph:
    context: object
    graph: torch.cuda.CUDAGraph
    inputs: list[Tensor]  # views on the shared static buffers, in input order
    outputs: dict[str, Tensor]


@dataclass
class _Module:
    """One plan, ready to run: everything a call needs besides its outputs."""

    plan: Engine
    names: list[str]  # optimization profile names, in the plan's order
    ranges: list[ProfileShapes]
    profiles: list[Profile]  # the bundle's profiles, for the one-line refusal of a shape outside them all
    inputs: list[tuple[str, torch.dtype]]
    outputs: list[tuple[str, torch.dtype]]
    scratch: Tensor  # activation memory shared by every context of this plan
    contexts: list = field(default_factory=list)  # one per optimization profile
    choice: dict[Shapes, int] = field(default_factory=dict)  # memoised profile per input shapes
    graphs: OrderedDict[tuple, _Graph] = field(default_factory=OrderedDict)  # LRU


class TrtBackend(Backend):
    name = "tensorrt"

    def __init__(self, bundle: str | Path | Manifest, precision: str = "fp32", device: str = "cuda",
                 cuda_graphs: bool = False, check_hashes: bool = True, max_graphs: int = 512):
        self.manifest = bundle if isinstance(bundle, Manifest) else Manifest.load(bundle)
        self.precision, self.device, self.cuda_graphs, self.check_hashes = precision, device, cuda_graphs, check_hashes
        self.max_graphs = max_graphs
        self.specs = module_specs(self.manifest.config)
        self.library = None  # the TrtLibrary that opened the plans
        self.captures = 0
        self._modules: dict[str, _Module] = {}
        self._static: StaticBuffers | None = None  # made at activation, on the device

    def describe(self) -> str:
        lib = f" via {self.library.name}" if self.library else ""
        return f"{self.name}/{self.precision}@{self.device}{lib}" + ("+cuda-graphs" if self.cuda_graphs else "")

    # -- lifecycle -------------------------------------------------------------------------------------------
    def activate(self) -> None:
        self.library = load_library()  # the full TensorRT, else the lean runtime; one line if neither imports
        require_cuda_device(self.device)  # before any trt.Runtime: without a device its first use crashes
        dev = torch.device(self.device)
        self._stream = torch.cuda.Stream(dev)
        self._static = StaticBuffers(dev)
        self._empty = torch.empty(16, dtype=torch.uint8, device=dev)  # an address for zero-size tensors
        if self.check_hashes:
            self.manifest.verify_hashes()  # also what makes a version-compatible plan's host code trusted
        running_cc = torch.cuda.get_device_capability(dev)
        with torch.cuda.device(dev):
            for module in self.specs:
                artifact = self.manifest.find(module, self.precision, "trt-plan")
                self._modules[module] = self._open(artifact, module, running_cc)

    def _open(self, artifact: Artifact, module: str, running_cc) -> _Module:
        path, record = self.manifest.artifact_path(artifact), artifact.extra
        rebuild = rebuild_command(self.manifest.dir, self.precision)
        lib = self.library
        advice = record_problem(path, record, lib.version, running_cc, lean=lib.lean)  # the one check, advisory
        plan = deserialize(lib, path, host_code_allowed=bool(record.get("version_compatible")), advice=advice,
                           hint=f"rebuild it here: {rebuild}")
        if advice:
            log.warning("%s deserialized %s although %s", lib.describe(), path, advice)
        engine = plan.engine
        names = list(artifact.profiles)
        if not isinstance(record.get("profiles"), dict) or any(n not in record["profiles"] for n in names):
            raise PlanError(f"{path}: the manifest records no shapes for the plan's profiles {names}",
                            hint=f"rebuild it: {rebuild}")
        ranges = [{i: ShapeRange(tuple(r["min"]), tuple(r["opt"]), tuple(r["max"]))
                   for i, r in record["profiles"][n].items()} for n in names]
        if engine.num_optimization_profiles != len(ranges):
            raise PlanError(f"{path}: plan has {engine.num_optimization_profiles} optimization profiles, the "
                            f"manifest lists {len(ranges)}", hint=f"rebuild it: {rebuild}")
        spec = self.specs[module]
        m = _Module(plan, names, ranges,
                    profiles=[Profile.from_dict(self.manifest.profiles[n]) for n in names if n in
                              self.manifest.profiles],
                    inputs=[(n, _torch_dtype(engine.get_tensor_dtype(n))) for n in spec.input_names],
                    outputs=[(n, _torch_dtype(engine.get_tensor_dtype(n))) for n in spec.output_names],
                    scratch=torch.empty(max(engine.device_memory_size_v2, 1), dtype=torch.uint8, device=self.device))
        m.contexts = [self._context(m, i) for i in range(len(ranges))]
        return m

    def _context(self, m: _Module, profile: int):
        trt = self.library.module
        ctx = m.plan.engine.create_execution_context(trt.ExecutionContextAllocationStrategy.USER_MANAGED)
        if ctx is None:
            raise UserError("TensorRT could not create an execution context (out of GPU memory?)",
                            hint="free GPU memory, or build with fewer/smaller profiles")
        ctx.set_device_memory(m.scratch.data_ptr(), m.scratch.numel())
        ctx.set_optimization_profile_async(profile, self._stream.cuda_stream)
        return ctx

    def deactivate(self) -> None:
        if self._static is not None:
            self._stream.synchronize()  # nothing enqueued may still use what is freed below
        self._modules = {}  # graphs, contexts, then engines and their runtimes go, in that order
        if self._static is not None:
            self._static.clear()
            torch.cuda.empty_cache()

    # -- inference -------------------------------------------------------------------------------------------
    def infer(self, module: str, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self._modules:
            self.activate()
        m = self._modules[module]
        dev = self._static.device
        inputs = [feeds[n].to(dev, dt).contiguous() for n, dt in m.inputs]
        shapes = tuple(tuple(t.shape) for t in inputs)
        idx = m.choice.get(shapes)
        if idx is None:
            idx = self._choose(m, module, shapes)
        current = torch.cuda.current_stream(dev)
        self._stream.wait_stream(current)  # feeds were written on torch's stream
        if self.cuda_graphs:
            outputs = self._replay(m, idx, shapes, inputs)  # the graph's own buffers: copied out below
        else:
            ctx = m.contexts[idx]
            outputs = self._bind(ctx, m, inputs)
            if not ctx.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError(f"TensorRT execute_async_v3 failed for {module} (see the TensorRT log)")
        for t in inputs:
            t.record_stream(self._stream)  # keep the feed memory alive until the plan has read it
        current.wait_stream(self._stream)  # results are ready for whatever torch does next
        if self.cuda_graphs:  # copied on torch's stream, which the next replay waits for before it overwrites them
            return {n: o.clone() if o.dtype == torch.float32 else o.float() for n, o in outputs.items()}
        return {n: o if o.dtype == torch.float32 else o.float() for n, o in outputs.items()}

    def _choose(self, m: _Module, module: str, shapes: Shapes) -> int:
        named = {n: s for (n, _), s in zip(m.inputs, shapes, strict=True)}
        if m.profiles:
            check_shapes(m.profiles, module, named, self.manifest.config)  # names the profile that would admit it
        idx = select_profile(m.ranges, named, m.names, f"{module}/{self.precision} plan")
        if len(m.choice) >= MAX_MEMO:
            m.choice.clear()
        m.choice[shapes] = idx
        return idx

    def _bind(self, ctx, m: _Module, inputs: list[Tensor], static: bool = False) -> dict[str, Tensor]:
        """Set shapes and addresses; the outputs are new tensors, or for a graph views on shared buffers."""
        for (n, _), t in zip(m.inputs, inputs, strict=True):
            ctx.set_input_shape(n, tuple(t.shape))
            ctx.set_tensor_address(n, t.data_ptr() if t.numel() else self._empty.data_ptr())
        outputs = {}
        for n, dt in m.outputs:
            shape = tuple(ctx.get_tensor_shape(n))
            outputs[n] = (self._static.view(f"out:{n}", shape, dt) if static else
                          torch.empty(shape, dtype=dt, device=self._static.device))
            ctx.set_tensor_address(n, outputs[n].data_ptr() if outputs[n].numel() else self._empty.data_ptr())
        return outputs

    def _replay(self, m: _Module, idx: int, shapes: Shapes, inputs: list[Tensor]) -> dict[str, Tensor]:
        """Run through the CUDA graph of this exact shape bucket, capturing it on first sight."""
        key = (idx, shapes)
        g = m.graphs.get(key)
        if g is None:
            g = m.graphs[key] = self._capture(m, idx, inputs)
            while len(m.graphs) > self.max_graphs:
                m.graphs.popitem(last=False)  # its context and graph go; the shared buffers stay
        else:
            m.graphs.move_to_end(key)
        with torch.cuda.stream(self._stream):
            for buf, t in zip(g.inputs, inputs, strict=True):
                buf.copy_(t, non_blocking=True)
            g.graph.replay()
        return g.outputs

    def _capture(self, m: _Module, idx: int, inputs: list[Tensor]) -> _Graph:
        ctx = self._context(m, idx)  # its own context: a graph bakes shapes and addresses in
        static_in = [self._static.view(n, tuple(t.shape), t.dtype) for (n, _), t in zip(m.inputs, inputs,
                                                                                        strict=True)]
        with torch.cuda.stream(self._stream):
            for buf, t in zip(static_in, inputs, strict=True):
                buf.copy_(t)
            static_out = self._bind(ctx, m, static_in, static=True)
            # The first enqueue after a shape change does one-time setup, which must not be captured.
            if not ctx.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed before capture (see the TensorRT log)")
        self._stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self._stream):
            ctx.execute_async_v3(self._stream.cuda_stream)
        self.captures += 1
        return _Graph(ctx, graph, static_in, static_out)
