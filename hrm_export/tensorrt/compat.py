"""Can this machine run that plan? TensorRT version and compute capability, checked before deserializing.

A plan runs only on the TensorRT release that built it (unless built version-compatible: then on the same
major release, same or later) and on GPUs of the compute capability it was built for (unless built with a
hardware-compatibility level: `ampere+` runs on any compute capability ≥ 8.0).
"""

from __future__ import annotations

from pathlib import Path

from hrm_export.tensorrt.plan_header import PlanError, read_plan_header


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


def check_plan_runnable(
    plan_path: str | Path,
    *,
    built_version: str,
    built_cc: str,
    running_version: str,
    running_cc: str | tuple[int, int],
    version_compatible: bool = False,
    hardware_compatibility: str = "none",
    rebuild: str = "hrm-export build --out DIR --require-tensorrt",
) -> None:
    """Raise PlanError (one line naming both sides and the rebuild command) if the plan cannot run here."""
    header = read_plan_header(plan_path)
    recorded = parse_version(built_version)[:3]
    if header.release != recorded:
        raise PlanError(
            f"{plan_path}: header says TensorRT {header.version} but the manifest records {built_version}; "
            "the file was replaced after the build", hint=f"rebuild it: {rebuild}")
    running = parse_version(running_version)[:3]
    if version_compatible:
        ok = running[0] == header.release[0] and running >= header.release
        rule = "version-compatible: same major, same or later release"
    else:
        ok = running == header.release
        rule = "same release"
    if not ok:
        raise PlanError(
            f"{plan_path}: built with TensorRT {header.version}, running TensorRT {running_version} ({rule}); "
            f"rebuild: {rebuild}", hint=f"rebuild it here: {rebuild}")
    plan_cc, here_cc = parse_cc(built_cc), parse_cc(running_cc)
    if hardware_compatibility == "ampere+":
        ok, rule = here_cc >= (8, 0), "ampere+: compute capability ≥ 8.0"
    else:
        ok, rule = here_cc == plan_cc, "same compute capability"
    if not ok:
        raise PlanError(
            f"{plan_path}: built for compute capability {plan_cc[0]}.{plan_cc[1]}, this GPU is "
            f"{here_cc[0]}.{here_cc[1]} ({rule}); rebuild: {rebuild}", hint=f"rebuild it here: {rebuild}")
