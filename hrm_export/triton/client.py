"""Calling hrm_day and hrm_stream with tritonclient over HTTP or gRPC (the load bench and the tests use this).

    c = TritonClient("127.0.0.1:8001", "grpc")
    day = c.day(days, minutes)                        # days (B, D, F_day), minutes (B, T, F_min) → fields (B, T)
    c.step(7, days=days, start=True)                  # START sequence 7 (instrument 7) with its look-back
    d = c.step(7, minutes=m, minute=0)                # minute 0 → the decision at minute 0, fields (B,)
    d = c.step(7, minutes=m, minute=389, end=True)    # the close; END frees the sequence's cache

Errors come back as tritonclient's InferenceServerException: one line from the server or the model.
"""

from __future__ import annotations

import numpy as np

from hrm_export.core.errors import require
from hrm_export.triton.configs import DECISION_OUTPUTS

PROTOCOLS = ("grpc", "http")


class TritonClient:
    def __init__(self, url: str, protocol: str = "grpc", timeout_s: float = 60.0):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol {protocol!r}: use one of {PROTOCOLS}")
        self.lib = require(f"tritonclient.{protocol}", "pip install 'tritonclient[grpc,http]'")
        self._utils = require("tritonclient.utils", "pip install 'tritonclient[grpc,http]'")
        self.protocol, self.timeout_s = protocol, timeout_s
        if protocol == "http":
            self.client = self.lib.InferenceServerClient(url, connection_timeout=timeout_s, network_timeout=timeout_s)
        else:
            self.client = self.lib.InferenceServerClient(url)

    def close(self) -> None:
        self.client.close()

    def day(self, days: np.ndarray, minutes: np.ndarray) -> dict[str, np.ndarray]:
        """hrm_day: the decision timeline; every DECISION_OUTPUTS field (B, T) and halt_minute (B,)."""
        result = self._infer("hrm_day", {"days": days, "minutes": minutes})
        out = {name: result.as_numpy(name) for name in DECISION_OUTPUTS}
        out["halt_minute"] = result.as_numpy("halt_minute")[:, 0]
        return out

    def step(self, sequence: int, days: np.ndarray | None = None, minutes: np.ndarray | None = None,
             minute: int | None = None, start: bool = False, end: bool = False) -> dict[str, np.ndarray]:
        """hrm_stream: one request of sequence `sequence`. Returns minute (B,) (-1: no minute was pushed) and,
        when a minute was pushed, the decision fields and halt_minute, each (B,)."""
        feeds = {"days": days, "minutes": minutes}
        if minute is not None:
            rows = next((v.shape[0] for v in (days, minutes) if v is not None), 1)
            feeds["minute"] = np.full((rows, 1), minute, np.int32)
        result = self._infer("hrm_stream", feeds, sequence_id=sequence, sequence_start=start, sequence_end=end)
        names = ("minute", *DECISION_OUTPUTS, "halt_minute") if minutes is not None else ("minute",)
        return {name: result.as_numpy(name)[:, 0] for name in names}

    def statistics(self, model: str) -> dict:
        """Triton's inference statistics of `model`: inference_count, execution_count (batched executions)."""
        as_json = {"as_json": True} if self.protocol == "grpc" else {}  # the HTTP client always answers JSON
        s = self.client.get_inference_statistics(model, **as_json)["model_stats"][0]
        return {k: int(s.get(k, 0)) for k in ("inference_count", "execution_count")}

    def _infer(self, model: str, feeds: dict[str, np.ndarray | None], **sequence):
        inputs = []
        for name, value in feeds.items():
            if value is None:
                continue
            value = np.ascontiguousarray(value)
            tensor = self.lib.InferInput(name, list(value.shape), self._utils.np_to_triton_dtype(value.dtype))
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        if self.protocol == "grpc":
            return self.client.infer(model, inputs, client_timeout=self.timeout_s, **sequence)
        return self.client.infer(model, inputs, **sequence)
