"""Which TensorRT runtime library runs plans here: the full TensorRT (`tensorrt`), else the lean runtime
(`tensorrt_lean`, `pip install 'hrm-export[lean]'`: libnvinfer_lean, 44 MB of wheel instead of the full library).

The lean runtime deserializes and runs plans only; it cannot build them, and it runs only plans built
version-compatible (`hrm-export build --version-compatible`, recorded in the manifest). Its Python API for
running a plan is the full library's (Runtime, ICudaEngine, IExecutionContext), so the backend takes either.

Without a CUDA device `trt.Runtime(...)` does not fail: it logs a CUDA error and returns an object whose first
use crashes the process. So `require_cuda_device` runs before any runtime is made, and refuses in one line.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from hrm_export.core.backend_registry import INSTALL, TENSORRT_MODULES
from hrm_export.core.errors import MissingDependencyError, UserError
from hrm_export.tensorrt.plan_header import PlanError

LEAN = "tensorrt_lean"


@dataclass(frozen=True)
class TrtLibrary:
    module: object  # the imported tensorrt or tensorrt_lean module
    name: str  # "tensorrt" | "tensorrt_lean"
    version: str

    @property
    def lean(self) -> bool:
        return self.name == LEAN

    def describe(self) -> str:
        return f"{self.name} {self.version}"


def load_library(names: tuple[str, ...] = TENSORRT_MODULES) -> TrtLibrary:
    """The first of `names` that imports, or MissingDependencyError naming why each did not."""
    why = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 (bindings without their libraries raise ImportError or OSError)
            why.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'not importable'}")
            continue
        return TrtLibrary(module, name, str(getattr(module, "__version__", "?")))
    raise MissingDependencyError(f"no TensorRT runtime library imports here ({'; '.join(why)})",
                                 hint=f"{INSTALL['tensorrt']}; to run version-compatible plans only: "
                                 f"{INSTALL['tensorrt_lean']}")


def require_cuda_device(device: str = "cuda") -> None:
    """One line, before any TensorRT runtime exists, if torch sees no CUDA device (cudaGetDeviceCount == 0)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise UserError("TensorRT plans need a CUDA device and torch sees none (cudaGetDeviceCount: 0)",
                        hint="run on the GPU machine the plans were built for, or use --backend ort-cpu")
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= count:
        raise UserError(f"device {device!r}: torch sees {count} CUDA device(s)", hint="use cuda:0 .. "
                        f"cuda:{count - 1}")


def error_logger(library: TrtLibrary):
    """A trt.ILogger that keeps TensorRT's error messages, so a failed deserialization reports TensorRT's own
    words in one line (`last_error()`), and passes warnings through to Python logging."""
    import logging

    trt = library.module
    log = logging.getLogger("hrm_export.tensorrt")

    class ErrorLog(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors.append(" ".join(str(msg).split()))
                del self.errors[:-8]  # only the latest few matter
            elif severity == trt.ILogger.Severity.WARNING:
                log.warning("%s: %s", library.name, msg)

        def last_error(self) -> str:
            return self.errors[-1] if self.errors else "no error message from TensorRT"

    return ErrorLog()




@dataclass
class Engine:
    """A deserialized plan with the objects it needs alive: TensorRT requires the runtime to outlive its
    engines, and the logger to outlive both."""

    engine: object  # trt.ICudaEngine
    runtime: object
    logger: object


def deserialize(library: TrtLibrary, path: str | Path, *, host_code_allowed: bool = False, advice: str | None = None,
                hint: str = "rebuild it: hrm-export build --out DIR --require-tensorrt") -> Engine:
    """Deserialize a plan (call require_cuda_device first). TensorRT decides; if it refuses, PlanError carries its
    own words in one line, with `advice` (what the header and the manifest said against the plan) beside them.

    `host_code_allowed`: version-compatible plans carry the lean runtime's host code, which TensorRT runs only
    when told the plan is trusted (`engine_host_code_allowed`); pass True only for a plan whose sha256 the
    manifest has confirmed."""
    trt = library.module
    logger = error_logger(library)
    runtime = trt.Runtime(logger)
    runtime.engine_host_code_allowed = host_code_allowed
    engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
    if engine is None:
        because = f" (the header and the manifest said: {advice.removeprefix(f'{path}: ')})" if advice else ""
        raise PlanError(f"{path}: {library.describe()} could not deserialize the plan: {logger.last_error()}{because}",
                        hint=hint)
    return Engine(engine, runtime, logger)
