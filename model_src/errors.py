"""Errors of the reference package; each message names the problem and the fix in one line."""


class ConfigError(ValueError):
    """An HRMConfig whose values cannot describe a model (a negative size, a string, heads that do not divide)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded."""


class DataError(ValueError):
    """Market data that cannot be turned into tokens (names file, row and fix)."""


class NonFiniteOutputError(ValueError):
    """A model output that is NaN or infinite where a decision would be made from it."""

    def __init__(self, message: str, output: str = "", instrument: int = -1, minute: int = -1):
        super().__init__(message)
        self.output, self.instrument, self.minute = output, instrument, minute
