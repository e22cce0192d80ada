"""Typed errors and exit codes shared by every verb.

User errors (bad input, missing file, shape outside a profile) exit 1 with one red line and a hint.
A gate failure (a parity or latency budget missed) exits GATE_FAILED after the full report, so scripts
can tell "you called it wrong" from "the artifact is not good enough".
"""

from __future__ import annotations

from model_src.errors import CheckpointError, DataError

EXIT_USER_ERROR = 1
EXIT_GATE_FAILED = 3


class UserError(Exception):
    """Something the user can fix; `hint` says how."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class ProfileError(UserError):
    """A shape outside the profile an artifact was built for."""


class ManifestError(UserError):
    """An artifact directory whose manifest is missing, corrupt, or disagrees with the files."""


class MissingDependencyError(UserError):
    """An optional package (onnxruntime, tensorrt, ...) is not installed."""


# Errors raised by model_src are user errors too (bad checkpoint, bad market data).
USER_ERRORS = (UserError, CheckpointError, DataError)


def require(module: str, install: str):
    """Import an optional dependency or raise MissingDependencyError with the install command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(f"{module} is not installed ({e})", hint=f"install it: {install}") from None
