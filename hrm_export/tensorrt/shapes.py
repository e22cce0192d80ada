"""Optimization-profile shapes: profile files → (min, opt, max) per input, checked against the ONNX graph.

A profile file names ranges per axis (batch, days, minutes, ...); a module's spec names the axes of each
input. Their product is what TensorRT's optimization profile and ONNX Runtime's TensorRT EP take. Every
range is checked against the ONNX inputs (fixed dims must match, rank must agree) and the model's limits
before a build starts, so a bad profile fails in a second, not after minutes of tactic timing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hrm_export.core.errors import ProfileError
from hrm_export.core.specs import ModuleSpec
from model_src.config import HRMConfig

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShapeRange:
    min: Shape
    opt: Shape
    max: Shape

    def admits(self, shape: Shape) -> bool:
        if len(shape) != len(self.min):
            return False
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=True))

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


ProfileShapes = dict[str, ShapeRange]  # input name → range, one TensorRT optimization profile


def profile_shapes(profile, spec: ModuleSpec) -> ProfileShapes:
    """The (min, opt, max) shape of every input of `spec` under one profile (hrm_export.core.profiles.Profile)."""
    out = {}
    for t in spec.inputs:
        lo, opt, hi = profile.shapes(t)
        out[t.name] = ShapeRange(tuple(lo), tuple(opt), tuple(hi))
    return out


def onnx_input_dims(onnx_path: str | Path) -> dict[str, tuple[int | str, ...]]:
    """Input name → dims of an ONNX file (int for fixed dims, the symbol name or '?' for dynamic ones)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    dims = {}
    for vi in model.graph.input:
        if vi.name in initializers:  # old exporters list weights as inputs too
            continue
        shape = vi.type.tensor_type.shape
        dims[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape.dim)
    return dims


def check_profile_shapes(
    onnx_path: str | Path, module: str, profile_name: str, shapes: ProfileShapes, cfg: HRMConfig | None = None
) -> None:
    """Raise ProfileError (one line: profile, module, input, dim, the problem) if `shapes` cannot build."""
    where = f"profile {profile_name!r}, {module}"
    dims = onnx_input_dims(onnx_path)
    missing = sorted(set(dims) - set(shapes))
    if missing:
        raise ProfileError(f"{where}: ONNX input(s) {missing} have no shape in the profile",
                           hint="the profile and the ONNX file come from different model versions; re-export")
    extra = sorted(set(shapes) - set(dims))
    if extra:
        raise ProfileError(f"{where}: profile shapes input(s) {extra} that {Path(onnx_path).name} does not have",
                           hint=f"ONNX inputs are {sorted(dims)}")
    for name, r in shapes.items():
        onnx_dims = dims[name]
        for which in ("min", "opt", "max"):
            if len(getattr(r, which)) != len(onnx_dims):
                raise ProfileError(f"{where}: {name} {which} shape {list(getattr(r, which))} has rank "
                                   f"{len(getattr(r, which))}, the ONNX input has rank {len(onnx_dims)}")
        for i, d in enumerate(onnx_dims):
            lo, opt, hi = r.min[i], r.opt[i], r.max[i]
            if lo < 0:
                raise ProfileError(f"{where}: {name} dim {i} min {lo} is negative")
            if not lo <= opt <= hi:
                raise ProfileError(f"{where}: {name} dim {i} needs min ≤ opt ≤ max, got {lo} ≤ {opt} ≤ {hi}",
                                   hint="fix the [min, opt, max] of that axis in the profile file")
            if isinstance(d, int) and d > 0 and not lo == opt == hi == d:
                raise ProfileError(f"{where}: {name} dim {i} is fixed at {d} in the ONNX graph but the profile "
                                   f"gives [{lo}, {opt}, {hi}]", hint="the profile must leave fixed dims alone")
    if cfg is not None:
        _check_model_limits(where, shapes, cfg)


def _check_model_limits(where: str, shapes: ProfileShapes, cfg: HRMConfig) -> None:
    # The model's position tables end at max_days / max_minutes: a larger shape builds but computes garbage.
    limits = {("days", 1): ("days", cfg.max_days), ("minutes", 1): ("minutes", cfg.max_minutes)}
    for (name, dim), (axis, limit) in limits.items():
        if name in shapes and shapes[name].max[dim] > limit:
            raise ProfileError(f"{where}: {axis} max {shapes[name].max[dim]} exceeds the model's max_{axis} {limit}",
                               hint=f"use a profile whose {axis} range ends at ≤ {limit}")
    if "past_kv" in shapes:  # the box may hold past + new > max_minutes at its corner; its min corner must fit
        past_min, new_min = shapes["past_kv"].min[4], shapes["minutes"].min[1]
        if past_min + new_min > cfg.max_minutes:
            raise ProfileError(f"{where}: past_minutes min {past_min} + new_minutes min {new_min} exceeds "
                               f"max_minutes {cfg.max_minutes}; no step fits the profile")


def select_profile(ranges: list[ProfileShapes], shapes: dict[str, Shape], names: list[str] | None = None,
                   what: str = "engine") -> int:
    """Index of the profile to run `shapes` with: among those that admit them, the one whose opt shape is
    nearest (in log volume) — the kernels were tuned there. ProfileError if none admits them."""
    admitting = [i for i, r in enumerate(ranges) if all(r[n].admits(tuple(s)) for n, s in shapes.items() if n in r)]
    if not admitting:
        names = names or [str(i) for i in range(len(ranges))]
        worst = _first_violation(ranges, shapes, names)
        raise ProfileError(f"{what}: {worst}", hint="build a plan with a profile that admits this shape "
                           "(hrm-export build --profile ...), or split the input")

    def distance(i: int) -> float:
        vol = lambda s: sum(math.log(max(d, 1)) for d in s)  # noqa: E731
        return sum(abs(vol(shapes[n]) - vol(ranges[i][n].opt)) for n in shapes if n in ranges[i])

    return min(admitting, key=distance)


def _first_violation(ranges: list[ProfileShapes], shapes: dict[str, Shape], names: list[str]) -> str:
    for n, s in shapes.items():
        for d, v in enumerate(s):
            outside = [(names[i], r[n].min[d], r[n].max[d]) for i, r in enumerate(ranges)
                       if n in r and len(r[n].min) == len(s) and not r[n].min[d] <= v <= r[n].max[d]]
            if len(outside) == len(ranges):
                allowed = ", ".join(f"{p} [{lo}, {hi}]" for p, lo, hi in outside)
                return f"{n} dim {d} = {v} is outside every profile ({allowed})"
    return f"input shapes {shapes} fit no single profile ({', '.join(names)})"
