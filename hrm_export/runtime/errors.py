"""Typed errors of the runtime. Each is a UserError: one line naming what is wrong, a hint saying the fix.

A rejected call never changes a session's state, so the caller can fix the input and go on.
"""

from __future__ import annotations

from hrm_export.core.errors import ManifestError, ProfileError, UserError


class InputError(UserError):
    """Tokens the model cannot take: wrong rank, batch or feature count, NaN/Inf, not a float array."""


class SequenceError(UserError):
    """Minutes pushed out of order: a gap, a repeat, or a start_minute that is not the next minute."""


class NotStartedError(UserError):
    """A push before start_day(): the session has no γ, β for the day yet."""


class SessionFullError(UserError):
    """A push past the last minute the model or profile admits for one session."""


class NonFiniteOutput(UserError):
    """A backend returned NaN/Inf: no decision is made from it, and the session is left as it was."""


class RuntimeClosedError(UserError):
    """A call on a runtime after close(): it is refused, never served by silently re-opened sessions."""


class ArtifactMismatchError(ManifestError):
    """An artifact that does not match what this runtime would run (signature, versions, GPU, hashes)."""


__all__ = [
    "ArtifactMismatchError",
    "InputError",
    "NonFiniteOutput",
    "NotStartedError",
    "ProfileError",
    "RuntimeClosedError",
    "SequenceError",
    "SessionFullError",
    "UserError",
]
