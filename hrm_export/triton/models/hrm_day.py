"""hrm_day: days (B, D, F_day) + minutes (B, T, F_min) → the decision timeline (B, T), over HRMRuntime.run_day.

Triton's dynamic batcher hands execute() several requests at once; requests whose shapes agree run as one
run_day call (the runtime splits it into chunks of its profile's batch). If a joint call fails, its requests
run one by one, so a bad request (NaN, too many days) gets its own error response and the others their
decisions.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import triton_python_backend_utils as pb_utils

from hrm_export.triton.configs import DECISION_OUTPUTS
from hrm_export.triton.models.common import (
    RuntimeMetrics,
    decision_tensors,
    error_response,
    open_runtime,
    optional_input,
)


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.rt, _config = open_runtime(args)
        self.metrics = RuntimeMetrics(args["model_name"], self.rt)

    def execute(self, requests: list) -> list:
        responses: list = [None] * len(requests)
        feeds = [(optional_input(r, "days"), optional_input(r, "minutes")) for r in requests]
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, (days, minutes) in enumerate(feeds):
            groups[(days.shape[1:], minutes.shape[1:])].append(i)  # Triton checked presence, dtype and rank
        for members in groups.values():
            try:
                answers = self._run([feeds[i] for i in members])
            except Exception:  # noqa: BLE001 — one of them is bad: answer each on its own
                answers = [self._run_alone(feeds[i]) for i in members]
            for i, answer in zip(members, answers, strict=True):
                responses[i] = answer
        self.metrics.publish()
        return responses

    def _run_alone(self, feed: tuple[np.ndarray, np.ndarray]):
        try:
            return self._run([feed])[0]
        except Exception as e:  # noqa: BLE001 — the request's own error, as its response
            return error_response(e)

    def _run(self, feeds: list[tuple[np.ndarray, np.ndarray]]) -> list:
        """One run_day over the requests' rows stacked; one response per request."""
        days = np.concatenate([d for d, _ in feeds])  # (ΣB, D, F_day)
        minutes = np.concatenate([m for _, m in feeds])  # (ΣB, T, F_min)
        tl = self.rt.run_day(days, minutes)
        responses, lo = [], 0
        for d, _m in feeds:
            rows = slice(lo, lo + d.shape[0])
            lo = rows.stop
            fields = {name: getattr(tl, name)[rows] for name in DECISION_OUTPUTS}  # each (B, T)
            halt = pb_utils.Tensor("halt_minute", tl.halt_minute[rows, None].astype(np.int32))  # (B, 1)
            responses.append(pb_utils.InferenceResponse(output_tensors=[*decision_tensors(fields), halt]))
        return responses
