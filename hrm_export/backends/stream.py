"""One session's fixed-capacity K/V cache on a backend, and the l_step_static call over it.

    state = backend.stream_state(film)        # at start_day: the (L, 2, B, H, max_minutes, hd) cache, allocated once
    heads = state.step(minutes, position)     # new minutes (B, T, F_min) at minute `position`: their k/v are written
                                              # into slots position..position+T-1, nothing of the past is copied
    position += T                             # the caller advances only after it accepted the heads

Slots at or after `position` are masked out of the attention's scores. A step whose heads the caller refuses (a
non-finite output, say) must still be forgotten (`forget(position)`: its slots back to zeros), because a masked
slot's probability is 0 and 0 × NaN is NaN in the probabilities × values product.

ONNX Runtime (CPU): the cache is one numpy array; each of its (layer, k|v) slices becomes an OrtValue that shares
its memory (`OrtValue.ortvalue_from_numpy` wraps CPU memory, no copy; tests/test_stream.py writes into the array
and reads the change through ORT), bound once with IOBinding together with γ, β and the position; a step binds
only the new minutes. PyTorch: one cache tensor on the backend's device, passed as views.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import Tensor

from hrm_export.core.specs import static_cache_names, static_cache_shape

Heads = tuple[Tensor, Tensor, Tensor]  # action_logits, quantity, q_values
HEAD_NAMES = ("action_logits", "quantity", "q_values")


class TorchStream:
    """The static cache as one tensor on the device; `step_fn` is the l_step_static module (or its CUDA graph)."""

    def __init__(self, step_fn, cfg, film: dict[str, Tensor], device, dtype=torch.float32):
        self.cfg, self.step_fn, self.film = cfg, step_fn, film
        batch = film["film_gamma"].shape[0]
        self.cache = torch.zeros(static_cache_shape(cfg, batch), device=device, dtype=dtype)
        self.views = [self.cache[i, j] for i in range(cfg.l_layers) for j in range(2)]  # (B, H, M, hd) each
        self.position = torch.zeros(1, dtype=torch.int64, device=device)
        self.batch = batch

    def film_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.film[name].shape)

    def reset(self, film: dict[str, Tensor]) -> TorchStream:
        """A new day on the same cache: the day's γ, β (h_tokens), the slots back to zeros; nothing allocated."""
        self.film = film
        self.cache.zero_()
        return self

    @torch.inference_mode()
    def step(self, minutes: Tensor, position: int) -> Heads:
        T = minutes.shape[1]
        self.position.fill_(position)
        f = self.film
        a, q, qv, new_kv = self.step_fn(minutes.to(self.cache.device), f["film_gamma"], f["film_beta"], self.position,
                                        self.views, f.get("h_tokens"))
        self.cache[:, :, :, :, position:position + T] = new_kv.to(self.cache.dtype)
        return a.float(), q.float(), qv.float()

    def forget(self, position: int) -> None:
        """Slots from `position` on back to zeros (after a refused or failed step)."""
        self.cache[:, :, :, :, position:] = 0


