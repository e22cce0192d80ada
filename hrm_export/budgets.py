"""Parity budgets (budgets/parity.toml): tolerances keyed by precision × scope × output, and decision gates.

Scopes are the modules (h_module, l_module, l_step) plus "composed" and "streaming"; a precision is a top-level
table, so adding bf16 or int8 budgets is adding rows. Formulas: docs/parity.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from hrm_export.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

DEFAULT_BUDGETS = Path(__file__).resolve().parent.parent / "budgets" / "parity.toml"
TENSOR_KEYS = {"max_abs", "max_rel", "min_cosine", "rel_floor"}
DECISION_KEYS = {"near_tie_margin", "action_agreement", "halt_agreement", "quantity_max_abs"}


@dataclass(frozen=True)
class TensorBudget:
    max_abs: float | None = None
    max_rel: float | None = None
    min_cosine: float | None = None
    rel_floor: float = 1e-2


@dataclass(frozen=True)
class DecisionBudget:
    near_tie_margin: float = 1e-3
    action_agreement: float = 1.0
    halt_agreement: float = 1.0
    quantity_max_abs: float | None = None


class Budgets:
    def __init__(self, data: dict, path: Path):
        self.data, self.path = data, path
        self.rel_floor = float(data.get("defaults", {}).get("rel_floor", 1e-2))

    def tensor(self, precision: str, scope: str, output: str) -> TensorBudget | None:
        """The budget of one output, or None when the file has no row for it (reported as a failure)."""
        row = self.data.get(precision, {}).get(scope, {}).get(output)
        if row is None:
            return None
        unknown = set(row) - TENSOR_KEYS
        if unknown:
            raise UserError(f"{self.path}: [{precision}.{scope}.{output}] has unknown keys {sorted(unknown)}",
                            hint=f"use {sorted(TENSOR_KEYS)}")
        return TensorBudget(**{"rel_floor": self.rel_floor, **{k: float(v) for k, v in row.items()}})

    def decision(self, precision: str) -> DecisionBudget:
        row = self.data.get(precision, {}).get("decision")
        if row is None:
            raise UserError(f"{self.path}: no [{precision}.decision] table", hint=self._hint(precision))
        unknown = set(row) - DECISION_KEYS
        if unknown:
            raise UserError(f"{self.path}: [{precision}.decision] has unknown keys {sorted(unknown)}",
                            hint=f"use {sorted(DECISION_KEYS)}")
        return DecisionBudget(**{k: float(v) for k, v in row.items()})

    def require(self, precision: str) -> None:
        if precision not in self.data:
            raise UserError(f"{self.path}: no budgets for precision {precision!r} "
                            f"(has {sorted(k for k in self.data if k != 'defaults')})", hint=self._hint(precision))

    def _hint(self, precision: str) -> str:
        return f"add [{precision}.<module>.<output>] and [{precision}.decision] rows (docs/parity.md)"


def load_budgets(path: str | Path | None = None) -> Budgets:
    path = Path(path) if path else DEFAULT_BUDGETS
    if not path.is_file():
        raise UserError(f"{path}: no such budget file", hint="pass --budgets PATH or restore budgets/parity.toml")
    try:
        return Budgets(tomllib.loads(path.read_text()), path)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})", hint="fix the file; see budgets/parity.toml") from None
