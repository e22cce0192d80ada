"""JSON for machines: every `--json` output is strict JSON that any parser reads.

Python's json writes NaN and Infinity as bare words, which strict parsers (JSON.parse, jq, Go, serde) reject.
A non-finite number is written as null instead; the value it stood for is never a decision (the runtime
refuses non-finite outputs) but can be a metric, such as the error of a candidate that produced NaN.
"""

from __future__ import annotations

import json
import math


def finite_or_null(value):
    """`value` with every non-finite float (numpy scalars too) replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "item"):  # numpy scalar: its Python value
        return finite_or_null(value.item()) if getattr(value, "ndim", 0) == 0 else finite_or_null(value.tolist())
    return value


def json_text(value, **kwargs) -> str:
    """json.dumps of `value` as strict JSON (allow_nan=False after non-finite numbers became null)."""
    return json.dumps(finite_or_null(value), allow_nan=False, **kwargs)