class OrtStream:
    """The static cache as one numpy array shared with ONNX Runtime through OrtValues bound once."""

    def __init__(self, session, cfg, film: dict[str, Tensor]):
        from onnxruntime import OrtValue

        self.cfg, self.session = cfg, session
        batch = film["film_gamma"].shape[0]
        self.cache = np.zeros(static_cache_shape(cfg, batch), dtype=np.float32)  # (L, 2, B, H, M, hd)
        self.position = np.zeros(1, dtype=np.int64)
        self.batch = batch
        wanted = {i.name for i in session.get_inputs()}
        self._keep = {"position": self.position}  # every array an OrtValue points into stays alive with the state
        for k, v in film.items():
            if k in wanted:
                self._keep[k] = np.ascontiguousarray(v.detach().cpu().float().numpy())
        for idx, name in enumerate(static_cache_names(cfg)):
            self._keep[name] = self.cache[idx // 2, idx % 2]  # a C-contiguous view: no copy
        self._values = {k: OrtValue.ortvalue_from_numpy(a) for k, a in self._keep.items()}
        self.binding = session.io_binding()
        for k, v in self._values.items():
            self.binding.bind_ortvalue_input(k, v)
        self._outputs: dict[int, dict[str, np.ndarray]] = {}

    def film_shape(self, name: str) -> tuple[int, ...]:
        return self._keep[name].shape

    def reset(self, film: dict[str, Tensor]) -> OrtStream:
        """A new day on the same cache and bindings: the day's γ, β (h_tokens) copied into the bound arrays, the slots
        back to zeros; nothing allocated, nothing re-bound (h_tokens of another look-back length: a new state)."""
        for k, v in film.items():
            if k in self._keep:
                self._keep[k][...] = v.detach().cpu().float().numpy()
        self.cache.fill(0.0)
        return self

    def _bind_outputs(self, batch: int, T: int) -> dict[str, np.ndarray]:
        """Output arrays for T new minutes, allocated once per T and bound (ORT writes into them)."""
        if T not in self._outputs:
            from onnxruntime import OrtValue

            c = self.cfg
            outs = {"action_logits": np.empty((batch, T, c.n_actions), np.float32),
                    "quantity": np.empty((batch, T, 1), np.float32), "q_values": np.empty((batch, T, 2), np.float32),
                    "new_kv": np.empty((c.l_layers, 2, batch, c.l_heads, T, c.l_head_dim), np.float32)}
            self._outputs[T] = outs
            self._keep[f"out{T}"] = [OrtValue.ortvalue_from_numpy(a) for a in outs.values()]
        outs = self._outputs[T]
        for name, value in zip(outs, self._keep[f"out{T}"], strict=True):
            self.binding.bind_ortvalue_output(name, value)
        return outs

    def step(self, minutes: Tensor, position: int) -> Heads:
        x = np.ascontiguousarray(minutes.detach().cpu().numpy(), dtype=np.float32)
        B, T = x.shape[:2]
        self.position[0] = position
        self.binding.bind_cpu_input("minutes", x)
        outs = self._bind_outputs(B, T)
        self.session.run_with_iobinding(self.binding)
        self.cache[:, :, :, :, position:position + T] = outs["new_kv"]
        return tuple(torch.from_numpy(outs[n].copy()) for n in HEAD_NAMES)  # copies of a few bytes: the next step
        #                                                                    writes into the same output arrays

    def forget(self, position: int) -> None:
        """Slots from `position` on back to zeros (after a refused or failed step)."""
        self.cache[:, :, :, :, position:] = 0




class GraphedTorchStream(TorchStream):
    """TorchStream whose step — the l_step_static call and the write of its keys/values into the cache at a
    device-side position (`index_copy_`) — is one captured CUDA graph per push length T. The batch is fixed per
    session and the cache's shape per model, so the graph of T = 1 serves every minute of every day of the
    session: one graph per batch size, where the growing cache needs one per minute count (390 a day).

    γ, β (h_tokens), the minutes and the position are static tensors the graph reads: a new day copies into them.
    `capture=False` runs the same body eagerly (how the CPU tests check it; the capture itself needs CUDA)."""

    def __init__(self, step_fn, cfg, film: dict[str, Tensor], device, dtype=torch.float32, *, pool=None,
                 lock=None, capture: bool = True, warmup_runs: int = 2):
        super().__init__(step_fn, cfg, {k: v.clone() for k, v in film.items()}, device, dtype)
        self.pool, self.capture, self.warmup_runs = pool, capture, warmup_runs
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self._graphs: dict[int, tuple] = {}  # T -> (graph | None, static minutes, static outputs)
        self.captures = 0

    def reset(self, film: dict[str, Tensor]) -> GraphedTorchStream:
        for k, v in film.items():
            self.film[k].copy_(v)
        self.cache.zero_()
        return self

    def _body(self, x: Tensor) -> Heads:
        f = self.film
        a, q, qv, new_kv = self.step_fn(x, f["film_gamma"], f["film_beta"], self.position, self.views,
                                        f.get("h_tokens"))
        slots = self.position + torch.arange(x.shape[1], device=x.device)  # device-side: no host sync in the graph
        self.cache.index_copy_(4, slots, new_kv.to(self.cache.dtype))
        return a.float(), q.float(), qv.float()

    @torch.inference_mode()
    def step(self, minutes: Tensor, position: int) -> Heads:
        T = minutes.shape[1]
        with self.lock:
            self.position.fill_(position)
            entry = self._graphs.get(T)
            if entry is None:
                entry = self._graphs[T] = self._capture(minutes.to(self.cache.device))
            graph, x, outs = entry
            x.copy_(minutes, non_blocking=True)
            if graph is None:
                outs = self._body(x)
            else:
                graph.replay()  # the step and its cache write: one launch
            return tuple(o.clone() for o in outs)

    def _capture(self, minutes: Tensor) -> tuple:
        x = minutes.clone()
        if not self.capture:
            return None, x, None
        side = torch.cuda.Stream()  # warm-ups (lazy init, autotuning) off the capture stream; they write the slots
        side.wait_stream(torch.cuda.current_stream())  # at `position`, which the replay overwrites
        with torch.cuda.stream(side):
            for _ in range(self.warmup_runs):
                self._body(x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            outs = self._body(x)
        self.captures += 1
        return graph, x, outs
