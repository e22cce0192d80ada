"""Where a figure was measured: CPU model and cores, ISA features that decide bf16/int8 speed, GPU, threads,
versions, load. Every bench report carries this record; figures without it are not comparable."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import psutil
import torch

# CPU flags that change which kernels run: AMX tiles and AVX-512 BF16/VNNI make bf16 and int8 matmuls fast.
_FLAGS = ("amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")
_DISTS = ("torch", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "nvidia-modelopt", "hrm-export")


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    try:
        block = Path("/proc/cpuinfo").read_text().split("\n\n", 1)[0]
    except OSError:
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines()) if k.strip()}


def cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    present = set(_cpuinfo().get("flags", "").split())
    return [f for f in _FLAGS if f in present]


def machine_summary() -> str:
    """One line for table titles: '2-core CPU (AMD EPYC ...)'."""
    return f"{os.cpu_count()}-core CPU ({cpu_model()})"


def device_class(device: str) -> str:
    """The key budgets are filed under: "a100" / "h100" / "h200" / "gpu" on CUDA, "cpu-<N>core" on the host."""
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device)).lower()
        for cls in ("a100", "h100", "h200"):
            if cls in name:
                return cls
        return "gpu"
    return f"cpu-{os.cpu_count()}core"


def versions(dists: tuple[str, ...] = _DISTS) -> dict[str, str | None]:
    """Python, each installed distribution's version (None if absent; keys with '_' for '-') and CUDA's."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in dists:
        try:
            out[dist.replace("-", "_")] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist.replace("-", "_")] = None
    out["cuda"] = torch.version.cuda
    return out


def machine_record(device: str = "cpu") -> dict:
    rec = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu_flags": cpu_flags(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "load_average_1m": round(os.getloadavg()[0], 2),  # a busy shared machine inflates every figure
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "device_class": device_class(device),
        "gpu": None,
        "versions": versions(),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        rec["gpu"] = {"name": props.name, "compute_capability": f"{props.major}.{props.minor}",
                      "memory_gib": round(props.total_memory / 2**30, 1)}
    return rec
