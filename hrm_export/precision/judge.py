"""Judge a reduced-precision candidate at the decision level, against budgets/parity.toml rows of its precision.

Both sides run composed, one sample day at a time (batch 1): days → H → (γ, β) → L over the whole session, each
side feeding itself, so an H error reaches the decisions the way it would in production. Measured per run:
* action agreement: argmax of action_logits at every minute, counted only where the reference's top-1 − top-2
  logit margin is ≥ near_tie_margin (a flip inside a near-tie is a coin toss in the reference too);
* halt agreement: the ACT halting minute (first minute with q_halt > q_continue) per day, with verify's rule: a
  disagreement is excused only when the reference's |q_halt − q_continue| at the earlier of the two minutes is
  below near_tie_margin (the reference itself was on the fence there); the largest shift in minutes is reported;
* quantity max |Δ|; FiLM γ/β and Q-values as tensor budgets (max_abs, max_rel with rel_floor, cosine);
* the logit margin of every minute, for the error-vs-margin plot.
Rows missing from the budget file fail (a precision without budgets is not verified).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from hrm_export.verify.metrics import decision_stats, merge, top2_margin

Runner = Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]]  # (module, feeds) -> outputs

TENSOR_ROWS = (("h_module", "film_gamma"), ("h_module", "film_beta"), ("composed", "action_logits"),
               ("composed", "quantity"), ("composed", "q_values"))


@dataclass
class Check:
    name: str
    value: float
    limit: float | None
    passed: bool
    kind: str  # "min" | "max"


@dataclass
class Judgement:
    precision: str
    source: str  # what computed the candidate numbers, e.g. "ort-cpu bf16-emulated graph" or "torch bf16"
    days: int
    minutes: int
    checks: list[Check] = field(default_factory=list)
    margins: np.ndarray | None = None  # (N·T,) reference top-1 − top-2 logit margin
    logit_errors: np.ndarray | None = None  # (N·T,) max |Δ logit| per minute
    flips: np.ndarray | None = None  # (N·T,) bool: argmax differs

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    def to_dict(self) -> dict:
        return {"precision": self.precision, "source": self.source, "days": self.days, "minutes": self.minutes,
                "passed": self.passed, "checks": [c.__dict__ for c in self.checks]}


def run_composed(run: Runner, days: np.ndarray, minutes: np.ndarray, cross_attention: bool = False) -> dict:
    """Outputs of H then L for each day (batch 1), stacked: film_gamma (N, C), action_logits (N, T, 3), ..."""
    keys = ("film_gamma", "film_beta", "action_logits", "quantity", "q_values")
    acc: dict[str, list] = {k: [] for k in keys}
    for i in range(len(days)):
        h = run("h_module", {"days": days[i:i + 1]})
        feeds = {"minutes": minutes[i:i + 1], "film_gamma": h["film_gamma"], "film_beta": h["film_beta"]}
        if cross_attention:
            feeds["h_tokens"] = h["h_tokens"]
        out = {**h, **run("l_module", feeds)}
        for k in keys:
            acc[k].append(np.asarray(out[k], dtype=np.float32))
    return {k: np.concatenate(v) for k, v in acc.items()}


def budget_precision(precision: str) -> str:
    """The budgets/parity.toml table that judges an artifact precision (the emulation is judged as bf16)."""
    return "bf16" if precision == "bf16-emulated" else precision


def judge(ref: dict, cand: dict, budgets, precision: str, source: str) -> Judgement:
    """Compare composed outputs of the candidate with the reference's, against `budgets` rows of `precision`."""
    n, t = ref["action_logits"].shape[:2]
    j = Judgement(precision, source, n, t)
    precision = budget_precision(precision)
    for scope, out in TENSOR_ROWS:
        b = budgets.tensor(precision, scope, out)
        r, c = ref[out].astype(np.float64), cand[out].astype(np.float64)
        err = np.abs(c - r)
        floor = b.rel_floor if b else budgets.rel_floor
        cos = float((r * c).sum() / max(np.linalg.norm(r) * np.linalg.norm(c), 1e-30))
        if not np.any(r) and not np.any(c):
            cos = 1.0  # both exactly zero (an untrained FiLM): identical
        for name, value, limit, kind in (
            ("max_abs", float(err.max()), b and b.max_abs, "max"),
            ("max_rel", float((err / np.maximum(np.abs(r), floor)).max()), b and b.max_rel, "max"),
            ("cosine", cos, b and b.min_cosine, "min"),
        ):
            j.checks.append(_check(f"{scope}.{out}.{name}", value, limit, kind, has_row=b is not None))
    d = budgets.decision(precision) if precision in budgets.data and "decision" in budgets.data[precision] else None
    tie = d.near_tie_margin if d else 1e-3
    logits_r, logits_c = ref["action_logits"].reshape(-1, 3), cand["action_logits"].reshape(-1, 3)
    margins = top2_margin(torch.from_numpy(logits_r)).numpy()  # (N·T,) reference top-1 − top-2
    flips = logits_r.argmax(-1) != logits_c.argmax(-1)
    heads = ("action_logits", "quantity", "q_values")
    s = merge([decision_stats({k: torch.from_numpy(cand[k]) for k in heads},
                              {k: torch.from_numpy(ref[k]) for k in heads}, tie)])
    judged_days = s["sessions"] - s["halt_ties"]
    j.checks += [
        _check("decision.action_agreement", s["action_agreement"], d and d.action_agreement, "min", d is not None),
        _check("decision.halt_agreement", s["halt_agreement"], d and d.halt_agreement, "min", d is not None),
        _check("decision.quantity_max_abs", s["quantity_max_abs"], d and d.quantity_max_abs, "max", d is not None),
        Check("decision.clear_minutes", s["action_judged"] / s["minutes"], None, True, "info"),
        Check("decision.halt_judged_days", judged_days / s["sessions"], None, True, "info"),
        Check("decision.halt_max_shift_minutes", float(s["halt_max_shift"]), None, True, "info"),
    ]
    j.margins, j.flips = margins, flips
    j.logit_errors = np.abs(logits_r - logits_c).max(-1)
    return j


def _check(name: str, value: float, limit: float | None, kind: str, has_row: bool) -> Check:
    if not has_row:
        return Check(name, value, None, False, kind)  # no budget row for this precision: not verified
    if limit is None:
        return Check(name, value, None, True, kind)  # the row leaves this measure ungated
    ok = value <= limit if kind == "max" else value >= limit
    return Check(name, value, float(limit), bool(ok), kind)


def onnx_runner(paths: dict[str, str]) -> Runner:
    """A Runner over ONNX files on ORT's CPU provider (sessions opened once)."""
    import onnxruntime as ort

    from hrm_export.backends.ort_backend import session_options

    so = session_options(ort)
    sess = {m: ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"]) for m, p in paths.items()}

    def run(module: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        s = sess[module]
        names = [o.name for o in s.get_outputs()]
        wanted = {i.name for i in s.get_inputs()}
        return dict(zip(names, s.run(names, {k: v for k, v in feeds.items() if k in wanted}), strict=True))

    return run


def backend_runner(backend) -> Runner:
    """A Runner over an activated hrm_export Backend (torch or ort)."""
    import torch

    def run(module: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = backend.infer(module, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()})
        return {k: v.detach().float().cpu().numpy() for k, v in out.items()}

    return run
