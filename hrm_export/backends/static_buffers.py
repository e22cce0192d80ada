"""Static buffers for captured CUDA graphs, shared by every graph of a backend.

A captured graph reads its inputs from (and, for TensorRT, writes its outputs to) fixed addresses, so each
replay first copies the caller's tensors in, and clones the outputs out. One buffer per graph would cost, for a
streaming day at batch 1, the sum of 390 growing K/V caches (≈1.7 GB; ×B at batch B). Instead every graph uses
the start of one buffer per name, grown by doubling when a larger shape comes: graphs captured on an outgrown
buffer keep it alive, so all of them together stay under four times the largest tensor. Sharing is safe because
a backend replays its graphs one at a time, in stream order, copying inputs in right before a replay and outputs
out right after it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class StaticBuffers:
    def __init__(self, device: str | torch.device):
        self.device = torch.device(device)
        self._buffers: dict[tuple[str, torch.dtype], Tensor] = {}  # flat, the largest so far per (name, dtype)

    def view(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """A `shape` view on the start of the shared buffer for `name` (grown if too small)."""
        n = math.prod(shape)
        key = (name, dtype)
        buf = self._buffers.get(key)
        if buf is None or buf.numel() < n:
            size = max(n, 2 * buf.numel()) if buf is not None else n
            buf = self._buffers[key] = torch.empty(max(size, 1), dtype=dtype, device=self.device)
        return buf[:n].view(shape)

    def clear(self) -> None:
        self._buffers.clear()

    @property
    def nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self._buffers.values())
