"""Latency, speed-up and memory targets (hrm_export/budgets/latency.toml): the schema of the file.

A target names a figure (module, batch, sequence length, statistic) on a device class and either a ceiling
(kind = "latency", max_ms; kind = "memory", max_mb) or a speed-up over a baseline cell (kind = "speedup",
min_ratio = baseline / candidate). The whole file is validated when loaded — types, ranges, unknown keys,
the fields each kind needs — so a bad target is one line before minutes of measuring, never a target quietly
turned into "not measured". How the bench judges targets: hrm_export/bench/gate.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from hrm_export.core.config_files import BUDGET_DIR, Number, read_toml, validate
from hrm_export.core.errors import ConfigFileError

DEFAULT_TARGETS = BUDGET_DIR / "latency.toml"
MODULES = ("day", "h_module", "l_module", "window", "l_step", "heads",
           "l_step_static", "push", "push_growing", "run_day", "run_day_chunked")  # the last five: bench.streaming
STATS = ("p50", "p90", "p99", "max", "mean", "min")
# peak_host_rss_mb_upto_batch: the process's peak RSS over every cell up to the target's `batch`.
MEMORY_METRICS = ("peak_host_rss_mb", "peak_host_rss_mb_upto_batch", "peak_device_mb", "params_mb_fp32",
                  "params_mb_bf16", "params_mb_int8")
BASELINE_KEYS = ("backend", "precision", "module", "seq", "batch")

Positive = Annotated[Number, Field(gt=0)]


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Annotated[str, Field(min_length=1)]
    kind: Literal["latency", "speedup", "memory"]
    device_class: tuple[str, ...]
    what: str = ""
    source: Literal["plan", "ours"] = "ours"  # the plan's table, or this project's stricter targets
    module: Literal[MODULES] | None = None
    backend: Annotated[str, Field(pattern=r"^(best|each|[a-z-]+(/[a-z0-9-]+)?)$")] = "best"
    precision: str | None = None
    batch: Annotated[StrictInt, Field(ge=1)] = 1
    seq: Annotated[StrictInt, Field(ge=0)] = 0
    stat: Literal[STATS] = "p50"
    max_ms: Positive | None = None
    min_ratio: Positive | None = None
    max_mb: Positive | None = None
    metric: Literal[MEMORY_METRICS] | None = None
    baseline: dict[str, str | StrictInt] = Field(default_factory=dict)

    @field_validator("device_class", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return (v,) if isinstance(v, str) else v

    @field_validator("baseline")
    @classmethod
    def _baseline_keys(cls, v):
        unknown = sorted(set(v) - set(BASELINE_KEYS))
        if unknown:
            raise ValueError(f"unknown baseline key(s) {unknown}; use {list(BASELINE_KEYS)}")
        return v

    @model_validator(mode="after")
    def _fields_of_kind(self):
        need = {"latency": ("module", "max_ms"), "speedup": ("module", "min_ratio"), "memory": ("metric", "max_mb")}
        missing = [f for f in need[self.kind] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"kind {self.kind!r} needs {' and '.join(missing)}")
        if self.kind == "speedup" and not self.baseline:
            raise ValueError("kind 'speedup' needs a baseline table, e.g. { backend = 'torch', precision = 'fp32' }")
        return self

    def goal(self) -> str:
        if self.kind == "latency":
            return f"≤ {self.max_ms:g} ms"
        if self.kind == "speedup":
            return f"≥ {self.min_ratio:g}×"
        return f"≤ {self.max_mb:g} MB"


class TargetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: StrictInt = 1
    target: Annotated[list[dict], Field(min_length=1)]


def load_targets(path: str | Path | None = None) -> list[Target]:
    """Every [[target]] of the file, validated; ConfigFileError naming the target and key on the first problem."""
    path = Path(path) if path else DEFAULT_TARGETS
    f = validate(TargetFile, read_toml(path, DEFAULT_TARGETS), path, example=DEFAULT_TARGETS)
    targets = [validate(Target, raw, path, f"target #{i + 1} ({raw.get('id', 'no id')})", DEFAULT_TARGETS)
               for i, raw in enumerate(f.target)]
    seen: set[str] = set()
    for t in targets:
        if t.id in seen:
            raise ConfigFileError(f"{path}: target id {t.id!r} appears twice", hint="give each target its own id")
        seen.add(t.id)
    return targets
