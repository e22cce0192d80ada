"""Shape profiles: the [min, opt, max] of every named axis an artifact is built and verified for.

A profile is a small TOML file in profiles/ (latency.toml, throughput.toml). TensorRT builds one optimisation
profile from it per engine; verify feeds its min/opt/max points; every backend refuses a shape outside it
before running, naming the profile that would admit the shape.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hrm_export.errors import ProfileError, UserError
from hrm_export.specs import AXES, TensorSpec, module_specs
from model_src.config import HRMConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"
INPUT_AXES = tuple(a for a in AXES if a != "total_minutes")  # total_minutes only appears on outputs

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Profile:
    name: str
    axes: dict[str, tuple[int, int, int]]  # axis -> (min, opt, max)
    version: int = 1
    description: str = ""
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        missing = [a for a in INPUT_AXES if a not in self.axes]
        if missing:
            raise UserError(f"profile {self.name!r} lacks axes {missing}", hint="give [min, opt, max] for each of "
                            f"{list(INPUT_AXES)} in its [axes] table")
        for axis, (lo, opt, hi) in self.axes.items():
            floor = 0 if axis == "past_minutes" else 1
            if not floor <= lo <= opt <= hi:
                raise UserError(f"profile {self.name!r}: axis {axis} = [{lo}, {opt}, {hi}] is not min <= opt <= max "
                                f"with min >= {floor}", hint="fix the [axes] table of the profile file")

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

    def clamped(self, cfg: HRMConfig) -> Profile:
        """This profile limited to the model's position tables (a smaller model cannot take 64 days)."""
        limits = {"days": cfg.max_days, "minutes": cfg.max_minutes, "new_minutes": cfg.max_minutes,
                  "past_minutes": cfg.max_minutes - 1}
        axes = {a: tuple(min(x, limits[a]) if a in limits else x for x in v) for a, v in self.axes.items()}
        return self if axes == self.axes else dataclasses.replace(self, axes=axes)

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "description": self.description,
                "axes": {a: list(v) for a, v in self.axes.items()}}

    @classmethod
    def from_dict(cls, d: dict, path: Path | None = None) -> Profile:
        try:
            axes = {a: tuple(int(x) for x in v) for a, v in d["axes"].items()}
            bad = [a for a, v in axes.items() if len(v) != 3]
            if bad:
                raise ValueError(f"axes {bad} need [min, opt, max]")
            return cls(d["name"], axes, int(d.get("version", 1)), d.get("description", ""), path)
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"profile {path or d.get('name', '?')}: malformed ({e})",
                            hint="see profiles/latency.toml for the format") from None


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
    if module == "l_step" and values["past_minutes"] + values["new_minutes"] > cfg.max_minutes:
        raise ProfileError(
            f"l_step: past_minutes + new_minutes = {values['past_minutes']} + {values['new_minutes']} exceeds the "
            f"session length {cfg.max_minutes}", hint="start a new session (empty past_kv) for the next day")
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
        hint = "no shipped profile admits them: write a profile TOML (see profiles/) and export with --profile PATH"
    raise ProfileError(f"{module}: {why}", hint=hint)


def load_profile(name_or_path: str | Path) -> Profile:
    """A profile by name (looked up in profiles/) or by path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = PROFILE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = [p.stem for p in sorted(PROFILE_DIR.glob("*.toml"))]
        raise UserError(f"no profile {str(name_or_path)!r}", hint=f"use one of {known} or a path to a .toml file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})", hint="fix the file; see profiles/latency.toml") from None
    return Profile.from_dict(data, path)


def list_profiles() -> list[Profile]:
    return [load_profile(p) for p in sorted(PROFILE_DIR.glob("*.toml"))]
