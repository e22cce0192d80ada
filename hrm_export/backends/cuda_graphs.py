"""CUDA graphs for the PyTorch backend: one captured graph per static shape bucket (module + input shapes).

A streaming day on the GPU is ~390 tiny l_step launches whose cost is mostly kernel-launch overhead;
replaying a captured graph launches the whole step at once. Shapes are exact buckets — the causal mask
and the K/V length are part of the step, so a graph for past_minutes = P only serves P — captured on first
use and kept in an LRU of `max_graphs` (a day at batch 1 needs 390 l_step graphs, ~2 per minute bucket).

All graphs share one memory pool for what they compute, and one static buffer per input name for what they
read (static_buffers.py). That is safe here because every replay happens under one lock, copies its inputs in
right before it and clones its outputs right after: a later graph may reuse an earlier one's memory, never
while it is still to be read. So memory stays bounded by the largest shape, not by the number of buckets.
Only runs on a CUDA machine.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor

from hrm_export.backends.base import Backend
from hrm_export.backends.static_buffers import StaticBuffers


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: dict[str, Tensor]  # static buffers the graph reads
    outputs: dict[str, Tensor]  # static buffers the graph writes


class CudaGraphBackend(Backend):
    def __init__(self, inner: Backend, max_graphs: int = 1024, warmup_runs: int = 2):
        self.inner, self.max_graphs, self.warmup_runs = inner, max_graphs, warmup_runs
        self.name, self.precision, self.device = inner.name, inner.precision, inner.device
        self._graphs: OrderedDict[tuple, _Captured] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = None
        self._static = StaticBuffers(self.device)
        self.captures = 0

    def activate(self) -> None:
        self.inner.activate()
        self._pool = torch.cuda.graph_pool_handle()

    def deactivate(self) -> None:
        with self._lock:
            self._graphs.clear()
            self._static.clear()
        self.inner.deactivate()

    def describe(self) -> str:
        return self.inner.describe() + "+cuda-graphs"

    def stream_state(self, film: dict[str, Tensor]):
        """The static cache with one captured graph per push length (backends/stream.GraphedTorchStream): the graph
        of one minute serves the whole day, where `infer("l_step", …)` captures one per minute count."""
        from hrm_export.backends.stream import GraphedTorchStream
        from hrm_export.backends.torch_backend import TorchBackend

        if not isinstance(self.inner, TorchBackend):
            return None
        return GraphedTorchStream(self.inner.static_step_module(), self.inner.model.cfg, film, self.device,
                                  self.inner.dtype, pool=self._pool, lock=self._lock, warmup_runs=self.warmup_runs)

    @torch.inference_mode()
    def infer(self, module: str, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        key = (module, *sorted((n, tuple(t.shape), t.dtype) for n, t in feeds.items()))
        with self._lock:
            captured = self._graphs.get(key)
            if captured is None:
                captured = self._capture(module, feeds)
                self._graphs[key] = captured
                while len(self._graphs) > self.max_graphs:
                    self._graphs.popitem(last=False)
            else:
                self._graphs.move_to_end(key)
                for name, t in feeds.items():
                    captured.inputs[name].copy_(t, non_blocking=True)
            captured.graph.replay()
            return {name: out.clone() for name, out in captured.outputs.items()}

    def _capture(self, module: str, feeds: dict[str, Tensor]) -> _Captured:
        static = {name: self._static.view(name, tuple(t.shape), t.dtype).copy_(t) for name, t in feeds.items()}
        side = torch.cuda.Stream()  # warm-up runs (lazy init, autotuning) must happen off the capture stream
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup_runs):
                self.inner.infer(module, static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            outputs = self.inner.infer(module, static)
        self.captures += 1
        return _Captured(graph, static, outputs)
