"""The I/O contract of each exported module: tensor names, dtypes and named axes.

Everything downstream (export, profiles, manifest, backends, verify, runtimes, Triton) reads names and
axes from here, so a module's signature is written once. Axis entries are either a symbolic name
(dynamic) or an int (fixed by the config).
"""

from __future__ import annotations

from dataclasses import dataclass

from model_src.config import HRMConfig

MODULES = ("h_module", "l_module", "l_step")

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
    }
