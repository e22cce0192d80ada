"""The parity comparator: run results against the budgets → a Report (rows per scope/output/case, decision gates,
verdict). `hrm-export verify`, `precision verify` and `precision plan` all judge through here (docs/parity.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

from hrm_export.core.budgets import Budgets, DecisionBudget, TensorBudget
from hrm_export.core.parity.metrics import decision_stats, merge, tensor_errors
from hrm_export.core.parity.result import RunResult
from model_src.errors import NonFiniteOutputError

HEAD_SCOPES = ("composed", "streaming")  # the scopes whose heads feed the decision gates


@dataclass
class Row:
    scope: str
    case: str
    output: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    max_scaled: float
    cosine: float
    budget: TensorBudget | None
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def judge_tensors(result: RunResult, budgets: Budgets, precision: str) -> list[Row]:
    rows = []
    for name, ref in result.ref.items():
        budget = budgets.tensor(precision, result.scope, name)
        err = tensor_errors(result.cand[name], ref, budget.rel_floor if budget else budgets.rel_floor)
        if budget is None:
            fails = [f"no budget [{precision}.{result.scope}.{name}]"]
        else:
            fails = [f"{k} {err[k]:.3g} > {lim:.3g}" for k, lim in (("max_abs", budget.max_abs),
                                                                    ("max_rel", budget.max_rel),
                                                                    ("max_scaled", budget.max_scaled))
                     if lim is not None and not err[k] <= lim]
            if budget.min_cosine is not None and not err["cosine"] >= budget.min_cosine:
                fails.append(f"cosine {err['cosine']:.9f} < {budget.min_cosine}")
        if err["nonfinite"]:
            fails.append(f"{err['nonfinite']} non-finite values")
        rows.append(Row(result.scope, result.label, name, tuple(ref.shape), err["max_abs"], err["max_rel"],
                        err["max_scaled"], err["cosine"], budget, fails))
    return rows


def judge_decisions(results: list[RunResult], budget: DecisionBudget) -> tuple[dict, list[str]]:
    per_case, fails = [], []
    for r in results:
        if r.scope not in HEAD_SCOPES:
            continue
        try:
            per_case.append(decision_stats(r.cand, r.ref, budget.near_tie_margin))
        except NonFiniteOutputError as e:  # no decision exists to compare: that case fails the gate outright
            fails.append(f"{r.scope} @ {r.label}: {e}")
    stats = merge(per_case)
    if stats:
        if stats["action_agreement"] < budget.action_agreement:
            fails.append(f"action agreement {stats['action_agreement']:.6f} < {budget.action_agreement}")
        if stats["halt_agreement"] < budget.halt_agreement:
            fails.append(f"halting-minute agreement {stats['halt_agreement']:.6f} < {budget.halt_agreement}")
        if budget.quantity_max_abs is not None and not stats["quantity_max_abs"] <= budget.quantity_max_abs:
            fails.append(f"quantity error {stats['quantity_max_abs']:.3g} > {budget.quantity_max_abs}")
    return stats, fails


@dataclass
class Report:
    meta: dict
    rows: list[Row] = field(default_factory=list)
    decision: dict = field(default_factory=dict)
    decision_budget: DecisionBudget | None = None
    decision_failures: list[str] = field(default_factory=list)
    heads: list[RunResult] = field(default_factory=list)  # kept when a caller plots per-minute errors

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows) and not self.decision_failures and bool(self.rows)

    def failures(self) -> list[str]:
        out = [f"{r.scope}.{r.output} @ {r.case}: {'; '.join(r.failures)}" for r in self.rows if not r.passed]
        return out + [f"decision: {f}" for f in self.decision_failures]

    def summary(self) -> list[dict]:
        """Worst case per scope × output."""
        groups: dict[tuple[str, str], list[Row]] = {}
        for r in self.rows:
            groups.setdefault((r.scope, r.output), []).append(r)
        out = []
        for (scope, output), rows in groups.items():
            worst = max(rows, key=lambda r: r.max_abs)
            b = rows[0].budget
            out.append({"scope": scope, "output": output, "cases": len(rows), "max_abs": worst.max_abs,
                        "worst_case": worst.case, "max_rel": max(r.max_rel for r in rows),
                        "max_scaled": max(r.max_scaled for r in rows),
                        "min_cosine": min(r.cosine for r in rows), "passed": all(r.passed for r in rows),
                        "budget": None if b is None else {"max_abs": b.max_abs, "max_rel": b.max_rel,
                                                          "max_scaled": b.max_scaled, "min_cosine": b.min_cosine,
                                                          "rel_floor": b.rel_floor}})
        return out

    def to_dict(self) -> dict:
        return {
            "passed": self.passed, **self.meta, "summary": self.summary(), "failures": self.failures(),
            "decision": {**self.decision,
                         "budget": self.decision_budget.model_dump() if self.decision_budget else None},
            "rows": [{"scope": r.scope, "case": r.case, "output": r.output, "shape": list(r.shape),
                      "max_abs": _num(r.max_abs), "max_rel": _num(r.max_rel), "max_scaled": _num(r.max_scaled),
                      "cosine": r.cosine,
                      "passed": r.passed, "failures": r.failures} for r in self.rows],
        }

    def __rich__(self) -> Group:
        m = self.meta
        facts = [f"{k}: {m[k]}" for k in ("bundle", "inputs", "seed") if k in m]
        if "elapsed_s" in m:
            facts.append(f"{m['elapsed_s']:.1f} s")
        head = Text.assemble(("parity ", "bold"), f"{m.get('backend', '?')}/{m.get('precision', '?')} vs "
                             f"{m.get('reference', 'torch/fp32')} — " + " · ".join(facts))
        t = Table(title="Per output, worst case over all profile points")
        for col in ("scope", "output", "cases", "max abs", "budget", "max rel", "budget", "max/rms", "budget",
                    "min cosine", "worst case", ""):
            t.add_column(col, justify="left" if col in ("scope", "output", "worst case") else "right")
        for s in self.summary():
            b = s["budget"] or {}
            t.add_row(s["scope"], s["output"], str(s["cases"]), f"{s['max_abs']:.2e}", _lim(b.get("max_abs")),
                      f"{s['max_rel']:.2e}", _lim(b.get("max_rel")), f"{s['max_scaled']:.2e}",
                      _lim(b.get("max_scaled")), f"{s['min_cosine']:.9f}", s["worst_case"],
                      "[green]ok[/]" if s["passed"] else "[red]FAIL[/]")
        parts = [head, t]
        d, b = self.decision, self.decision_budget
        if d and b:
            dt = Table(title=f"Decisions (composed + streaming heads; near tie: margin < {b.near_tie_margin})")
            for col in ("gate", "value", "budget", "detail"):
                dt.add_column(col)
            dt.add_row("action argmax agreement", f"{d['action_agreement']:.6f}", f"≥ {b.action_agreement}",
                       f"{d['action_agree']}/{d['action_judged']} minutes, {d['ties']} near ties excluded")
            dt.add_row("halting minute agreement", f"{d['halt_agreement']:.6f}", f"≥ {b.halt_agreement}",
                       f"{d['halt_agree']}/{d['sessions']} sessions, {d['halt_ties']} near ties excused, "
                       f"largest shift {d['halt_max_shift']} min")
            dt.add_row("quantity max abs error", f"{d['quantity_max_abs']:.2e}", f"≤ {_lim(b.quantity_max_abs)}",
                       "quantity units")
            mt = Table(title="Logit error vs the reference's top-1 − top-2 margin")
            for col in ("margin bin", "minutes", "argmax flips", "max |Δ logit|"):
                mt.add_column(col, justify="right")
            for bn in d["margin_bins"]:
                mt.add_row(f"[{bn['lo']:g}, {bn['hi']:g})", str(bn["minutes"]), str(bn["flips"]),
                           f"{bn['max_logit_err']:.2e}")
            parts += [dt, mt]
        for f in self.failures()[:20]:
            parts.append(Text(f"  ✗ {f}", style="red"))
        parts.append(Text("PASSED" if self.passed else "FAILED", style="bold green" if self.passed else "bold red"))
        return Group(*parts)


def _lim(v) -> str:
    return "—" if v is None else f"{v:g}"


def _num(v: float):
    return v if math.isfinite(v) else str(v)
