"""The I/O contract of each exported module: tensor names, dtypes and named axes.

Everything downstream (export, profiles, manifest, backends, verify, runtimes, Triton) reads names and
axes from here, so a module's signature is written once. Axis entries are either a symbolic name
(dynamic) or an int (fixed by the config).
"""

from __future__ import annotations

from dataclasses import dataclass

from model_src.config import HRMConfig

MODULES = ("h_module", "l_module", "l_step")
# The streaming step over a fixed-capacity K/V cache (docs/runtime.md, "Streaming"). Optional: bundles made before
# it have none, and every consumer that needs the three modules above keeps reading those.
STATIC_STEP = "l_step_static"
EXPORTED = (*MODULES, STATIC_STEP)  # what `hrm-export export` writes
# Modules that run in fp32 whatever precision is asked for: the H-module runs once per session (≈2 ms of a
# 25–60 ms day on a 2-core CPU, nothing per minute) and its FiLM γ, β condition every decision of the day. On the
# default model, which reads its daily book, a bf16 or INT8 H-module moved γ by 0.7–4 % of γ's own scale against
# ≈1.5e-6 in fp32 (docs/precision.md, "The H-module stays fp32"). Read by the bf16 and INT8 graph passes (as module
# globs) and by the torch backend.
FP32_MODULES = ("h_module",)

# Dynamic axes. total_minutes = past_minutes + new_minutes (present_kv of l_step).
AXES = ("batch", "days", "minutes", "new_minutes", "past_minutes", "total_minutes")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    axes: tuple[str | int, ...]
    dtype: str = "float32"

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return {i: a for i, a in enumerate(self.axes) if isinstance(a, str)}


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


def kv_shape(cfg: HRMConfig, batch: int, minutes: int) -> tuple[int, ...]:
    """The K/V cache of `minutes` cached minutes: (L, 2, B, H, P, hd) — layers, keys/values, batch, heads, minutes,
    head dim — as past_kv / present_kv carry it."""
    return (cfg.l_layers, 2, batch, cfg.l_heads, minutes, cfg.l_head_dim)


def static_cache_shape(cfg: HRMConfig, batch: int) -> tuple[int, ...]:
    """The fixed-capacity K/V cache of one session: (L, 2, B, H, max_minutes, hd), allocated once per session; the
    l_step_static graph reads slice [layer, k|v] of it as input `cache_{k|v}_{layer}` (B, H, max_minutes, hd)."""
    return (cfg.l_layers, 2, batch, cfg.l_heads, cfg.max_minutes, cfg.l_head_dim)


def static_cache_names(cfg: HRMConfig) -> list[str]:
    """Input names of the cache slices, in the order of the buffer's first two axes (layer, then k, v)."""
    return [f"cache_{kv}_{i}" for i in range(cfg.l_layers) for kv in ("k", "v")]


def module_specs(cfg: HRMConfig) -> dict[str, ModuleSpec]:
    """Specs of h_module, l_module and l_step for this config (h_tokens feeds L only with cross-attention)."""
    c = cfg
    kv = lambda name, t: TensorSpec(name, kv_shape(c, "batch", t))  # noqa: E731
    film = (TensorSpec("film_gamma", ("batch", c.l_dim)), TensorSpec("film_beta", ("batch", c.l_dim)))
    h_tokens = TensorSpec("h_tokens", ("batch", "days", c.h_dim))
    cross = (h_tokens,) if c.cross_attention else ()

    def heads(t: str) -> tuple[TensorSpec, ...]:
        return (
            TensorSpec("action_logits", ("batch", t, c.n_actions)),
            TensorSpec("quantity", ("batch", t, 1)),
            TensorSpec("q_values", ("batch", t, 2)),
        )

    days = TensorSpec("days", ("batch", "days", c.n_day_features))
    minutes = TensorSpec("minutes", ("batch", "minutes", c.n_minute_features))
    return {
        "h_module": ModuleSpec("h_module", (days,), (h_tokens, *film)),
        "l_module": ModuleSpec("l_module", (minutes, *film, *cross), heads("minutes")),
        "l_step": ModuleSpec(
            "l_step",
            (TensorSpec("minutes", ("batch", "new_minutes", c.n_minute_features)), *film, kv("past_kv", "past_minutes"),
             *cross),
            (*heads("new_minutes"), kv("present_kv", "total_minutes")),
        ),
        STATIC_STEP: ModuleSpec(
            STATIC_STEP,
            (TensorSpec("minutes", ("batch", "new_minutes", c.n_minute_features)), *film,
             TensorSpec("position", (1,), "int64"),
             *(TensorSpec(n, ("batch", c.l_heads, c.max_minutes, c.l_head_dim)) for n in static_cache_names(c)),
             *cross),
            (*heads("new_minutes"), kv("new_kv", "new_minutes")),
        ),
    }
