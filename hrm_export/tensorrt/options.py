"""Build options of `hrm-export build`: parsed, validated (one-line errors), and written to the manifest."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from hrm_export.core.parsing import OptionError, split_list
from hrm_export.core.specs import MODULES

PRECISIONS = ("fp32", "bf16", "int8")
# CLI spelling → trt.HardwareCompatibilityLevel member.
HARDWARE_COMPATIBILITY = {"none": "NONE", "ampere+": "AMPERE_PLUS", "same-cc": "SAME_COMPUTE_CAPABILITY"}
OPT_LEVELS = range(0, 6)  # TensorRT's builder optimisation levels 0..5 (default 3)
DEFAULT_PROFILES = ("latency", "throughput")


class BuildOptionError(OptionError):
    """A build option with a bad value."""


@dataclass(frozen=True)
class BuildOptions:
    precisions: tuple[str, ...] = PRECISIONS
    profiles: tuple[str, ...] = DEFAULT_PROFILES  # shipped profile names or .toml paths; one TRT profile each
    modules: tuple[str, ...] = MODULES
    workspace_mib: int | None = None  # None: TensorRT's default (all device memory)
    opt_level: int = 3
    timing_cache: Path | None = None
    error_on_timing_cache_miss: bool = False
    version_compatible: bool = False
    hardware_compatibility: str = "none"
    require_tensorrt: bool = False

    def validate(self) -> BuildOptions:
        split_list(",".join(self.precisions), "precision", PRECISIONS)
        split_list(",".join(self.modules), "module", MODULES)
        if not self.profiles:
            raise BuildOptionError("--profile is empty", hint=f"e.g. --profile {','.join(DEFAULT_PROFILES)}")
        if self.workspace_mib is not None and self.workspace_mib <= 0:
            raise BuildOptionError(f"--workspace-mib {self.workspace_mib}: must be a positive number of MiB",
                                   hint="omit it to let TensorRT use what the GPU has")
        if self.opt_level not in OPT_LEVELS:
            raise BuildOptionError(f"--opt-level {self.opt_level}: TensorRT builder optimisation levels are 0..5",
                                   hint="3 is TensorRT's default; 5 searches longest")
        if self.hardware_compatibility not in HARDWARE_COMPATIBILITY:
            raise BuildOptionError(
                f"--hardware-compatibility-level {self.hardware_compatibility!r}: choose from "
                f"{', '.join(HARDWARE_COMPATIBILITY)}")
        if self.error_on_timing_cache_miss and self.timing_cache is None:
            raise BuildOptionError("--error-on-timing-cache-miss needs --timing-cache FILE",
                                   hint="build once with --timing-cache FILE to fill it, then add the flag")
        if self.error_on_timing_cache_miss and not Path(self.timing_cache).is_file():
            raise BuildOptionError(f"--error-on-timing-cache-miss: timing cache {self.timing_cache} does not exist",
                                   hint="build once with --timing-cache FILE (without the flag) to create it")
        if self.timing_cache is not None and Path(self.timing_cache).is_dir():
            raise BuildOptionError(f"--timing-cache {self.timing_cache} is a directory; give a file path")
        return self

    def to_manifest(self) -> dict:
        """The options that shape a plan (what `made_by.options` records)."""
        d = dataclasses.asdict(self)
        d["timing_cache"] = str(self.timing_cache) if self.timing_cache else None
        for k in ("precisions", "profiles", "modules"):
            d[k] = list(d[k])
        del d["require_tensorrt"]  # how the run reacts to a missing TensorRT, not how a plan is made
        return d


def make_options(
    precision: str = ",".join(PRECISIONS),
    profile: str = ",".join(DEFAULT_PROFILES),
    module: str = ",".join(MODULES),
    **rest,
) -> BuildOptions:
    """BuildOptions from CLI strings ('fp32,bf16'), validated."""
    return BuildOptions(
        precisions=split_list(precision, "precision", PRECISIONS),
        profiles=split_list(profile, "profile"),
        modules=split_list(module, "module", MODULES),
        **rest,
    ).validate()
