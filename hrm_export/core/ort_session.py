"""The one place ONNX Runtime sessions are created: the project's session options on every session.

Options (docs/benchmarks.md has the measurements behind them):
* all graph optimizations, errors-only logging (ORT's warnings about unused initializers are noise here);
* intra-op threads: ORT's default (one per physical core) unless asked;
* spin-waiting OFF: idle intra-op threads otherwise busy-wait for the next task, and with as many threads as
  cores they compete with the thread doing the work (and with PyTorch's pool in the same process). On the 2-core
  CPU, ORT alone, a full day (H + L 390, batch 1) went 87.5 → 56.4 ms fp32 and 46.0 → 23.3 ms int8-cpu with it off;
* the CPU memory arena on, except where shapes range over orders of magnitude (verify's batch-128 points), where
  `memory_arena=False` returns memory after each run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hrm_export.core.errors import require

ORT_INSTALL = "pip install 'hrm-export[ort]' (onnxruntime-gpu for ort-cuda)"
NumpyInfer = Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]]  # (module, feeds) -> outputs


def onnxruntime():
    """The onnxruntime module, or MissingDependencyError with the install command."""
    return require("onnxruntime", ORT_INSTALL)


def session_options(intra_op_threads: int = 0, spin_wait: bool = False, memory_arena: bool = True,
                    optimized_path: Path | None = None):
    ort = onnxruntime()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = intra_op_threads  # 0: ORT's default, one per physical core
    so.enable_cpu_mem_arena = memory_arena
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
    so.log_severity_level = 3
    if optimized_path is not None:  # the ORT-optimized graph, written once when the session is created
        so.optimized_model_filepath = str(optimized_path)
    return so


def open_session(model: str | Path | bytes, providers: list | None = None, **options):
    """An InferenceSession on `model` (a path or serialized bytes), CPU unless `providers` says otherwise."""
    ort = onnxruntime()
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, session_options(**options), providers=providers or ["CPUExecutionProvider"])


def onnx_infer(paths: dict[str, str | Path], **options) -> NumpyInfer:
    """(module, numpy feeds) → numpy outputs over ONNX files on the CPU provider, sessions opened once.

    Feeds the graph does not take (h_tokens without cross-attention) are left out."""
    sessions = {m: open_session(p, **options) for m, p in paths.items()}

    def infer(module: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        s = sessions[module]
        names = [o.name for o in s.get_outputs()]
        wanted = {i.name for i in s.get_inputs()}
        return dict(zip(names, s.run(names, {k: v for k, v in feeds.items() if k in wanted}), strict=True))

    return infer
