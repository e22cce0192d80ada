"""Parity budgets (hrm_export/budgets/parity.toml): tolerances by precision × scope × output, and decision gates.

Scopes are the modules (h_module, l_module, l_step) plus "composed" and "streaming"; a precision is a top-level
table, so adding a precision is adding rows. The whole file is validated when it is loaded (known precisions,
scopes and outputs, numbers in range), so a bad file is one line before any work. Formulas: docs/parity.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from hrm_export.core.config_files import BUDGET_DIR, Number, read_toml, validate
from hrm_export.core.errors import ConfigFileError, UserError
from hrm_export.core.manifest import PRECISIONS
from hrm_export.core.specs import MODULES

DEFAULT_BUDGETS = BUDGET_DIR / "parity.toml"
SCOPES = (*MODULES, "composed", "streaming")
HEADS = ("action_logits", "quantity", "q_values")
OUTPUTS = {"h_module": ("h_tokens", "film_gamma", "film_beta"), "l_module": HEADS, "l_step": (*HEADS, "present_kv"),
           "composed": HEADS, "streaming": HEADS}
# An artifact precision judged by another precision's rows: the CPU emulation of the bf16 graph is bf16.
JUDGED_AS = {"bf16-emulated": "bf16"}

Positive = Annotated[Number, Field(gt=0)]
Fraction = Annotated[Number, Field(ge=0, le=1)]


class TensorBudget(BaseModel):
    """Limits on one output's error; a limit left out is not gated."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_abs: Positive | None = None
    max_rel: Positive | None = None
    max_scaled: Positive | None = None  # max|c − r| / rms(r): scale-free, for precisions whose error grows with |r|
    min_cosine: Annotated[Number, Field(gt=0, le=1)] | None = None
    rel_floor: Positive = 1e-2


class DecisionBudget(BaseModel):
    """The trading-decision gates (docs/parity.md): agreement outside near ties, halting minute, quantity."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    near_tie_margin: Annotated[Number, Field(ge=0)] = 1e-3
    action_agreement: Fraction = 1.0
    halt_agreement: Fraction = 1.0
    quantity_max_abs: Positive | None = None


class _Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rel_floor: Positive = 1e-2


@dataclass
class Budgets:
    path: Path
    rel_floor: float
    tensors: dict[tuple[str, str, str], TensorBudget]  # (precision, scope, output) -> budget
    decisions: dict[str, DecisionBudget]  # precision -> gates

    def tensor(self, precision: str, scope: str, output: str) -> TensorBudget | None:
        """The budget of one output, or None when the file has no row for it (reported as a failure)."""
        return self.tensors.get((JUDGED_AS.get(precision, precision), scope, output))

    def decision(self, precision: str) -> DecisionBudget:
        table = JUDGED_AS.get(precision, precision)
        if table not in self.decisions:
            raise UserError(f"{self.path}: no [{table}.decision] table", hint=self._hint(table))
        return self.decisions[table]

    def require(self, precision: str) -> None:
        table = JUDGED_AS.get(precision, precision)
        if table not in self.decisions and not any(k[0] == table for k in self.tensors):
            have = sorted({k[0] for k in self.tensors} | set(self.decisions))
            raise UserError(f"{self.path}: no budgets for precision {table!r} (has {have})", hint=self._hint(table))

    def _hint(self, precision: str) -> str:
        return f"add [{precision}.<module>.<output>] and [{precision}.decision] rows (docs/parity.md)"


def load_budgets(path: str | Path | None = None) -> Budgets:
    """The budget file, validated in full (ConfigFileError naming file, table and key on the first problem)."""
    path = Path(path) if path else DEFAULT_BUDGETS
    data = read_toml(path, DEFAULT_BUDGETS)
    defaults = validate(_Defaults, data.get("defaults", {}), path, "defaults", DEFAULT_BUDGETS)
    tensors, decisions = {}, {}
    for precision, table in data.items():
        if precision == "defaults":
            continue
        if precision not in PRECISIONS or precision in JUDGED_AS:
            raise ConfigFileError(f"{path}: [{precision}] is not a precision",
                                  hint=f"use one of {[p for p in PRECISIONS if p not in JUDGED_AS]} "
                                  f"({', '.join(f'{k} is judged by the {v} rows' for k, v in JUDGED_AS.items())})")
        _table(path, precision, table)
        for scope, rows in table.items():
            if scope == "decision":
                decisions[precision] = validate(DecisionBudget, rows, path, f"{precision}.decision", DEFAULT_BUDGETS)
                continue
            if scope not in SCOPES:
                raise ConfigFileError(f"{path}: [{precision}.{scope}] is not a scope",
                                      hint=f"use one of {list(SCOPES)} or 'decision'")
            _table(path, f"{precision}.{scope}", rows)
            for output, row in rows.items():
                if output not in OUTPUTS[scope]:
                    raise ConfigFileError(f"{path}: [{precision}.{scope}.{output}] is not an output of {scope}",
                                          hint=f"{scope} outputs: {list(OUTPUTS[scope])}")
                where = f"{precision}.{scope}.{output}"
                _table(path, where, row)
                tensors[(precision, scope, output)] = validate(
                    TensorBudget, {"rel_floor": defaults.rel_floor, **row}, path, where, DEFAULT_BUDGETS)
    return Budgets(path, float(defaults.rel_floor), tensors, decisions)


def _table(path: Path, where: str, value) -> None:
    if not isinstance(value, dict):
        raise ConfigFileError(f"{path}: [{where}] must be a table, got {value!r}", hint=f"see {DEFAULT_BUDGETS}")
