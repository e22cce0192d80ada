"""Judge a reduced-precision candidate at the decision level on held-out sample days, through the parity
comparator that `hrm-export verify` uses (hrm_export.core.parity): the same metrics, budgets and verdict.

Both sides run composed (core.composed), one sample day at a time (batch 1): days → H → (γ, β) → L over the
whole session, each side feeding itself, so an H error reaches the decisions the way it would in production.
Judged: FiLM γ/β as h_module rows, the heads as composed rows, and the decision gates (docs/parity.md). A
precision without budget rows fails (it is not verified).
"""

from __future__ import annotations

import numpy as np
import torch

from hrm_export.core.budgets import Budgets
from hrm_export.core.composed import composed
from hrm_export.core.ort_session import NumpyInfer
from hrm_export.core.parity.report import Report, judge_decisions, judge_tensors
from hrm_export.core.parity.result import HEADS, RunResult

FILM = ("film_gamma", "film_beta")


def run_days(infer: NumpyInfer, days: np.ndarray, minutes: np.ndarray, cross_attention: bool) -> dict:
    """Each sample day through H then L at batch 1, stacked: film_gamma (N, C), action_logits (N, T, 3), ..."""
    outs = [composed(infer, days[i:i + 1], minutes[i:i + 1], cross_attention) for i in range(len(days))]
    return {k: np.concatenate([np.asarray(o[k], np.float32) for o in outs]) for k in (*FILM, *HEADS)}


def judge(ref: dict, cand: dict, budgets: Budgets, precision: str, source: str) -> Report:
    """The candidate's outputs of `run_days` against the reference's, judged by `precision`'s budget rows."""
    n, t = ref["action_logits"].shape[:2]
    label = f"{n} days × {t} min"

    def tensors(side: dict, keys) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(side[k], np.float32)) for k in keys}

    results = [RunResult("h_module", label, {}, tensors(ref, FILM), tensors(cand, FILM)),
               RunResult("composed", label, {}, tensors(ref, HEADS), tensors(cand, HEADS))]
    rows = [row for r in results for row in judge_tensors(r, budgets, precision)]
    budget = budgets.decision(precision)
    decision, failures = judge_decisions(results, budget)
    meta = {"backend": source, "precision": precision, "reference": "torch/fp32@cpu",
            "inputs": f"{n} held-out sample days × {t} minutes, batch 1", "days": n, "minutes": t}
    return Report(meta, rows, decision, budget, failures, heads=[results[1]])
