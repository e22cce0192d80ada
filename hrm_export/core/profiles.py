"""Shape profiles: the [min, opt, max] of every named axis an artifact is built and verified for.

A profile is a small TOML file (`hrm_export/profiles/latency.toml`, `throughput.toml`, or any path). TensorRT
builds one optimisation profile from it per engine; verify feeds its min/opt/max points; every backend refuses a
shape outside it before running, naming the profile that would admit the shape. A profile never silently
shrinks to fit a model: one that exceeds the model's limits (its look-back days, its session's minutes) is
refused at export with what to configure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from hrm_export.core.config_files import PROFILE_DIR, read_toml, validate
from hrm_export.core.errors import ProfileError, UserError
from hrm_export.core.session_rule import check_session
from hrm_export.core.specs import AXES, TensorSpec, module_specs
from model_src.config import HRMConfig

INPUT_AXES = tuple(a for a in AXES if a != "total_minutes")  # total_minutes only appears on outputs
EXAMPLE = PROFILE_DIR / "latency.toml"

Shape = tuple[int, ...]
AxisRange = Annotated[list[StrictInt], Field(min_length=3, max_length=3)]


class ProfileAxes(BaseModel):
    """[min, opt, max] per input axis: integers, min <= opt <= max, min >= 1 (past_minutes >= 0)."""

    model_config = ConfigDict(extra="forbid")
    batch: AxisRange
    days: AxisRange
    minutes: AxisRange
    new_minutes: AxisRange
    past_minutes: AxisRange


class ProfileFile(BaseModel):
    """The schema of a profile TOML file (and of a manifest's `profiles` entry)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    version: StrictInt = 1
    description: str = ""
    axes: ProfileAxes


@dataclass(frozen=True)
class Profile:
    name: str
    axes: dict[str, tuple[int, int, int]]  # axis -> (min, opt, max)
    version: int = 1
    description: str = ""
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for axis, (lo, opt, hi) in self.axes.items():
            floor = 0 if axis == "past_minutes" else 1
            if not floor <= lo <= opt <= hi:
                raise UserError(f"profile {self.path or self.name}: [axes.{axis}] = [{lo}, {opt}, {hi}] is not "
                                f"min <= opt <= max with min >= {floor}", hint="fix the [axes] table of the profile")

    def point(self, which: str) -> dict[str, int]:
        """Axis values of the "min", "opt" or "max" point."""
        i = ("min", "opt", "max").index(which)
        return {a: v[i] for a, v in self.axes.items()}

    def shapes(self, spec: TensorSpec) -> tuple[Shape, Shape, Shape]:
        """(min_shape, opt_shape, max_shape) of one tensor; fixed dims come from the spec.

        total_minutes (present_kv) is past + new at each point, before the session-length rule caps it.
        """
        axes = dict(self.axes)
        axes["total_minutes"] = tuple(p + n for p, n in zip(axes["past_minutes"], axes["new_minutes"], strict=True))
        return tuple(tuple(d if isinstance(d, int) else axes[d][i] for d in spec.axes) for i in range(3))

    def violations(self, module: str, shapes: dict[str, Shape], cfg: HRMConfig) -> list[str]:
        """Why these input shapes are outside this profile (empty when inside)."""
        values = axis_values(module, shapes, cfg)
        return [f"{a}={v} outside {self.name} range {self.axes[a][0]}..{self.axes[a][2]}"
                for a, v in values.items() if not self.axes[a][0] <= v <= self.axes[a][2]]

    def admits(self, module: str, shapes: dict[str, Shape], cfg: HRMConfig) -> bool:
        return not self.violations(module, shapes, cfg)

    def check(self, module: str, shapes: dict[str, Shape], cfg: HRMConfig) -> None:
        """Raise ProfileError naming the axis, value, range and the profile that admits it, if outside."""
        check_shapes([self], module, shapes, cfg)

    def check_model(self, cfg: HRMConfig) -> None:
        """ProfileError when the profile asks for more than the model holds: never clamped, never renamed."""
        limits = {"days": cfg.max_days, "minutes": cfg.max_minutes, "new_minutes": cfg.max_minutes,
                  "past_minutes": cfg.max_minutes - 1}
        for axis, limit in limits.items():
            if self.axes[axis][2] > limit:
                what = "look-back days" if axis == "days" else "minutes of one session"
                raise ProfileError(
                    f"profile {self.name!r}: {axis} up to {self.axes[axis][2]}, but the model takes at most {limit} "
                    f"{what} (HRMConfig.max_{'days' if axis == 'days' else 'minutes'})",
                    hint=f"export with a profile whose {axis} max is <= {limit} (copy {EXAMPLE.name} and edit "
                    f"it), or configure the model for more: max_{'days' if axis == 'days' else 'minutes'}")

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "description": self.description,
                "axes": {a: list(v) for a, v in self.axes.items()}}

    @classmethod
    def from_dict(cls, d: dict, path: Path | str | None = None) -> Profile:
        f = validate(ProfileFile, d, path or "profile", example=EXAMPLE)
        axes = {a: tuple(v) for a, v in f.axes.model_dump().items()}
        return cls(f.name, axes, f.version, f.description, Path(path) if path else None)


