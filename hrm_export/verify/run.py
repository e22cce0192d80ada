"""Running: the reference and the candidate on the same feeds. Judging happens elsewhere (report.py).

Each `run_*` returns `RunResult`s holding the feeds and both sides' outputs; nothing here compares numbers.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import torch
from torch import Tensor

from hrm_export.backends.base import Backend
from hrm_export.core.composed import composed, film_feeds
from hrm_export.core.parity.result import HEADS, RunResult
from hrm_export.core.specs import kv_shape, module_specs
from hrm_export.verify.feeds import Case, MarketInputs
from model_src.config import HRMConfig

REF_BATCH = 16  # rows per reference call (see Runner._ref)


def _cpu(d: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in d.items()}


class Runner:
    def __init__(self, ref: Backend, cand: Backend, cfg: HRMConfig, inputs: MarketInputs):
        self.ref, self.cand, self.cfg, self.inputs = ref, cand, cfg, inputs
        self.specs = module_specs(cfg)

    def _ref(self, module: str, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        """The reference's outputs, computed REF_BATCH rows at a time: batch rows are independent, and a batch-128
        K/V cache built in one go would take several GB. The candidate always runs the whole batch."""
        spec = self.specs[module]
        B = next(iter(feeds.values())).shape[_batch_dim(spec.inputs[0])]
        if B <= REF_BATCH:
            return _cpu(self.ref.infer(module, feeds))
        parts = []
        for i in range(0, B, REF_BATCH):
            part = {t.name: feeds[t.name].narrow(_batch_dim(t), i, min(REF_BATCH, B - i)) for t in spec.inputs
                    if t.name in feeds}
            parts.append(_cpu(self.ref.infer(module, part)))
        return {t.name: torch.cat([p[t.name] for p in parts], dim=_batch_dim(t)) for t in spec.outputs}

    def _film(self, backend: Backend, days: Tensor) -> dict[str, Tensor]:
        """γ/β (and h_tokens for cross-attention) that `backend`'s H-module gives these days."""
        h = self._ref("h_module", {"days": days}) if backend is self.ref else backend.infer("h_module", {"days": days})
        return film_feeds(h, self.cfg.cross_attention)

    def _past_kv(self, minutes: Tensor, film: dict[str, Tensor]) -> Tensor:
        """The reference's K/V cache after `minutes` (B, P, F) from an empty session: a realistic past_kv."""
        B = minutes.shape[0]
        empty = torch.zeros(kv_shape(self.cfg, B, 0))
        if minutes.shape[1] == 0:
            return empty
        return self._ref("l_step", {"minutes": minutes, **film, "past_kv": empty})["present_kv"]

    def feeds(self, module: str, case: Case) -> dict[str, Tensor]:
        """The feeds of one module at one profile point; L gets the γ/β the reference H-module produced."""
        a = case.axes
        B, D = a["batch"], a["days"]
        T = a["past_minutes"] + a["new_minutes"] if module == "l_step" else a["minutes"]
        days, minutes = self.inputs.batch(B, D, T, offset=_offset(case.label))
        if module == "h_module":
            return {"days": days}
        film = _cpu(self._film(self.ref, days))
        if module == "l_module":
            return {"minutes": minutes, **film}
        P = a["past_minutes"]
        return {"minutes": minutes[:, P:].contiguous(), **film, "past_kv": self._past_kv(minutes[:, :P], film)}

    def run_module(self, module: str, case: Case) -> RunResult:
        feeds = self.feeds(module, case)
        return RunResult(module, case.label, feeds, self._ref(module, feeds),
                         _cpu(self.cand.infer(module, feeds)))

    def run_composed(self, case: Case) -> RunResult:
        """H → FiLM → L → heads, each engine feeding its own H outputs to its own L (core.composed)."""
        a = case.axes
        days, minutes = self.inputs.batch(a["batch"], a["days"], a["minutes"], offset=_offset(case.label) + 1)
        outs = []
        for backend in (self.ref, self.cand):
            infer = self._ref if backend is self.ref else backend.infer
            out = composed(infer, days.to(backend.device), minutes.to(backend.device), self.cfg.cross_attention)
            outs.append(_cpu({k: out[k] for k in HEADS}))
        return RunResult("composed", case.label, {"days": days, "minutes": minutes}, outs[0], outs[1])

    def has_static_step(self) -> bool:
        """Whether the candidate streams through a fixed-capacity cache (l_step_static) too."""
        probe = {"film_gamma": torch.zeros(1, self.cfg.l_dim, device=self.cand.device),
                 "film_beta": torch.zeros(1, self.cfg.l_dim, device=self.cand.device)}
        if self.cfg.cross_attention:
            probe["h_tokens"] = torch.zeros(1, 1, self.cfg.h_dim, device=self.cand.device)
        return self.cand.stream_state(probe) is not None

    def run_streaming(self, batch: int, chunks: list[int], label: str, static: bool = False) -> RunResult:
        """The candidate's l_step chained over a whole session (`chunks` minutes at a time, from an empty cache)
        against the reference's single l_module pass over the same minutes. `static`: through l_step_static and
        its fixed-capacity cache instead (backends/stream.py)."""
        T = self.cfg.max_minutes
        days, minutes = self.inputs.batch(batch, self.cfg.max_days, T)
        film = _cpu(self._film(self.ref, days))
        ref = self._ref("l_module", {"minutes": minutes, **film})
        kv = torch.zeros(kv_shape(self.cfg, batch, 0))
        kv = kv.to(self.cand.device)
        film_c = {k: v.to(self.cand.device) for k, v in film.items()}
        parts: dict[str, list[Tensor]] = {k: [] for k in ref}
        stream = self.cand.stream_state(film_c) if static else None
        for start, n in _spans(T, chunks):
            if stream is not None:
                for k, v in zip(ref, stream.step(minutes[:, start:start + n].to(self.cand.device), start), strict=True):
                    parts[k].append(v.cpu())
                continue
            out = self.cand.infer("l_step", {"minutes": minutes[:, start:start + n].to(self.cand.device), **film_c,
                                             "past_kv": kv})
            kv = out.pop("present_kv")
            for k, v in out.items():
                parts[k].append(v.cpu())
        cand = {k: torch.cat(v, dim=1) for k, v in parts.items()}
        return RunResult("streaming", label, {"minutes": minutes, **film}, ref, cand)


def _batch_dim(t) -> int:
    return t.axes.index("batch")


def _offset(label: str) -> int:
    """A stable per-case shift into the input pool (hash() is salted per process)."""
    return zlib.crc32(label.encode()) % 97


def _spans(total: int, chunks: list[int]) -> Iterator[tuple[int, int]]:
    """(start, length) pieces covering [0, total), cycling through the chunk sizes."""
    start, i = 0, 0
    while start < total:
        n = min(chunks[i % len(chunks)], total - start)
        yield start, n
        start, i = start + n, i + 1
