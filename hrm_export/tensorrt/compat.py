"""Can this machine run that plan? The rules, from the plan's header and the manifest's record of its build.

A plan runs only on the TensorRT release that built it (unless built version-compatible: then on the same
major release, same or later) and on GPUs of the compute capability it was built for (unless built with a
hardware-compatibility level: `ampere+` runs on any compute capability ≥ 8.0). The lean runtime
(`tensorrt_lean`) runs version-compatible plans only.

The header layout is not documented by NVIDIA (plan_header.py), so these rules are advice where TensorRT is
installed: the backend deserializes anyway, and TensorRT's own refusal is the verdict, reported with this
advice beside it. Where TensorRT is absent they are all there is, and `check_plan_runnable` refuses early.
"""

from __future__ import annotations

from pathlib import Path

from hrm_export.tensorrt.plan_header import PlanError, read_plan_header

RECORD_KEYS = ("tensorrt_version", "compute_capability")  # what a plan's manifest `extra` must say of its build


def parse_version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in str(text).split(".") if p != "")
    except ValueError:
        raise PlanError(f"bad TensorRT version {text!r}; expected digits and dots like 10.13.0.35") from None


def parse_cc(text: str | tuple[int, int]) -> tuple[int, int]:
    if isinstance(text, tuple):
        return text
    try:
        major, minor = str(text).split(".")
        return int(major), int(minor)
    except ValueError:
        raise PlanError(f"bad compute capability {text!r}; expected MAJOR.MINOR like 9.0") from None


def rebuild_command(bundle_dir: str | Path, precision: str) -> str:
    return f"hrm-export build --out {bundle_dir} --precision {precision} --require-tensorrt"


def plan_problem(
    plan_path: str | Path,
    *,
    built_version: str,
    built_cc: str,
    running_version: str,
    running_cc: str | tuple[int, int],
    version_compatible: bool = False,
    hardware_compatibility: str = "none",
    lean: bool = False,
) -> str | None:
    """Why the plan cannot run here, in one line naming both sides (None: nothing says it cannot)."""
    try:
        header = read_plan_header(plan_path)
        recorded, running = parse_version(built_version)[:3], parse_version(running_version)[:3]
        plan_cc, here_cc = parse_cc(built_cc), parse_cc(running_cc)
    except PlanError as e:
        return str(e)
    if header.release != recorded:
        return (f"{plan_path}: header says TensorRT {header.version} but the manifest records {built_version}; "
                "the file was replaced after the build")
    if lean and not version_compatible:
        return (f"{plan_path}: the lean runtime (tensorrt_lean {running_version}) runs only version-compatible "
                "plans, and this one was built without --version-compatible")
    if version_compatible:
        ok = running[0] == header.release[0] and running >= header.release
        rule = "version-compatible: same major, same or later release"
    else:
        ok, rule = running == header.release, "same release"
    if not ok:
        return f"{plan_path}: built with TensorRT {header.version}, running TensorRT {running_version} ({rule})"
    if hardware_compatibility == "ampere+":
        ok, rule = here_cc >= (8, 0), "ampere+: compute capability ≥ 8.0"
    else:
        ok, rule = here_cc == plan_cc, "same compute capability"
    if not ok:
        return (f"{plan_path}: built for compute capability {plan_cc[0]}.{plan_cc[1]}, this GPU is "
                f"{here_cc[0]}.{here_cc[1]} ({rule})")
    return None


def record_problem(plan_path: str | Path, record: dict, running_version: str, running_cc, lean: bool = False
                   ) -> str | None:
    """plan_problem from a plan's manifest record (`Artifact.extra`), or what the record lacks."""
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        return f"{plan_path}: the manifest records no {', '.join(missing)} for this plan"
    return plan_problem(plan_path, built_version=record["tensorrt_version"], built_cc=record["compute_capability"],
                        running_version=running_version, running_cc=running_cc,
                        version_compatible=bool(record.get("version_compatible")),
                        hardware_compatibility=record.get("hardware_compatibility", "none"), lean=lean)


def check_plan_runnable(plan_path: str | Path, *, rebuild: str = "hrm-export build --out DIR --require-tensorrt",
                        **facts) -> None:
    """The strict form, for where TensorRT cannot be asked: PlanError (one line, with the rebuild command)."""
    why = plan_problem(plan_path, **facts)
    if why:
        raise PlanError(f"{why}; rebuild: {rebuild}", hint=f"rebuild it here: {rebuild}")