def axis_values(module: str, shapes: dict[str, Shape], cfg: HRMConfig) -> dict[str, int]:
    """The value of each named axis in these input shapes; fixed dims and model limits are checked here."""
    spec = module_specs(cfg)[module]
    values: dict[str, int] = {}
    for t in spec.inputs:
        if t.name not in shapes:
            raise UserError(f"{module}: input {t.name!r} missing", hint=f"{module} takes {spec.input_names}")
        shape = tuple(shapes[t.name])
        if len(shape) != len(t.axes):
            raise ProfileError(f"{module}.{t.name}: rank {len(shape)} {shape}, expected {len(t.axes)} {t.axes}",
                               hint="reshape the input to the documented layout")
        for i, (dim, want) in enumerate(zip(shape, t.axes, strict=True)):
            if isinstance(want, int):
                if dim != want:
                    raise ProfileError(f"{module}.{t.name}: dim {i} is {dim}, the model fixes it at {want} {t.axes}",
                                       hint="check the feature count / config of the inputs")
            elif values.setdefault(want, dim) != dim:
                raise ProfileError(f"{module}.{t.name}: axis {want} is {dim} here but {values[want]} on another input",
                                   hint="all inputs must agree on batch/days/minutes")
    # The model's own limits: no profile can admit more than the position tables hold.
    limits = {"days": cfg.max_days, "minutes": cfg.max_minutes, "new_minutes": cfg.max_minutes}
    for axis, limit in limits.items():
        if values.get(axis, 0) > limit:
            raise ProfileError(f"{module}: {axis}={values[axis]} exceeds the model's limit {limit}",
                               hint=f"no profile admits it; split the input to at most {limit} {axis}")
    if module == "l_step":
        check_session(values["past_minutes"], values["new_minutes"], cfg.max_minutes)
    return values


def check_shapes(profiles: list[Profile], module: str, shapes: dict[str, Shape], cfg: HRMConfig) -> None:
    """Pass if any of `profiles` admits the shapes, else raise ProfileError naming which profile would."""
    if any(p.admits(module, shapes, cfg) for p in profiles):
        return
    why = "; ".join(v for p in profiles for v in p.violations(module, shapes, cfg))
    names = {p.name for p in profiles}
    others = [p.name for p in list_profiles() if p.name not in names and p.admits(module, shapes, cfg)]
    if others:
        hint = f"profile {others[0]!r} admits these shapes: export/build with --profile {others[0]}"
    else:
        hint = f"no shipped profile admits them: write a profile TOML (see {EXAMPLE}) and export with --profile PATH"
    raise ProfileError(f"{module}: {why}", hint=hint)


def load_profile(name_or_path: str | Path) -> Profile:
    """A profile by name (a shipped one in hrm_export/profiles/) or by path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = PROFILE_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise UserError(f"no profile {str(name_or_path)!r}",
                            hint=f"use one of {[p.stem for p in sorted(PROFILE_DIR.glob('*.toml'))]} or a .toml path")
    return Profile.from_dict(read_toml(path, EXAMPLE), path)


def list_profiles() -> list[Profile]:
    return [load_profile(p) for p in sorted(PROFILE_DIR.glob("*.toml"))]
