"""HRMRuntime: what a trading system calls — start a day, push minutes, get decisions.

    rt = HRMRuntime.open("artifacts/", backend="auto")    # checks the manifest first (fail closed)
    s = rt.start_day(days)                                # (B, D, F_day): H-module once per day
    d = s.push(minute_tokens, start_minute=0)             # (B, 1, F_min): decision for minute 0
    tl = rt.run_day(days, minutes)                        # the whole session in one pass

One runtime holds one backend and is shared by many sessions (one per instrument or group), from many
threads. Tensors between the H and L calls stay on the backend's device. Calls larger than the profile's
batch are split into chunks of at most `limits.batch` instruments.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from pathlib import Path

import torch

from hrm_export.backends.base import Backend
from hrm_export.core.composed import composed
from hrm_export.core.decisions import Timeline
from hrm_export.core.errors import UserError
from hrm_export.core.specs import kv_shape
from hrm_export.runtime.cache import InferenceCache, observation_key
from hrm_export.runtime.decide import HEADS, decide, no_halts
from hrm_export.runtime.errors import RuntimeClosedError
from hrm_export.runtime.inputs import Limits, as_tokens, check_days, check_int, check_session_minutes, token_books
from hrm_export.runtime.memory import DEFAULT_LIMIT_BYTES, MemoryGuard
from hrm_export.runtime.monitor import PerformanceMonitor
from hrm_export.runtime.session import Session
from model_src.config import HRMConfig

log = logging.getLogger("hrm_export.runtime")
Heads = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # action_logits, quantity, q_values


class HRMRuntime:
    def __init__(
        self, backend: Backend, cfg: HRMConfig, limits: Limits, model_sha256: str, *,
        cache_size: int = 1024, cache_max_age_s: float | None = None,
        memory_limit_bytes: int = DEFAULT_LIMIT_BYTES, reason: str = "", warmup: bool = True,
        token_ranges: dict | None = None, static_cache: bool = True,
    ):
        self.backend, self.cfg, self.limits, self.model_sha256 = backend, cfg, limits, model_sha256
        # the valid range of each token feature (the bundle's token_ranges; model_src.features' by default)
        self.books = token_books(token_ranges or {}, cfg, "manifest.json")
        self._closed = False
        self.reason = reason  # why this backend (auto selection) — also logged
        self.cache = InferenceCache(cache_size, cache_max_age_s)
        self.monitor = PerformanceMonitor()
        self.memory = MemoryGuard(memory_limit_bytes)
        self.memory.cleanup_hooks.append(self.cache.clear)
        self.monitor.counters.update({
            "cache_hits_total": lambda: self.cache.hits, "cache_misses_total": lambda: self.cache.misses,
            "cache_entries": lambda: len(self.cache),
            "host_rss_bytes": lambda: self.memory.read().host_rss,
            "device_allocated_bytes": lambda: self.memory.read().device_allocated,
        })
        self._kv_dtype = torch.float32
        self.static_cache = static_cache  # False: stream through l_step's growing past_kv even with l_step_static
        # A TensorRT execution context must not run two enqueues at once; PyTorch inference and ONNX Runtime's
        # run() are safe to call from several threads, so only TensorRT calls are serialised.
        self._infer_lock = threading.Lock() if backend.name == "tensorrt" else contextlib.nullcontext()
        backend.activate()
        if warmup:
            self.warmup()
        log.info("HRM runtime on %s (%s); limits %s", backend.describe(), reason or "as asked", limits)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def open(cls, directory: str | Path, backend: str = "auto", precision: str = "fp32", **options) -> HRMRuntime:
        """Open an artifact directory written by `hrm-export export`, after checking it (see loader).
        `trust="key.pub"`: the bundle must be signed with that key (`hrm-export sign`), or it is refused."""
        from hrm_export.core.manifest import PRECISIONS
        from hrm_export.runtime.loader import open_backend

        if precision not in PRECISIONS:  # before the loader, whose answer would be about backends and installs
            raise UserError(f"unknown precision {precision!r}", hint=f"use one of {', '.join(PRECISIONS)}")
        opened = open_backend(Path(directory), backend, precision, **{
            k: options.pop(k) for k in ("profile", "device", "compile", "cuda_graphs", "trust") if k in options})
        return cls(opened.backend, opened.cfg, opened.limits, opened.model_sha256, reason=opened.reason,
                   token_ranges=opened.manifest.token_ranges, **options)

    @classmethod
    def from_model(
        cls, model, precision: str = "fp32", device: str = "cpu", compile: bool = False, cuda_graphs: bool = False,
        max_batch: int = 64, **options,
    ) -> HRMRuntime:
        """A runtime over an HRM instance (PyTorch backend); limits come from the model's config."""
        from hrm_export.backends.factory import torch_backend

        backend = torch_backend(model, precision, device, compile, cuda_graphs)
        cfg = model.cfg
        limits = Limits(max_batch, cfg.max_days, cfg.max_minutes, cfg.max_minutes, cfg.max_minutes)
        return cls(backend, cfg, limits, state_dict_sha256(model), reason="from_model", **options)

    def warmup(self) -> None:
        """Run every module once on one-step zeros: sessions/engines load now rather than on the first live
        minute, and an artifact that cannot run fails at open. Leaves the monitor and cache empty."""
        c = self.cfg
        h_tokens, gamma, beta = self._h_chunk(torch.zeros(1, 1, c.n_day_features))
        minutes = self._dev(torch.zeros(1, 1, c.n_minute_features))
        feeds = {"minutes": minutes, "film_gamma": gamma, "film_beta": beta}
        if c.cross_attention:
            feeds["h_tokens"] = h_tokens
        self._infer("l_module", feeds)
        kv = self.empty_kv(1)
        for _ in range(2):  # P = 0 and P = 1: an empty and a non-empty cache
            kv = self._infer("l_step", {**feeds, "past_kv": kv})["present_kv"]
        stream = self.stream_state(h_tokens, gamma, beta)
        if stream is not None:
            for t in range(2):
                stream.step(minutes, t)
        self.monitor.reset()

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def precision(self) -> str:
        return self.backend.precision

    def close(self) -> None:
        """Release the backend. A closed runtime refuses every call (RuntimeClosedError): it never re-opens its
        sessions behind the caller's back, unchecked; open the bundle again instead."""
        self._closed = True
        self.backend.deactivate()
        self.cache.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise RuntimeClosedError(f"{what} on a closed runtime ({self.backend.describe()})",
                                     hint="open the bundle again: HRMRuntime.open(DIR), which re-checks it")

    def __enter__(self) -> HRMRuntime:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- sessions ----------------------------------------------------------------------------------
    def session(self, symbols: list[str] | None = None) -> Session:
        """An empty streaming session; call start_day(days) before pushing minutes."""
        return Session(self, symbols)

    def start_day(self, days, day: object = None, symbols: list[str] | None = None) -> Session:
        """A new session started on `days` (B, D, F_day). `day` (e.g. the date) scopes the inference cache."""
        return Session(self, symbols).start_day(days, day=day)

    def run_day(self, days, minutes, day: object = None, session_minutes: int | None = None,
                chunk_minutes: int | None = None) -> Timeline:
        """The whole session in one pass: days (B, D, F_day), minutes (B, T, F_min) → decisions (B, T).

        The minutes are the session: its close is minute T - 1, where an instrument that has not halted halts
        (model_src.decisions). Pass `session_minutes` when the minutes stop before the close. `chunk_minutes`
        (e.g. 64): run the L-module in chunks of that many minutes through the static cache (l_step_static), whose
        attention and MLP intermediates are those of a chunk, not of the whole day (the plan's mini-batches for
        CPUs and small GPUs; docs/runtime.md); the one-pass l_module where the backend has no static step."""
        self._check_open("run_day")
        d = as_tokens(days, "days", self.cfg.n_day_features, book=self.books.get("days"))
        m = as_tokens(minutes, "minutes", self.cfg.n_minute_features, batch=d.shape[0], book=self.books.get("minutes"))
        check_days(d, self.limits)
        check_session_minutes(m, self.limits)
        if session_minutes is None:
            session_minutes = m.shape[1]
        else:
            session_minutes = check_int(session_minutes, "run_day: session_minutes", m.shape[1], self.cfg.max_minutes,
                                        hint="pass the session's length in minutes, at least the minutes given and at "
                                        f"most the model's {self.cfg.max_minutes}")
        if day is not None:
            self.cache.set_day(day)
        key = self._key("run_day", d, m)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        with self.monitor.measure("run_day"):
            parts = []
            for lo in range(0, d.shape[0], self.limits.batch):
                hi = lo + self.limits.batch
                parts.append(self._day_chunk(self._dev(d[lo:hi]), self._dev(m[lo:hi]), chunk_minutes))
            heads = tuple(torch.cat(p) for p in zip(*parts, strict=True))
            result = decide("l_module", heads, 0, no_halts(d.shape[0]), session_minutes)
        self.cache.put(key, result)
        return result

    # -- the steps sessions are made of ------------------------------------------------------------
    def h(self, days, day: object = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """H-module over days (B, D, F_day) → h_tokens (B, D, Ch), γ (B, Cl), β (B, Cl) on the device."""
        self._check_open("start_day")
        d = as_tokens(days, "days", self.cfg.n_day_features, book=self.books.get("days"))
        check_days(d, self.limits)
        if day is not None:
            self.cache.set_day(day)
        key = self._key("h_module", d)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        with self.monitor.measure("start_day"):
            chunks = [self._h_chunk(d[lo:lo + self.limits.batch]) for lo in range(0, d.shape[0], self.limits.batch)]
            result = tuple(torch.cat(parts) if len(chunks) > 1 else parts[0] for parts in zip(*chunks, strict=True))
        self.cache.put(key, result)  # never edited in place downstream: film() and attention only read them
        return result

    def empty_kv(self, batch: int) -> torch.Tensor:
        c = self.cfg
        return torch.zeros(kv_shape(c, batch, 0), device=self.backend.device,
                           dtype=self._kv_dtype)  # (L, 2, B, H, 0, hd)

    def l_step(self, x: torch.Tensor, h_tokens, gamma, beta, past_kv) -> tuple[Heads, torch.Tensor]:
        """New minutes x (B, T, F_min) after past_kv (L, 2, B, H, P, hd) → heads (B, T, ·), present_kv."""
        self._check_open("push")
        x = self._dev(x)
        outs, kvs = [], []
        with self.monitor.measure("push"):
            for lo in range(0, x.shape[0], self.limits.batch):
                hi = lo + self.limits.batch
                kv, heads = past_kv[:, :, lo:hi], []
                for t0 in range(0, x.shape[1], self.limits.new_minutes):  # a long push: several l_step calls
                    feeds = {"minutes": x[lo:hi, t0:t0 + self.limits.new_minutes], "film_gamma": gamma[lo:hi],
                             "film_beta": beta[lo:hi], "past_kv": kv}
                    if self.cfg.cross_attention:
                        feeds["h_tokens"] = h_tokens[lo:hi]
                    out = self._infer("l_step", feeds)
                    kv = out["present_kv"]
                    heads.append((out["action_logits"], out["quantity"], out["q_values"]))
                outs.append(tuple(torch.cat(parts, dim=1) for parts in zip(*heads, strict=True)))
                kvs.append(kv)
        heads = tuple(torch.cat(parts, dim=0) for parts in zip(*outs, strict=True))
        return heads, kvs[0] if len(kvs) == 1 else torch.cat(kvs, dim=2)

    def stream_state(self, h_tokens, gamma, beta, reuse=None):
        """The fixed-capacity K/V cache of a new day on this backend (backends/stream.py), or None where the backend
        has no l_step_static (or the day has more instruments than one call takes): pushes then go through l_step.
        `reuse`: the session's state of the previous day, reset and kept when it fits (allocated once per session)."""
        self._check_open("start_day")
        if not self.static_cache or gamma.shape[0] > self.limits.batch:
            return None
        film = {"film_gamma": gamma, "film_beta": beta}
        if self.cfg.cross_attention:
            film["h_tokens"] = h_tokens
        same_days = not self.cfg.cross_attention or reuse is None or reuse.film_shape("h_tokens") == h_tokens.shape
        if reuse is not None and reuse.batch == gamma.shape[0] and same_days:
            return reuse.reset(film)
        return self.backend.stream_state(film)

    def static_step(self, stream, x: torch.Tensor, position: int) -> Heads:
        """New minutes x (B, T, F_min) at session minute `position` through the session's static cache: calls of at
        most `limits.new_minutes` minutes, each writing its keys/values into their slots (masked until the session
        advances past them)."""
        self._check_open("push")
        parts = []
        with self.monitor.measure("push"):
            for t0 in range(0, x.shape[1], self.limits.new_minutes):
                chunk = x[:, t0:t0 + self.limits.new_minutes]
                with self._infer_lock, self.monitor.measure("l_step"):
                    parts.append(stream.step(chunk, position + t0))
                self.memory.tick()
        return parts[0] if len(parts) == 1 else tuple(torch.cat(p, dim=1) for p in zip(*parts, strict=True))

    def _day_chunk(self, d: torch.Tensor, m: torch.Tensor, chunk_minutes: int | None) -> Heads:
        """H then L over one batch chunk: the one-pass l_module, or minute chunks through the static cache."""
        if chunk_minutes:
            chunk_minutes = check_int(chunk_minutes, "run_day: chunk_minutes", 1, self.limits.new_minutes,
                                      hint=f"pass at most the profile's new_minutes ({self.limits.new_minutes})")
            h_tokens, gamma, beta = self._h_chunk(d)
            stream = self.stream_state(h_tokens, gamma, beta)
            if stream is not None:
                parts = []
                for t0 in range(0, m.shape[1], chunk_minutes):
                    with self.monitor.measure("l_step"):
                        parts.append(stream.step(m[:, t0:t0 + chunk_minutes], t0))
                return tuple(torch.cat(p, dim=1).cpu() for p in zip(*parts, strict=True))
        out = composed(self._infer, d, m, self.cfg.cross_attention)
        return tuple(out[k].cpu() for k in HEADS)

    # -- internals ---------------------------------------------------------------------------------
    def _h_chunk(self, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self._infer("h_module", {"days": self._dev(d)})
        return out["h_tokens"], out["film_gamma"], out["film_beta"]

    def _infer(self, module: str, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self._check_open(module)
        with self._infer_lock, self.monitor.measure(module):
            out = self.backend.infer(module, feeds)
        self.memory.tick()
        return out

    def _dev(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.backend.device, non_blocking=True)

    def _key(self, what: str, *tensors: torch.Tensor) -> str:
        return what + ":" + observation_key(*tensors, model_sha256=self.model_sha256, backend=self.backend.name,
                                            precision=self.backend.precision)


def state_dict_sha256(model: torch.nn.Module) -> str:
    """sha256 over parameter names, dtypes, shapes and bytes: the identity of an in-memory model."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        a = t.detach().cpu().contiguous()
        h.update(f"{name}|{a.dtype}|{tuple(a.shape)}|".encode())
        h.update(a.view(torch.uint8).numpy().tobytes() if a.numel() else b"")
    return h.hexdigest()
