"""A bounded LRU cache of inference results, keyed by what determines them.

The key is a sha256 over the observation's bytes (dtype, shape and data of every input tensor) plus the
model's checkpoint sha256, the backend and the precision: the same bars through another model, engine
or precision are another result. An entry is valid while
  - it is younger than `max_age_s` (None: no age limit), and
  - it belongs to the current trading day: `set_day(day)` drops every entry made on another day, so a
    replay of yesterday's tokens can never answer for today.
Hits, misses, expiries and evictions are counted for the performance monitor.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def observation_key(*tensors: torch.Tensor | np.ndarray, model_sha256: str, backend: str, precision: str) -> str:
    """sha256 of the tensors' dtypes, shapes and bytes plus the model identity."""
    h = hashlib.sha256()
    h.update(f"{model_sha256}|{backend}|{precision}|{len(tensors)}".encode())
    for t in tensors:
        a = t.detach().cpu().contiguous().numpy() if isinstance(t, torch.Tensor) else np.ascontiguousarray(t)
        h.update(f"|{a.dtype.str}{a.shape}|".encode())
        h.update(a.tobytes())  # tobytes of a contiguous array: the exact bits (NaN payloads, -0.0 included)
    return h.hexdigest()


@dataclass
class _Entry:
    value: Any
    created: float
    day: object


class InferenceCache:
    def __init__(self, maxsize: int = 1024, max_age_s: float | None = None, clock=time.monotonic):
        if maxsize < 1:
            raise ValueError(f"cache maxsize must be >= 1, got {maxsize}")
        self.maxsize, self.max_age_s, self._clock = maxsize, max_age_s, clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.day: object = None
        self.hits = self.misses = self.expired = self.evicted = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not self._valid(entry):
                del self._entries[key]
                self.expired += 1
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.value

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._entries[key] = _Entry(value, self._clock(), self.day)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
                self.evicted += 1

    def set_day(self, day: object) -> None:
        """Enter trading day `day` (a date, a string — any equality-comparable label); drops other days' entries."""
        with self._lock:
            if day == self.day:
                return
            self.day = day
            stale = [k for k, e in self._entries.items() if e.day != day]
            for k in stale:
                del self._entries[k]
            self.expired += len(stale)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _valid(self, entry: _Entry) -> bool:
        if entry.day != self.day:
            return False
        return self.max_age_s is None or self._clock() - entry.created <= self.max_age_s

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, int | float]:
        with self._lock:
            lookups = self.hits + self.misses
            return {"size": len(self._entries), "maxsize": self.maxsize, "hits": self.hits, "misses": self.misses,
                    "expired": self.expired, "evicted": self.evicted,
                    "hit_rate": self.hits / lookups if lookups else 0.0}
