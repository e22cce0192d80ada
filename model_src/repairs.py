"""What the data layer repaired, dropped or refused, per file and per session, and the policy that bounds it.

A repair invents or removes data: a flat bar for a missing minute, a duplicate row dropped. Each is counted
and logged on the "model_src.data" logger; each session carries a SessionReport saying how many of its
minutes were invented and where, and how many bars were dropped and why. A session whose invented minutes
pass the policy's limit is refused (docs/features.md, "Repair policy").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field

logger = logging.getLogger("model_src.data")


@dataclass(frozen=True)
class RepairPolicy:
    """How much of a session may be invented before it is refused.

    max_filled: the share of a session's minutes that may be filled (flat bars at the last close);
    5 % is 19 minutes of a 390-minute session, 25 of 510, 16 of 330. allow_over_limit: the caller's opt-in
    to keep a session over the limit (its report still says what was invented); a session whose bars stop
    before the close is then kept as a partial session that ends at its last bar, never padded to the close.
    """

    max_filled: float = 0.05
    allow_over_limit: bool = False

    def __post_init__(self) -> None:
        assert 0.0 <= self.max_filled <= 1.0, f"max_filled is a share of the session, 0..1; got {self.max_filled}"

    def limit(self, session_minutes: int) -> int:
        """Most minutes of a session of this length that may be filled."""
        return int(self.max_filled * session_minutes + 1e-9)


@dataclass
class SessionReport:
    """One session of the minute file: its calendar length, what was filled and dropped, and the verdict."""

    exchange: str
    date: dt.date
    minutes: int  # the calendar's trading minutes of this session
    bars: int = 0  # bars inside the session (the lunch break excluded)
    filled_at_open: int = 0  # minutes before the first bar: flat at the previous daily close
    filled_inside: int = 0  # minutes between bars without a bar: flat at the last close
    filled_at_close: int = 0  # minutes after the last bar: flat at the last close
    dropped_before_open: int = 0
    dropped_in_break: int = 0
    dropped_after_close: int = 0
    partial: bool = False  # the bars stop before the close by more than the fill limit
    refused: str = ""  # why the session was refused; "" when it was kept

    @property
    def filled(self) -> int:
        return self.filled_at_open + self.filled_inside + self.filled_at_close

    @property
    def dropped(self) -> int:
        return self.dropped_before_open + self.dropped_in_break + self.dropped_after_close

    def as_dict(self) -> dict:
        return {"exchange": self.exchange, "date": str(self.date), "minutes": self.minutes, "bars": self.bars,
                "filled": {"at_open": self.filled_at_open, "inside": self.filled_inside,
                           "at_close": self.filled_at_close},
                "dropped": {"before_open": self.dropped_before_open, "in_break": self.dropped_in_break,
                            "after_close": self.dropped_after_close},
                "partial": self.partial, "refused": self.refused}

    def line(self) -> str:
        """One line for a person: the session, what was invented and dropped, the verdict."""
        filled = ", ".join(f"{n} {where}" for n, where in ((self.filled_at_open, "at the open"),
                           (self.filled_inside, "inside"), (self.filled_at_close, "at the close")) if n)
        dropped = ", ".join(f"{n} {why}" for n, why in ((self.dropped_before_open, "before the open"),
                            (self.dropped_in_break, "in the break"), (self.dropped_after_close, "after the close"))
                            if n)
        text = (f"{self.exchange} {self.date}: {self.bars} bars for {self.minutes} minutes; "
                f"filled {self.filled}{f' ({filled})' if filled else ''}; "
                f"dropped {self.dropped}{f' ({dropped})' if dropped else ''}")
        if self.partial and not self.refused:
            text += "; partial (ends at its last bar)"
        return text + (f"; refused: {self.refused}" if self.refused else "")


@dataclass
class RepairReport:
    """Counts of what was repaired or dropped (keys in docs/features.md), and one SessionReport per session."""

    source: str
    counts: Counter = field(default_factory=Counter)
    sessions: list[SessionReport] = field(default_factory=list)

    def add(self, what: str, n: int, detail: str = "", log: bool = True) -> None:
        if n:
            self.counts[what] += int(n)
            if log:
                logger.info("%s: %s: %d%s", self.source, what, n, f" ({detail})" if detail else "")

    def merge(self, counts: dict[str, int]) -> None:
        self.counts.update({k: int(v) for k, v in counts.items() if v})

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)

    @property
    def refused(self) -> list[SessionReport]:
        return [s for s in self.sessions if s.refused]
