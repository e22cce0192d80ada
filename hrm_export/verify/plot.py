"""`verify --png`: the logit error against the reference's logit margin, one bar per margin bin.

Drawn from the report's margin bins (every judged minute of the composed and streaming heads): the largest
|Δ action logit| in each bin of the reference's top-1 − top-2 margin, the argmax flips in it written over the bar,
the near-tie margin below which a flip is excused, and each bin's smallest margin as a black tick. The gap between
two logits moves by at most twice the largest logit error, so where the bar stays below half the tick, no minute in
that bin can flip.
"""

from __future__ import annotations

from pathlib import Path

from hrm_export.core.plotting import pyplot, save_png


def plot_margin_bins(decision: dict, near_tie: float, title: str, path: str | Path) -> Path:
    plt = pyplot()
    bins = [b for b in decision["margin_bins"] if b["minutes"]]
    labels = [f"[{b['lo']:g}, {b['hi']:g})" for b in bins]
    errors = [max(b["max_logit_err"], 1e-9) for b in bins]  # log axis: an exact 0 drawn at 1e-9
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    bars = ax.bar(labels, errors, color=["tab:red" if b["flips"] else "tab:blue" for b in bins])
    for bar, b in zip(bars, bins, strict=True):
        ax.annotate(f"{b['flips']} flips / {b['minutes']} min", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=7)
    for i, b in enumerate(bins):
        if b["lo"] > 0:
            ax.hlines(b["lo"], i - 0.4, i + 0.4, color="black", lw=2, label="bin's smallest margin" if i == 1 else None)
    at = sum(b["hi"] <= near_tie for b in bins) - 0.5  # between the bars either side of the near-tie margin
    ax.axvline(at, color="gray", ls="--", lw=1, label=f"near tie < {near_tie:g}: flips excused to the left")
    top = max(errors + [b["lo"] for b in bins])
    ax.set_ylim(min(errors) / 3, top * 8)  # room above the bars for the flip counts and the legend
    ax.set_yscale("log")
    ax.set_xlabel("reference logit margin (top-1 − top-2)")
    ax.set_ylabel("max |Δ action logit|")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return save_png(fig, path)
