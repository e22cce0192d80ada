"""The inference runtime: open a bundle (fail closed), start a day, push minutes, read decisions.

See docs/runtime.md. `HRMRuntime` is the entry point; sessions hold one day's streaming state.
"""

from hrm_export.core.decisions import ACTIONS, Decision, Timeline
from hrm_export.runtime.cache import InferenceCache, observation_key
from hrm_export.runtime.errors import (
    ArtifactMismatchError,
    InputError,
    NonFiniteOutput,
    NotStartedError,
    ProfileError,
    RuntimeClosedError,
    SequenceError,
    SessionFullError,
)
from hrm_export.runtime.memory import MemoryGuard
from hrm_export.runtime.monitor import PerformanceMonitor
from hrm_export.runtime.runtime import HRMRuntime
from hrm_export.runtime.session import Session

__all__ = [
    "ACTIONS", "ArtifactMismatchError", "Decision", "HRMRuntime", "InferenceCache", "InputError", "MemoryGuard",
    "NonFiniteOutput", "NotStartedError", "PerformanceMonitor", "ProfileError", "RuntimeClosedError", "SequenceError",
    "Session", "SessionFullError",
    "Timeline", "observation_key",
]
