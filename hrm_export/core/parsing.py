"""Parsing of the comma-separated lists every verb takes (`--precision fp32,bf16`, `--batch 1,8,128`)."""

from __future__ import annotations

from hrm_export.core.errors import UserError


class OptionError(UserError):
    """A command-line option with a bad value."""


def split_list(text: str | None, what: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """'fp32, bf16' → ('fp32', 'bf16'): de-duplicated, order kept, each checked against `allowed`."""
    items = tuple(dict.fromkeys(p.strip() for p in (text or "").split(",") if p.strip()))
    if not items:
        example = ",".join(allowed or ("latency", "throughput"))
        raise OptionError(f"--{what} is empty", hint=f"give a comma-separated list, e.g. {example}")
    bad = [p for p in items if allowed is not None and p not in allowed]
    if bad:
        raise OptionError(f"--{what}: unknown {', '.join(map(repr, bad))}", hint=f"choose from {', '.join(allowed)}")
    return items


def split_ints(text: str | None, what: str, minimum: int = 1) -> tuple[int, ...]:
    """'1,8,128' → (1, 8, 128), each an integer ≥ minimum."""
    items = split_list(text, what)
    try:
        values = tuple(int(i) for i in items)
    except ValueError:
        values = ()
    if not values or min(values) < minimum:
        raise OptionError(f"--{what} {text!r}: expected integers >= {minimum}", hint=f"e.g. --{what} 1,8,128")
    return values
