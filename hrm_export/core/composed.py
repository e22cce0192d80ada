"""The composed pass — days → H-module → (γ, β) → L-module → heads — written once.

Verify's composed cases, the precision judge, the bench's per-day cell, the runtime's run_day and INT8
calibration all run H then L this way, each engine feeding its own H outputs to its own L. `infer` is any
(module, feeds) → outputs callable: a Backend's `infer` (torch tensors) or an ONNX Runtime one (numpy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Array = TypeVar("Array")
Infer = Callable[[str, dict[str, Array]], dict[str, Array]]


def film_feeds(h_out: dict[str, Array], cross_attention: bool) -> dict[str, Array]:
    """What the L-module takes from the H-module's outputs: γ, β, and the day tokens with cross-attention."""
    keep = ("film_gamma", "film_beta", "h_tokens") if cross_attention else ("film_gamma", "film_beta")
    return {k: h_out[k] for k in keep}


def composed(infer: Infer, days: Array, minutes: Array, cross_attention: bool) -> dict[str, Array]:
    """days (B, D, F_day), minutes (B, T, F_min) → the H outputs (h_tokens, γ, β) and the L heads, one dict."""
    h = infer("h_module", {"days": days})
    return {**h, **infer("l_module", {"minutes": minutes, **film_feeds(h, cross_attention)})}
