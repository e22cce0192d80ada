"""hrm_stream: live streaming through Triton's sequence batcher, one sequence (correlation id) per instrument.

    START  days (1, D, F_day)                 → runtime.start_day: H once, a fresh Session for the sequence
    push   minutes (1, T, F_min), minute (1,)  → session.push(minutes, start_minute=minute): the decision at the
                                                request's last minute (a START or END request may carry one too)
    END                                        → the sequence's Session is dropped after the request

All per-sequence state (γ, β, the K/V cache, the halt) lives in the runtime's Session; this model only maps
correlation ids to sessions. A minute out of order is the Session's SequenceError, answered as that request's
error while every other sequence goes on (the session is left as it was). Triton forgets a sequence after
max_sequence_idle_microseconds without a request; a sweeper frees the Session on the same clock, so an
abandoned instrument does not hold its cache.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils

from hrm_export.runtime import NotStartedError, SequenceError, Session
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
        self.rt, config = open_runtime(args)
        self.metrics = RuntimeMetrics(args["model_name"], self.rt)
        self.idle_s = config["sequence_batching"]["max_sequence_idle_microseconds"] / 1e6
        self.sessions: dict[int, tuple[Session, float]] = {}  # correlation id → (session, last request time)
        self.expired = self.ended = 0
        self._lock = threading.Lock()  # sessions is shared with the sweeper thread
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="hrm_stream-idle", daemon=True)
        self._sweeper.start()

    def execute(self, requests: list) -> list:
        responses = []
        for r in requests:
            try:
                responses.append(self._one(r))
            except Exception as e:  # noqa: BLE001 — this request's error; other sequences go on
                responses.append(error_response(e))
        with self._lock:
            active = len(self.sessions)
        self.metrics.publish({"stream_active_sequences": active, "stream_sequences_expired_total": self.expired,
                              "stream_sequences_ended_total": self.ended})
        return responses

    def finalize(self) -> None:
        self._stop.set()
        self._sweeper.join(timeout=5)

    # -- one request -------------------------------------------------------------------------------
    def _one(self, request):
        corrid = int(optional_input(request, "CORRID").reshape(-1)[0])
        start = bool(optional_input(request, "START").reshape(-1)[0])
        end = bool(optional_input(request, "END").reshape(-1)[0])
        days, minutes, minute = (optional_input(request, n) for n in ("days", "minutes", "minute"))
        try:
            session = self._start(corrid, days) if start else self._session(corrid, days)
            return self._push(session, minutes, minute)
        finally:
            if end:
                with self._lock:
                    self.ended += self.sessions.pop(corrid, None) is not None

    def _start(self, corrid: int, days: np.ndarray | None) -> Session:
        if days is None:
            raise SequenceError(f"sequence {corrid}: START without days",
                                hint="send the day's look-back tokens (days) with the START request")
        with self._lock:
            self.sessions.pop(corrid, None)  # a restarted sequence (next day) drops the old cache first
        session = self.rt.start_day(days)  # (B, D, F_day): usually B = 1, one instrument per sequence
        with self._lock:
            self.sessions[corrid] = (session, time.monotonic())
        return session

    def _session(self, corrid: int, days: np.ndarray | None) -> Session:
        if days is not None:
            raise SequenceError(f"sequence {corrid}: days sent without START",
                                hint="send days only with the START request of the day")
        with self._lock:
            entry = self.sessions.get(corrid)
            if entry is None:
                raise NotStartedError(f"sequence {corrid} has no session (never started, ended, or idle for more "
                                      f"than {self.idle_s:g} s)", hint="start it again with START and the days")
            self.sessions[corrid] = (entry[0], time.monotonic())
        return entry[0]

    def _push(self, session: Session, minutes: np.ndarray | None, minute: np.ndarray | None):
        batch = session.batch
        if minutes is None:
            if minute is not None:
                raise SequenceError("minute sent without minutes", hint="send the minute's tokens with it")
            return pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("minute", np.full((batch, 1), -1, np.int32))])  # started (or ended), no decision
        if minute is None:
            raise SequenceError("minutes sent without minute",
                                hint=f"send minute = the session minute of minutes[0] (next: {session.n_minutes})")
        d = session.push(minutes, start_minute=int(minute.reshape(-1)[0]))  # checks order, shapes, finiteness
        fields = {name: getattr(d, name)[:, None] for name in DECISION_OUTPUTS}  # each (B, 1)
        return pb_utils.InferenceResponse(output_tensors=[
            pb_utils.Tensor("minute", np.full((batch, 1), d.minute, np.int32)), *decision_tensors(fields),
            pb_utils.Tensor("halt_minute", d.halt_minute[:, None].astype(np.int32))])

    # -- idle sequences ----------------------------------------------------------------------------
    def _sweep_loop(self) -> None:
        while not self._stop.wait(min(5.0, self.idle_s / 4)):
            cutoff = time.monotonic() - self.idle_s
            with self._lock:
                idle = [c for c, (_s, seen) in self.sessions.items() if seen < cutoff]
                for c in idle:
                    del self.sessions[c]
                self.expired += len(idle)
