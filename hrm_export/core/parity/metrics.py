"""The parity formulas (docs/parity.md states them once): tensor errors and trading-decision agreement.

All in float64 on CPU, so the measurement adds no error of its own. Decisions on both sides come from the one
rule, model_src.decisions; a window of minutes is judged as a session that ends at its last minute (as
`run_day` does), so a side that never sees q_halt win halts at that last minute.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from model_src.decisions import actions, halting_minutes

# Reference logit margins (top-1 minus top-2) binned for the error-vs-margin table.
MARGIN_BINS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, math.inf)


def tensor_errors(cand: Tensor, ref: Tensor, rel_floor: float, chunk: int = 1 << 22) -> dict[str, float]:
    """max_abs = max|c − r|; max_rel = max |c − r| / max(|r|, rel_floor); max_scaled = max|c − r| / rms(r);
    cosine = ⟨c, r⟩ / (‖c‖‖r‖).

    max_scaled is the worst error in units of the reference tensor's own scale: bf16 rounding and INT8 steps grow
    with an output's magnitude, so a model whose γ or logits are twice as large makes twice the absolute error
    and the same max_scaled (docs/parity.md, "Scale-free budgets").

    Chunked, so a 1 GB present_kv costs 2 × 32 MB of float64 at a time, not 4 GB.
    """
    c, r = cand.detach().cpu().flatten(), ref.detach().cpu().flatten()
    assert c.shape == r.shape, f"shape mismatch {tuple(cand.shape)} vs {tuple(ref.shape)}"
    max_abs = max_rel = dot = cc = rr = 0.0
    nonfinite = 0
    for i in range(0, c.numel(), chunk):
        ci, ri = c[i:i + chunk].double(), r[i:i + chunk].double()
        nonfinite += int((~torch.isfinite(ci)).sum())
        diff = (ci - ri).abs()
        max_abs = max(max_abs, float(diff.max()))
        max_rel = max(max_rel, float((diff / ri.abs().clamp_min(rel_floor)).max()))
        dot, cc, rr = dot + float(ci @ ri), cc + float(ci @ ci), rr + float(ri @ ri)
    if nonfinite:
        return {"max_abs": math.inf, "max_rel": math.inf, "max_scaled": math.inf, "cosine": -1.0,
                "nonfinite": nonfinite}
    norms = math.sqrt(cc) * math.sqrt(rr)
    cosine = dot / norms if norms > 0 else (1.0 if cc == rr else 0.0)
    rms = math.sqrt(rr / max(r.numel(), 1))
    max_scaled = max_abs / rms if rms > 0 else (0.0 if max_abs == 0 else math.inf)
    return {"max_abs": max_abs, "max_rel": max_rel, "max_scaled": max_scaled, "cosine": cosine, "nonfinite": 0}


def top2_margin(logits: Tensor) -> Tensor:  # (..., A) -> (...): top-1 minus top-2 logit
    top = logits.double().topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def decision_stats(cand: dict[str, Tensor], ref: dict[str, Tensor], near_tie: float) -> dict:
    """Counts for the decision gates on one (B, T) batch of heads; summed over cases by `merge`.

    Raises model_src.errors.NonFiniteOutputError when either side's heads hold NaN/Inf (no decision exists)."""
    cl, rl = cand["action_logits"].cpu(), ref["action_logits"].cpu()
    margin = top2_margin(rl)  # (B, T)
    agree = torch.from_numpy(actions(cl.float().numpy())[0] == actions(rl.float().numpy())[0])  # (B, T)
    tie = margin < near_tie
    # Halting minute: a disagreement is a tie when, at the earlier of the two minutes, the reference's
    # |q_halt − q_continue| is below the margin (the reference itself was on the fence there).
    T = rl.shape[1]
    hc, hr = (torch.from_numpy(halting_minutes(side["q_values"].float().cpu().numpy(), session_minutes=T))
              for side in (cand, ref))  # (B,) each
    first = torch.minimum(hc, hr)
    q = ref["q_values"].cpu().double()
    q_margin = (q[..., 0] - q[..., 1]).abs().gather(1, first.unsqueeze(1)).squeeze(1)
    halt_agree = hc == hr
    halt_tie = ~halt_agree & (q_margin < near_tie)
    err = (cl.double() - rl.double()).abs().amax(-1)  # (B, T) worst logit error per minute
    bins = []
    for lo, hi in zip(MARGIN_BINS[:-1], MARGIN_BINS[1:], strict=True):
        m = (margin >= lo) & (margin < hi)
        bins.append({"lo": lo, "hi": hi, "minutes": int(m.sum()), "flips": int((m & ~agree).sum()),
                     "max_logit_err": float(err[m].max()) if m.any() else 0.0})
    qerr = (cand["quantity"].cpu().double() - ref["quantity"].cpu().double()).abs()
    return {
        "minutes": int(agree.numel()), "ties": int(tie.sum()), "action_agree": int((agree & ~tie).sum()),
        "action_judged": int((~tie).sum()), "sessions": int(hr.numel()), "halt_agree": int(halt_agree.sum()),
        "halt_ties": int(halt_tie.sum()), "halt_max_shift": int((hc - hr).abs().max()) if hr.numel() else 0,
        "quantity_max_abs": float(qerr.max()) if qerr.numel() else 0.0, "margin_bins": bins,
    }


def merge(stats: list[dict]) -> dict:
    """Sum the counts of several decision_stats, worst-of for maxima."""
    if not stats:
        return {}
    out = {k: sum(s[k] for s in stats) for k in ("minutes", "ties", "action_agree", "action_judged", "sessions",
                                                 "halt_agree", "halt_ties")}
    out["quantity_max_abs"] = max(s["quantity_max_abs"] for s in stats)
    out["halt_max_shift"] = max(s["halt_max_shift"] for s in stats)  # minutes between the two halting minutes
    bins = [dict(b) for b in stats[0]["margin_bins"]]
    for s in stats[1:]:
        for b, o in zip(bins, s["margin_bins"], strict=True):
            b["minutes"] += o["minutes"]
            b["flips"] += o["flips"]
            b["max_logit_err"] = max(b["max_logit_err"], o["max_logit_err"])
    out["margin_bins"] = bins
    judged_sessions = out["sessions"] - out["halt_ties"]
    out["action_agreement"] = out["action_agree"] / out["action_judged"] if out["action_judged"] else 1.0
    out["halt_agreement"] = out["halt_agree"] / judged_sessions if judged_sessions else 1.0
    return out
