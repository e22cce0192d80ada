"""The session rule: one trading day's minutes fit the model's minute axis.

A streaming session holds past_minutes cached minutes and takes new_minutes more per l_step call; the two
together can never exceed the model's `max_minutes` (its minute-position table, the session length it was
built for). Profiles, verify's points, the runtime's sessions and the bench all apply it from here.
"""

from __future__ import annotations

from hrm_export.core.errors import ProfileError


def session_overflow(past_minutes: int, new_minutes: int, max_minutes: int) -> int:
    """How many minutes past + new exceed the session length (0 when they fit)."""
    return max(0, past_minutes + new_minutes - max_minutes)


def check_session(past_minutes: int, new_minutes: int, max_minutes: int, what: str = "l_step") -> None:
    """ProfileError naming both sizes when past + new minutes do not fit one session."""
    if session_overflow(past_minutes, new_minutes, max_minutes):
        raise ProfileError(f"{what}: past_minutes + new_minutes = {past_minutes} + {new_minutes} exceeds the "
                           f"session length {max_minutes}",
                           hint=f"push at most {max(0, max_minutes - past_minutes)} more minute(s); start a new "
                           "session (start_day) for the next trading day")


def fit_session(point: dict[str, int], max_minutes: int, prefer_past: bool) -> dict[str, int]:
    """A profile point shrunk to the session rule: past or new minutes give way (the other is kept)."""
    pt = dict(point)
    over = session_overflow(pt["past_minutes"], pt["new_minutes"], max_minutes)
    if over:
        if prefer_past:
            pt["new_minutes"] = max(1, pt["new_minutes"] - over)
            pt["past_minutes"] = max_minutes - pt["new_minutes"]
        else:
            pt["past_minutes"] = max(0, pt["past_minutes"] - over)
    return pt
