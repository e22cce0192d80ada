"""What hrm_day and hrm_stream share: opening the runtime from the model's config, reading inputs, the
decision outputs, error responses, and the runtime monitor's figures as Triton custom metrics."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from hrm_export.core.errors import USER_ERRORS
from hrm_export.runtime import HRMRuntime
from hrm_export.triton.configs import DECISION_OUTPUTS


def open_runtime(args: dict) -> tuple[HRMRuntime, dict]:
    """The runtime over the bundle inside this model's version directory, on the instance's device."""
    config = json.loads(args["model_config"])
    params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
    bundle = Path(args["model_repository"]) / args["model_version"] / params.get("bundle", "bundle")
    backend = params.get("backend", "auto")
    options = {}
    if args.get("model_instance_kind") == "GPU" and backend != "ort-cpu":
        options["device"] = f"cuda:{args['model_instance_device_id']}"  # one instance group per GPU
    rt = HRMRuntime.open(bundle, backend=backend, precision=params.get("precision", "fp32"), **options)
    pb_utils.Logger.log_info(f"{args['model_instance_name']}: runtime on {rt.backend.describe()} ({rt.reason}), "
                             f"profile {rt.limits.profile!r}")
    return rt, config


def optional_input(request, name: str) -> np.ndarray | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


def decision_tensors(fields: dict[str, np.ndarray]) -> list:
    """Output tensors of the DECISION_OUTPUTS fields (any leading shape), cast to their declared dtypes."""
    return [pb_utils.Tensor(name, np.ascontiguousarray(fields[name], dtype=dtype))
            for name, dtype in DECISION_OUTPUTS.items()]


def error_response(e: Exception):
    """One line for the client: the error's kind, what is wrong and (for user errors) the fix. Errors that are
    not the caller's (a bug, a backend failure) are logged with their traceback as well."""
    message = f"{type(e).__name__}: {e}"
    hint = getattr(e, "hint", "")
    if hint:
        message += f"; hint: {hint}"
    if not isinstance(e, USER_ERRORS):
        pb_utils.Logger.log_error(f"{message}\n{traceback.format_exc()}")
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))


class RuntimeMetrics:
    """The runtime monitor (per-stage calls and p50/p99/max over its recent window, cache and memory counters)
    and model-specific values, published on Triton's metrics endpoint. Updated from execute() only: the
    custom-metrics calls talk to the server through the stub's message queue."""

    def __init__(self, model: str, rt: HRMRuntime):
        self.model, self.rt = model, rt
        self._families: dict[str, object] = {}
        self._metrics: dict[tuple, object] = {}
        self._added: dict[tuple, float] = {}  # counter → what was added so far (counters only increment)

    def publish(self, extra: dict[str, float] | None = None) -> None:
        d = self.rt.monitor.as_dict()
        for stage, s in d["stages"].items():
            self._count("hrm_runtime_stage_calls_total", "Runtime calls per stage.", s["count"], stage=stage)
            for stat in ("p50", "p99", "max"):
                self._gauge("hrm_runtime_stage_latency_ms", "Runtime stage latency over the recent window, ms.",
                            s[f"{stat}_ms"], stage=stage, stat=stat)
        for key, value in {**d["counters"], **(extra or {})}.items():
            name = f"hrm_{key}" if key.startswith("stream_") else f"hrm_runtime_{key}"
            if key.endswith("_total"):
                self._count(name, key.replace("_", " ") + ".", value)
            else:
                self._gauge(name, key.replace("_", " ") + ".", value)

    def _count(self, name: str, help: str, total: float, **labels) -> None:
        metric, key = self._metric(name, help, pb_utils.MetricFamily.COUNTER, labels)
        delta = float(total) - self._added.get(key, 0.0)
        if delta > 0:
            metric.increment(delta)
            self._added[key] = float(total)

    def _gauge(self, name: str, help: str, value: float, **labels) -> None:
        self._metric(name, help, pb_utils.MetricFamily.GAUGE, labels)[0].set(float(value))

    def _metric(self, name: str, help: str, kind, labels: dict) -> tuple[object, tuple]:
        key = (name, *sorted(labels.items()))
        if key not in self._metrics:
            if name not in self._families:
                self._families[name] = pb_utils.MetricFamily(name=name, description=help, kind=kind)
            self._metrics[key] = self._families[name].Metric(labels={"model": self.model, **labels})
        return self._metrics[key], key
