"""Memory: the plan's table (parameters and bytes per part per precision), artifact sizes on disk, and peaks
measured while the suite runs (host RSS sampled in a thread, device memory from the CUDA allocator)."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil
import torch

from hrm_export.core.manifest import Manifest
from hrm_export.core.model_card import BYTES_PER_PARAM, PART_NAMES
from model_src.model import HRM, parameter_table

MB = 1e6


def parameter_bytes(model: HRM) -> list[dict]:
    """One row per part (h, l, conditioning, total): params and MB at fp32 / bf16 / int8 (1 byte per weight,
    scales not counted — they are per-channel vectors, < 1 %)."""
    rows = []
    for part, n in parameter_table(model).items():
        rows.append({"part": part, "name": PART_NAMES[part], "params": n,
                     "mb": {p: round(n * b / MB, 2) for p, b in BYTES_PER_PARAM.items()}})
    return rows


def artifact_sizes(manifest: Manifest) -> list[dict]:
    """Bytes on disk per artifact, ONNX external-data files included (they sit beside the .onnx)."""
    rows = []
    for a in manifest.artifacts:
        path = manifest.artifact_path(a)
        if not path.is_file():  # listed but not here (a manifest carried without its files): say so, not 0 MB
            rows.append({"module": a.module, "precision": a.precision, "format": a.format, "path": a.path,
                         "mb": None})
            continue
        size = path.stat().st_size + sum(ext.stat().st_size for ext in _external_files(a, path))
        rows.append({"module": a.module, "precision": a.precision, "format": a.format, "path": a.path,
                     "mb": round(size / MB, 2)})
    return rows


def _external_files(artifact, path: Path) -> list[Path]:
    names = artifact.extra.get("external_data") or []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list):  # a flag (True/False) rather than names: look for the conventional sidecar
        names = [path.name + ".data"] if names else []
    return [p for p in (path.parent / n for n in names) if p.is_file()]


class PeakRSS:
    """Peak resident set size of this process while the block runs, sampled every `interval_s`.

    RSS is process-wide: it includes the reference model and every earlier backend still held, so a
    backend's figure is an upper bound on what it needs alone."""

    def __init__(self, interval_s: float = 0.01):
        self.interval_s, self.peak = interval_s, 0
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRSS:
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @staticmethod
    def current_mb() -> float:
        return psutil.Process().memory_info().rss / MB

    @property
    def peak_mb(self) -> float:
        return round(self.peak / MB, 1)


def reset_device_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def device_peak_mb(device: str) -> float | None:
    """Peak CUDA memory allocated through PyTorch since the last reset (None on the host). Engines that allocate
    outside PyTorch's allocator (ONNX Runtime CUDA, TensorRT) are not seen here; the report says so."""
    if not device.startswith("cuda"):
        return None
    torch.cuda.synchronize(device)
    return round(torch.cuda.max_memory_allocated(device) / MB, 1)
