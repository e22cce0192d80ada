"""Typed errors and exit codes shared by every verb.

Exit codes (docs/cli.md): 0 ok; 1 bad input (one `error:` line naming the problem and a `hint:` line with the
fix); 3 a parity or latency gate failed (after the full report); 70 an unexpected exception — a bug — with one
line saying where the traceback was written. Scripts can tell "you called it wrong" from "the artifact is not
good enough" from "the tool broke". (2 is the command-line parser's own: an unknown option or a missing value.)
"""

from __future__ import annotations

from model_src.errors import CheckpointError, DataError, NonFiniteOutputError

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_GATE_FAILED = 3
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE in sysexits.h


class UserError(Exception):
    """Something the user can fix; `hint` says how."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class ProfileError(UserError):
    """A shape outside the profile an artifact was built for."""


class ManifestError(UserError):
    """An artifact directory whose manifest is missing, corrupt, or disagrees with the files."""


class ConfigFileError(UserError):
    """A profile or budget file that is not valid (names file, table and key)."""


class MissingDependencyError(UserError):
    """An optional package (onnxruntime, tensorrt, ...) is not installed."""


class BackendUnavailableError(UserError):
    """A backend that cannot run the asked precision on this machine (says why and what would)."""


# Errors raised by model_src are user errors too (bad checkpoint, bad market data, a model emitting NaN).
USER_ERRORS = (UserError, CheckpointError, DataError, NonFiniteOutputError)


def require(module: str, install: str):
    """Import an optional dependency or raise MissingDependencyError with the install command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(f"{module} is not installed ({e})", hint=f"install it: {install}") from None
