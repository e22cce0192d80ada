"""The precision section of a parity report: every reduced-precision candidate judged at the decision level.

Candidates and where their numbers come from (each report names it as its backend):
* bf16 — "ort-cpu bf16-emulated graph": the bf16 ONNX with each bf16 tensor rounded, run by ONNX Runtime CPU;
* bf16 — "torch bf16": the PyTorch reference with bf16 weights/activations (its own fp32 islands), the loss a
  native bf16 run has;
* int8 — "ort-cpu int8 Q/DQ graph": the TensorRT-bound Q/DQ graph as written, on ONNX Runtime CPU;
* int8-cpu — "ort-cpu int8-cpu graph": the dynamic-INT8 CPU artifact.
All against the PyTorch fp32 reference on the same sample days, each judged by the parity comparator into a
Report (its backend names the source); `plot_error_vs_margin` writes the PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hrm_export.core.ort_session import onnx_infer
from hrm_export.core.parity.metrics import top2_margin
from hrm_export.core.parity.report import Report
from hrm_export.precision.judge import judge, run_days
from model_src.decisions import actions

SOURCES = {"bf16-emulated": "ort-cpu bf16-emulated graph", "int8": "ort-cpu int8 Q/DQ graph",
           "int8-cpu": "ort-cpu int8-cpu graph"}


def precision_report(manifest, days: np.ndarray, minutes: np.ndarray, budgets,
                     precisions: Sequence[str] = ("bf16", "int8", "int8-cpu"), torch_bf16: bool = True,
                     reference: dict | None = None) -> list[Report]:
    """Judge each precision present in the bundle (bf16 via its emulated graph and, if asked, PyTorch bf16)."""
    from hrm_export.backends.torch_backend import TorchBackend
    from hrm_export.core.reference import reference_from_manifest

    cross = manifest.config.cross_attention
    if reference is None:
        with TorchBackend(reference_from_manifest(manifest), "fp32") as ref_backend:
            reference = run_days(ref_backend.infer_numpy, days, minutes, cross)
    present = {a.precision for a in manifest.artifacts}
    out = []
    for p in precisions:
        for artifact_precision in (("bf16-emulated",) if p == "bf16" else (p,)):
            if artifact_precision not in present:
                continue
            paths = {m: manifest.artifact_path(manifest.find(m, artifact_precision)) for m in ("h_module", "l_module")}
            cand = run_days(onnx_infer(paths), days, minutes, cross)
            out.append(judge(reference, cand, budgets, artifact_precision, SOURCES[artifact_precision]))
        if p == "bf16" and torch_bf16:
            with TorchBackend(reference_from_manifest(manifest), "bf16") as b:
                cand = run_days(b.infer_numpy, days, minutes, cross)
            out.append(judge(reference, cand, budgets, "bf16", "torch bf16"))
    return out


def per_minute_errors(report: Report) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From a judged report's kept heads: the reference's logit margin, max |Δ logit| and argmax flips per
    minute, each (N·T,)."""
    ref = torch.cat([r.ref["action_logits"].reshape(-1, 3) for r in report.heads]).double()
    cand = torch.cat([r.cand["action_logits"].reshape(-1, 3) for r in report.heads]).double()
    flips = actions(ref.numpy())[0] != actions(cand.numpy())[0]
    return top2_margin(ref).numpy(), (ref - cand).abs().amax(-1).numpy(), flips


def plot_error_vs_margin(reports: Sequence[Report], path: str | Path) -> Path:
    """Max |Δ action logit| per minute against the reference's top-1 − top-2 margin; flips marked in red."""
    from hrm_export.core.plotting import pyplot, save_png

    plt = pyplot()
    fig, axes = plt.subplots(1, len(reports), figsize=(4.2 * len(reports), 3.6), squeeze=False, sharey=True)
    for ax, j in zip(axes[0], reports, strict=True):
        margins, errors, flips = per_minute_errors(j)
        ok = ~flips
        ax.scatter(margins[ok], np.maximum(errors[ok], 1e-7), s=2, alpha=0.3, label="same action")
        ax.scatter(margins[flips], np.maximum(errors[flips], 1e-7), s=12, c="red", label="flipped")
        tie = j.decision_budget.near_tie_margin if j.decision_budget else None
        if tie:
            ax.axvline(tie, color="gray", ls="--", lw=1, label=f"near-tie {tie:g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{j.meta['precision']}\n{j.meta['backend']}", fontsize=9)
        ax.set_xlabel("reference logit margin (top-1 − top-2)")
        ax.legend(fontsize=7, loc="upper left")
    axes[0][0].set_ylabel("max |Δ action logit| per minute")
    fig.suptitle(f"error vs logit margin — {reports[0].meta['days']} days × {reports[0].meta['minutes']} minutes, "
                 "batch 1",
                 fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
