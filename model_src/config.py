"""HRMConfig: the sizes of the dual-book HRM, defaults from the latency/memory plan.

The MLP ratios are not free choices: they are what makes each module land on the plan's parameter
counts (H ≈ 3.5M at d=384 needs ~6·d² per layer, L ≈ 23.8M at d=544 needs ~16·d² per layer).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from model_src.errors import ConfigError

# Feature counts are owned by model_src.features; they are repeated here as plain ints so that the
# config stays a dependency-free dataclass. tests/test_features.py checks the two agree.
N_DAY_FEATURES = 8
N_MINUTE_FEATURES = 11


FILM_POOLS = ("mean", "mean_last")  # HRMConfig.film_pool
LEGACY_FILM_POOL = "mean"  # what every config written before the field was


@dataclass
class HRMConfig:
    # inputs
    n_day_features: int = N_DAY_FEATURES
    n_minute_features: int = N_MINUTE_FEATURES
    max_days: int = 64  # look-back of the H-module (days)
    max_minutes: int = 390  # one regular US equity session (minutes)
    # H-module: daily tokens
    h_layers: int = 4
    h_dim: int = 384
    h_heads: int = 6
    h_mlp_ratio: float = 1.0
    # L-module: minute tokens, causal
    l_layers: int = 5
    l_dim: int = 544
    l_heads: int = 8
    l_mlp_ratio: float = 6.0
    # conditioning and heads
    cross_attention: bool = False  # optional L→H-token cross-attention before the heads
    # what the FiLM generator reads from the day tokens: "mean" (all days alike) or "mean_last" (the mean next
    # to the latest day, which holds what today's session most depends on; model_src.layers.FiLMGenerator).
    # A config without the field (checkpoints and bundles from before it) is "mean": see from_dict.
    film_pool: str = "mean_last"
    n_actions: int = 3  # short / flat / long
    norm_eps: float = 1e-5
    dropout: float = 0.0

    def __post_init__(self) -> None:
        """Refuse values no model can be built from, naming the field: a typed ConfigError, not an assert (a
        config read from a checkpoint or a manifest is input, and asserts vanish under python -O)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "int":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ConfigError(f"HRMConfig.{f.name} = {value!r}: expected an integer >= 1")
            elif f.type == "float":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                low_ok = ok and (0.0 <= value < 1.0 if f.name == "dropout" else value > 0.0)
                if not low_ok:
                    want = "a number in [0, 1)" if f.name == "dropout" else "a finite number > 0"
                    raise ConfigError(f"HRMConfig.{f.name} = {value!r}: expected {want}")
            elif f.type == "bool" and not isinstance(value, bool):
                raise ConfigError(f"HRMConfig.{f.name} = {value!r}: expected true or false")
        for dim, heads in (("h_dim", "h_heads"), ("l_dim", "l_heads")):
            if getattr(self, dim) % getattr(self, heads):
                raise ConfigError(f"HRMConfig.{dim} = {getattr(self, dim)} is not divisible by "
                                  f"{heads} = {getattr(self, heads)}")
        if self.film_pool not in FILM_POOLS:
            raise ConfigError(f"HRMConfig.film_pool = {self.film_pool!r}: expected one of {list(FILM_POOLS)}")
        if self.n_actions != 3:
            raise ConfigError(f"HRMConfig.n_actions = {self.n_actions}: the trading heads are short/flat/long, "
                              "so it must be 3")

    @property
    def l_head_dim(self) -> int:
        return self.l_dim // self.l_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> HRMConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"an HRMConfig is a JSON object of sizes, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown HRMConfig field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**{"film_pool": LEGACY_FILM_POOL, **d})


def tiny_config(**overrides) -> HRMConfig:
    """A small config with the same structure, for fast tests and smoke runs."""
    base = dict(h_layers=2, h_dim=32, h_heads=2, l_layers=2, l_dim=48, l_heads=4, max_days=64, max_minutes=390)
    base.update(overrides)
    return HRMConfig(**base)
