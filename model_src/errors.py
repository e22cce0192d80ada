"""Errors of the reference package; each message names the problem and the fix in one line."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded."""


class DataError(ValueError):
    """Market data that cannot be turned into tokens (names file, row and fix)."""
