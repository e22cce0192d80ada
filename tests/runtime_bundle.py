"""A tiny exported bundle shared by the runtime tests (exported once per test process: ~9 s)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from hrm_export.runtime import Timeline
from model_src import HRM, tiny_config


def tiny_runtime_model(seed: int = 0, **cfg) -> HRM:
    """A tiny HRM whose FiLM and Q-head are not at their zero/neutral init, so conditioning and halting vary."""
    torch.manual_seed(seed)
    model = HRM(tiny_config(**cfg)).eval()
    with torch.no_grad():
        model.h.film.proj.weight.normal_(0.0, 0.2)
        model.h.film.proj.bias.normal_(0.0, 0.05)
        model.l.heads.q.bias.zero_()  # q_halt vs q_continue decided by the weights: halts come and go by minute
    return model


@functools.lru_cache(maxsize=1)
def tiny_bundle() -> Path:
    from hrm_export.export.bundle import export_bundle
    from model_src.checkpoint import save_checkpoint

    root = Path(tempfile.mkdtemp(prefix="hrm-runtime-bundle-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    save_checkpoint(tiny_runtime_model(), root / "tiny.safetensors")
    export_bundle(root / "tiny.safetensors", root / "bundle")
    return root / "bundle"


def copy_bundle(dst: Path) -> Path:
    """A private copy of the bundle, its checkpoint inside (for tests that tamper with it)."""
    shutil.copytree(tiny_bundle(), dst / "bundle")
    return dst / "bundle"


def tokens(batch: int, n_days: int, n_minutes: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random tokens inside every feature's valid range (the runtime refuses others): Gaussian, folded to >= 0
    for the non-negative features and clamped to each range."""
    g = torch.Generator().manual_seed(seed)
    days, minutes = torch.randn(batch, n_days, 8, generator=g), torch.randn(batch, n_minutes, 11, generator=g)
    return in_range(days, "days"), in_range(minutes, "minutes")


def in_range(x, book: str):
    """Tokens x (…, F) (torch or numpy) folded and clamped into the valid range of each feature of `book`."""
    from model_src.features import token_ranges

    if isinstance(x, np.ndarray):
        return in_range(torch.from_numpy(x), book).numpy()
    low, high = (torch.tensor(v, dtype=x.dtype) for v in zip(*token_ranges()[book].values(), strict=True))
    return torch.where(low >= 0, x.abs(), x).clamp(low, high)


def assert_same_decisions(streamed: Timeline, full: Timeline, atol: float = 1e-4) -> None:
    sl = slice(streamed.first_minute, streamed.last_minute + 1)
    np.testing.assert_allclose(streamed.action_logits, full.action_logits[:, sl], atol=atol, rtol=0)
    np.testing.assert_allclose(streamed.confidence, full.confidence[:, sl], atol=atol, rtol=0)
    np.testing.assert_allclose(streamed.quantity, full.quantity[:, sl], atol=atol, rtol=0)
    np.testing.assert_allclose(streamed.q_halt, full.q_halt[:, sl], atol=atol, rtol=0)
    np.testing.assert_array_equal(streamed.action, full.action[:, sl])
    np.testing.assert_array_equal(streamed.halted, full.halted[:, sl])


def overflowing_model():
    """Finite weights whose outputs are NaN exactly at the minutes marked `filled` (feature 10): the embedding
    overflows to Inf there, and RMSNorm turns Inf into NaN. Elsewhere the outputs are finite. FiLM is off so
    that the huge but finite residual of the other minutes is not scaled past float32."""
    model = tiny_runtime_model()
    with torch.no_grad():
        model.h.film.proj.weight.zero_()
        model.h.film.proj.bias.zero_()
        model.l.embed.weight[:, 10] = 3e38
        model.l.embed.bias[:] = 3e38
    return model
