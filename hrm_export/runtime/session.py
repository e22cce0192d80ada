"""Streaming state of one day for a group of instruments: γ, β (and H tokens) and the L-module's K/V cache.

    s = runtime.session()          # or runtime.start_day(days)
    s.start_day(days)              # H once: γ, β, h_tokens for the day
    d = s.push(tokens, start_minute=0)   # l_step over the new minute(s) → decision for the latest minute
    d = s.push(tokens, start_minute=1)   # ...

Every push is checked in full before anything runs, and the state is replaced only after the backend
returned, so a rejected or failed push leaves the session exactly where it was. One lock per session:
pushes to one session from several threads are serialised; different sessions run in parallel.

Order across threads: a push without start_minute lands at the next minute, which is only well defined when one
thread feeds the session. So each day the first thread that pushes without start_minute owns that unnumbered
stream; a push without start_minute from any other thread is refused (SequenceError), never silently put in
lock order. Pushes that pass start_minute are checked against it and may come from any thread.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import torch

from hrm_export.core.decisions import NOT_HALTED, Decision, Timeline
from hrm_export.core.session_rule import session_overflow
from hrm_export.runtime.decide import decide
from hrm_export.runtime.errors import NotStartedError, ProfileError, SequenceError, SessionFullError
from hrm_export.runtime.inputs import as_tokens, check_int


class Session:
    def __init__(self, runtime, symbols: list[str] | None = None):
        self.runtime = runtime
        self.symbols = list(symbols) if symbols is not None else None
        self._lock = threading.Lock()
        self._film: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # h_tokens, γ, β on device
        self._kv: torch.Tensor | None = None  # (L, 2, B, H, P, hd) on device: the growing cache (l_step)
        self._stream = None  # the fixed-capacity cache (l_step_static), where the backend has one; then _kv is None
        self._filled = 0  # minutes in _stream
        self._halt_minute = np.zeros(0, dtype=np.int64)
        self.day: object = None
        self.session_minutes = 0  # today's session length: its close is minute session_minutes - 1
        self.last: Decision | None = None
        self._bars = None  # BarStream when the day was started with prev_close (push_bars)
        self._feeder: int | None = None  # the thread that pushes without start_minute today (see the module doc)

    # -- state -----------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._film is not None

    @property
    def batch(self) -> int:
        return 0 if self._film is None else self._film[1].shape[0]

    @property
    def n_minutes(self) -> int:
        """Minutes pushed so far today (the next push must start at this minute)."""
        if self._stream is not None:
            return self._filled
        return 0 if self._kv is None else self._kv.shape[4]

    @property
    def cache_design(self) -> str:
        """"static" (a fixed-capacity cache written in place, l_step_static) or "growing" (l_step's past_kv)."""
        return "static" if self._stream is not None else "growing"

    @property
    def halt_minute(self) -> np.ndarray:
        """(B,) first minute each instrument halted at today, -1 if not yet."""
        return self._halt_minute.copy()

    # -- the day ---------------------------------------------------------------------------------
    def start_day(self, days, day: object = None, prev_close=None, session_minutes: int | None = None) -> Session:
        """Run the H-module once on `days` (B, D, F_day) and reset the minute stream (and the halts).

        `prev_close` (B,): the previous session's close per instrument; needed only for push_bars().
        `session_minutes`: today's session length (a half day is shorter); default the full session the runtime
        admits. At its last minute an instrument that has not halted halts (the close always commits).
        """
        rt = self.runtime
        full = rt.limits.total_minutes
        session_minutes = full if session_minutes is None else check_int(
            session_minutes, "start_day: session_minutes", 1, full,
            hint=f"pass today's number of session minutes (at most {full}: profile {rt.limits.profile!r}, model "
            f"max_minutes={rt.cfg.max_minutes}; a longer session needs a model and profile configured for it)")
        bars = None
        if prev_close is not None:
            from hrm_export.runtime.bars import BarStream

            bars = BarStream(prev_close)
        h_tokens, gamma, beta = rt.h(days, day=day)  # checked, chunked, cached by the runtime
        if self.symbols is not None and len(self.symbols) != gamma.shape[0]:
            raise SequenceError(f"start_day: {gamma.shape[0]} instruments but the session names "
                                f"{len(self.symbols)} symbols", hint="pass one row of days per symbol")
        with self._lock:  # the static cache is allocated once per session (kept across days) and never per push
            stream = rt.stream_state(h_tokens, gamma, beta, reuse=self._stream)
            kv = rt.empty_kv(gamma.shape[0]) if stream is None else None
            self._film, self._kv, self._stream, self._filled = (h_tokens, gamma, beta), kv, stream, 0
            self._halt_minute = np.full(gamma.shape[0], NOT_HALTED, dtype=np.int64)
            self.day, self.last, self._bars, self._feeder = day, None, bars, None
            self.session_minutes = int(session_minutes)
        return self

    def push(self, minutes, start_minute: int | None = None) -> Decision:
        """New minute tokens (B, T_new, F_min) → the decision at the latest minute.

        `start_minute` is the session minute of minutes[:, 0]; it must equal n_minutes (the number already
        pushed). Pass it: it is what catches a dropped or repeated bar. push_timeline() returns the
        decisions of every new minute instead of the latest only.
        """
        return self.push_timeline(minutes, start_minute).last()

    def push_bars(self, bars: dict, start_minute: int | None = None) -> Decision:
        """Raw minute bars {open, high, low, close, volume[, filled]}, each (B, T_new) (or (T_new,) for one
        instrument) → tokens via model_src.features → push(). Needs start_day(..., prev_close=...); the time-of-day
        features use the session length of start_day(..., session_minutes=N) (a half day is its own length)."""
        with self._lock:
            if self._film is not None and self._bars is None:
                raise NotStartedError("push_bars needs the previous close: the day was not started with prev_close",
                                      hint="call session.start_day(days, prev_close=[...]) before pushing bars")
            if self._film is None:
                return self._push(None, start_minute)  # raises NotStartedError
            tokens, merged = self._bars.tokens(bars, self.session_minutes)
            line = self._push(tokens, start_minute)
            self._bars.commit(merged)  # only after the push succeeded: a refused push keeps the bars as they were
            return line.last()

    def push_timeline(self, minutes, start_minute: int | None = None) -> Timeline:
        """As push(), returning the decisions of all new minutes."""
        with self._lock:
            if self._bars is not None:
                raise SequenceError("this day streams raw bars (started with prev_close): push_bars, not tokens",
                                    hint="use push_bars(), or start_day without prev_close to push tokens")
            return self._push(minutes, start_minute)

    def _push(self, minutes, start_minute: int | None) -> Timeline:
        """The push itself; the caller holds the lock. Checks everything, then runs, then commits."""
        rt = self.runtime
        if self._film is None:
            raise NotStartedError("push before start_day: the session has no day conditioning yet",
                                  hint="call session.start_day(days) once per day before pushing minutes")
        n = self.n_minutes
        feeder = threading.get_ident()
        if start_minute is None and self._feeder not in (None, feeder):
            raise SequenceError(f"push without start_minute from thread {feeder}, but thread {self._feeder} feeds this "
                                "session's minutes: pushes from two threads would be ordered by chance",
                                hint=f"pass start_minute (the next minute is {n}) with every push from several "
                                "threads, or push from one thread")
        if start_minute is not None:
            start_minute = check_int(start_minute, "push: start_minute", 0, sys.maxsize,
                                     hint=f"pass the session minute of the first pushed minute as an int (next: {n})")
        x = as_tokens(minutes, "minutes", rt.cfg.n_minute_features, batch=self.batch,
                      book=rt.books.get("minutes"), first=n, symbols=self.symbols)
        t_new = x.shape[1]
        if start_minute is not None and start_minute != n:
            what = "repeats minutes already pushed" if start_minute < n else f"skips {start_minute - n} minute(s)"
            raise SequenceError(f"push at start_minute {start_minute} {what}: the next minute is {n}",
                                hint=f"push the bars in order starting at minute {n} (start_day resets to 0)")
        total = self.session_minutes
        if n >= total:
            raise SessionFullError(f"session is full: {n} of {total} minutes pushed today",
                                   hint="call start_day(days) for the next trading day")
        if session_overflow(n, t_new, total):
            raise SessionFullError(f"push of {t_new} minute(s) at minute {n} passes the session's {total} minutes",
                                   hint=f"push at most {total - n} more")
        if rt.limits.past_needed(n, t_new) > rt.limits.max_past:
            raise ProfileError(f"push of {t_new} minute(s) at minute {n}: an l_step call would follow "
                               f"{rt.limits.past_needed(n, t_new)} cached minutes, profile {rt.limits.profile!r} "
                               f"admits {rt.limits.max_past}",
                               hint="open the bundle with a profile whose past_minutes reach the session's length "
                               "minus one, or export with one (docs/runtime.md)")
        h_tokens, gamma, beta = self._film
        try:
            if self._stream is not None:  # writes only slots >= n, masked until _filled moves past them
                heads, kv = rt.static_step(self._stream, x, n), None
            else:
                heads, kv = rt.l_step(x, h_tokens, gamma, beta, self._kv)  # may raise: state untouched so far
            line = decide("l_step", heads, n, self._halt_minute, total, self.symbols)  # may raise: still untouched
        except BaseException:
            if self._stream is not None:
                self._stream.forget(n)  # a NaN left in a masked slot would still reach the values product
            raise
        if self._stream is not None:
            self._filled = n + t_new
        else:
            self._kv = kv
        self._halt_minute = line.halt_minute.copy()
        self.last = line.last()
        if start_minute is None:
            self._feeder = feeder
        return line

