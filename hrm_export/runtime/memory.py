"""Memory guard: host RSS (psutil) and CUDA memory (torch.cuda.memory_allocated) against a limit.

Over the limit it logs a warning naming both figures and runs the cleanup hooks (the runtime registers
clearing its inference cache; the guard itself runs gc and, on CUDA, empty_cache). It never raises: a
trading process under memory pressure should shed caches, not stop deciding.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import torch

log = logging.getLogger("hrm_export.runtime")
DEFAULT_LIMIT_BYTES = 4 * 1024**3  # 4 GiB, the plan's per-process budget


@dataclass(frozen=True)
class MemoryReading:
    host_rss: int  # bytes
    device_allocated: int  # bytes, 0 without CUDA
    limit: int
    over: bool  # either figure above the limit

    def as_dict(self) -> dict:
        return {"host_rss_mb": self.host_rss / 2**20, "device_allocated_mb": self.device_allocated / 2**20,
                "limit_mb": self.limit / 2**20, "over": self.over}


class MemoryGuard:
    def __init__(self, limit_bytes: int = DEFAULT_LIMIT_BYTES, check_every: int = 256):
        self.limit, self.check_every = int(limit_bytes), check_every
        self.cleanup_hooks: list[Callable[[], None]] = []
        self.warnings = 0
        self.last: MemoryReading | None = None
        self._calls = 0
        self._lock = threading.Lock()
        self._process = psutil.Process()

    def read(self) -> MemoryReading:
        rss = self._process.memory_info().rss
        dev = torch.cuda.memory_allocated() if torch.cuda.is_available() and torch.cuda.is_initialized() else 0
        return MemoryReading(rss, dev, self.limit, rss > self.limit or dev > self.limit)

    def check(self) -> MemoryReading:
        """Read memory now; over the limit: warn and clean up, then read again."""
        reading = self.read()
        if reading.over:
            self.warnings += 1
            log.warning(
                "memory over limit: host RSS %.0f MB, CUDA allocated %.0f MB, limit %.0f MB; clearing caches",
                reading.host_rss / 2**20, reading.device_allocated / 2**20, self.limit / 2**20,
            )
            self.cleanup()
            reading = self.read()
        self.last = reading
        return reading

    def tick(self) -> None:
        """Called on every inference; reads memory every `check_every` calls (psutil costs ~20 µs)."""
        with self._lock:
            self._calls += 1
            due = self._calls % self.check_every == 0
        if due:
            self.check()

    def cleanup(self) -> None:
        for hook in self.cleanup_hooks:
            hook()
        gc.collect()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
