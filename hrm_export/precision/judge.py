"""Judge a reduced-precision candidate at the decision level, against budgets/parity.toml rows of its precision.

Both sides run composed, one sample day at a time (batch 1): days → H → (γ, β) → L over the whole session, each
side feeding itself, so an H error reaches the decisions the way it would in production. Measured per run:
* action agreement: argmax of action_logits at every minute, counted only where the reference's top-1 − top-2
  logit margin is ≥ near_tie_margin (a flip inside a near-tie is a coin toss in the reference too);
* halt agreement: the ACT halting minute (first minute with q_halt > q_continue, −1 if none) per day, counted
  only for days whose reference |q_halt − q_continue| stays ≥ near_tie_margin up to its halting minute;
* quantity max |Δ|; FiLM γ/β and Q-values as tensor budgets (max_abs, max_rel with rel_floor, cosine);
* the logit margin of every minute, for the error-vs-margin plot.
Rows missing from the budget file fail (a precision without budgets is not verified).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

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


def halting_minutes(q_values: np.ndarray) -> np.ndarray:  # (N, T, 2) -> (N,)
    halt = q_values[..., 0] > q_values[..., 1]
    return np.where(halt.any(-1), halt.argmax(-1), -1)


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
    top2 = np.sort(logits_r, axis=-1)[:, -2:]
    margins = top2[:, 1] - top2[:, 0]
    flips = logits_r.argmax(-1) != logits_c.argmax(-1)
    clear = margins >= tie
    agreement = float(1.0 - flips[clear].mean()) if clear.any() else 1.0
    j.checks.append(_check("decision.action_agreement", agreement, d and d.action_agreement, "min", d is not None))
    halt_r, halt_c = halting_minutes(ref["q_values"]), halting_minutes(cand["q_values"])
    qgap = np.abs(ref["q_values"][..., 0] - ref["q_values"][..., 1])  # (N, T)
    upto = np.where(halt_r >= 0, halt_r, t - 1)
    clear_days = np.array([qgap[i, : upto[i] + 1].min() >= tie for i in range(n)])
    halt_ok = float((halt_r == halt_c)[clear_days].mean()) if clear_days.any() else 1.0
    j.checks.append(_check("decision.halt_agreement", halt_ok, d and d.halt_agreement, "min", d is not None))
    qerr = float(np.abs(ref["quantity"] - cand["quantity"]).max())
    j.checks.append(_check("decision.quantity_max_abs", qerr, d and d.quantity_max_abs, "max", d is not None))
    j.checks.append(Check("decision.clear_minutes", float(clear.mean()), None, True, "info"))
    j.checks.append(Check("decision.clear_days", float(clear_days.mean()), None, True, "info"))
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

    so = ort.SessionOptions()
    so.log_severity_level = 3
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
