"""PNG of latency against minutes, one line per backend × precision: the L-module full pass over T minutes
(left) and the streaming L-step after t cached minutes (right), batch 1, p50 with a p90 band."""

from __future__ import annotations

from pathlib import Path

from hrm_export.core.plotting import pyplot, save_png


def plot_latency(report: dict, path: str | Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    panels = (("l_module", "L-module full pass, batch 1", "minutes T"),
              ("l_step", "streaming L-step (1 new minute), batch 1", "cached minutes t"))
    for ax, (module, title, xlabel) in zip(axes, panels, strict=True):
        for backend, precision in dict.fromkeys((c["backend"], c["precision"]) for c in report["cells"]):
            pts = sorted((c["seq"], c["timing"]) for c in report["cells"] if c["module"] == module
                         and c["batch"] == 1 and (c["backend"], c["precision"]) == (backend, precision))
            if not pts:
                continue
            xs = [x for x, _ in pts]
            line, = ax.plot(xs, [t["p50_ms"] for _, t in pts], marker="o", label=f"{backend}/{precision}")
            ax.fill_between(xs, [t["p50_ms"] for _, t in pts], [t["p90_ms"] for _, t in pts],
                            color=line.get_color(), alpha=0.15)
        ax.set(title=title, xlabel=xlabel, ylabel="latency p50 (ms), band to p90", yscale="log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    m = report["machine"]
    where = m["gpu"]["name"] if m.get("gpu") else f"{m['cpu']}, {m['logical_cores']} cores"
    fig.suptitle(f"hrm-export bench · {where} · {m['date'][:10]}", fontsize=10)
    return save_png(fig, path)
