"""Render a bench report: rich tables for people, Markdown for docs, both from the same rows.

The side-by-side table puts every backend × precision in a column and each (module, batch, length) in a row:
p50 / p99 in ms and the speed-up over PyTorch eager fp32 measured in the same run.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from hrm_export.bench.candidates import BASELINE

Rows = tuple[list[str], list[list[str]]]  # header, rows

MODULE_ORDER = ("day", "h_module", "l_module", "window", "l_step", "heads")
MODULE_NAMES = {"day": "day (H + L 390 + heads)", "h_module": "H-module", "l_module": "L-module",
                "window": "L window", "l_step": "L-step (1 new min)", "heads": "conditioning + heads"}


def _columns(report: dict) -> list[tuple[str, str]]:
    return list(dict.fromkeys((c["backend"], c["precision"]) for c in report["cells"]))


def latency_rows(report: dict) -> Rows:
    cols = _columns(report)
    keys = sorted({(c["module"], c["batch"], c["seq"], c["seq_axis"]) for c in report["cells"]},
                  key=lambda k: (MODULE_ORDER.index(k[0]), k[1], k[2]))
    by = {(c["backend"], c["precision"], c["module"], c["batch"], c["seq"]): c for c in report["cells"]}
    header = ["module", "batch", "length"] + [f"{b}/{p}" for b, p in cols]
    rows = []
    for module, batch, seq, axis in keys:
        row = [MODULE_NAMES[module], str(batch), f"{seq} {axis.replace('_', ' ')}"]
        for b, p in cols:
            c = by.get((b, p, module, batch, seq))
            if c is None:
                row.append("—")
                continue
            t = c["timing"]
            ratio = "" if (b, p) == BASELINE or c["vs_torch_fp32"] is None else f" ×{c['vs_torch_fp32']:.2f}"
            row.append(f"{_ms(t['p50_ms'])} / {_ms(t['p99_ms'])}{ratio}")
        rows.append(row)
    return header, rows


def detail_rows(report: dict) -> Rows:
    header = ["backend/precision", "module", "batch", "length", "warm-up", "iters", "p50", "p90", "p99", "max",
              "clock"]
    rows = []
    for c in report["cells"]:
        t = c["timing"]
        rows.append([f"{c['backend']}/{c['precision']}", c["module"], str(c["batch"]), str(c["seq"]),
                     str(t["warmup"]), str(t["iterations"]), _ms(t["p50_ms"]), _ms(t["p90_ms"]), _ms(t["p99_ms"]),
                     _ms(t["max_ms"]), t["clock"]])
    return header, rows


def backend_rows(report: dict) -> Rows:
    header = ["backend/precision", "status", "threads", "compile", "CUDA graphs", "transfers in/out",
              "host MB held", "note"]
    rows = []
    for b in report["backends"]:
        tr = b.get("transfers") or {}
        rows.append([f"{b['backend']}/{b['precision']}", b["status"], str(b.get("threads", "")),
                     _yn(b.get("compile")), _yn(b.get("cuda_graphs")),
                     f"{tr.get('in', '')} / {tr.get('out', '')}" if tr else "",
                     _num(b.get("resident_host_mb")), b.get("reason", "")])
    return header, rows


def throughput_rows(report: dict) -> Rows:
    header = ["backend/precision", "days/s", "at batch", "256-min windows/s", "minutes/s", "at batch"]
    rows = [[f"{r['backend']}/{r['precision']}", _num(r.get("days_per_s")), _num(r.get("days_per_s_batch")),
             _num(r.get("windows_per_s")), _num(r.get("minutes_per_s")), _num(r.get("windows_per_s_batch"))]
            for r in report["throughput"]]
    return header, rows


def memory_rows(report: dict) -> Rows:
    header = ["part", "params", "fp32 MB", "bf16 MB", "int8 MB"]
    rows = [[r["name"], f"{r['params']:,}", _num(r["mb"]["fp32"]), _num(r["mb"]["bf16"]), _num(r["mb"]["int8"])]
            for r in report["memory"]["parameters"]]
    return header, rows


def artifact_rows(report: dict) -> Rows:
    header = ["artifact", "precision", "format", "MB on disk"]
    rows = [[a["path"], a["precision"], a["format"], _num(a["mb"])] for a in report["memory"]["artifacts"]]
    return header, rows


def gate_rows(report: dict, show_na: bool = False, long: bool = False) -> Rows:
    header = ["target", "source", "device", "module", "batch", "length", "stat", "goal", "measured", "by", "status"]
    rows = []
    for r in report["gate"]["results"]:
        if r["status"] == "n/a" and not show_na:
            continue
        name = (r["what"] or r["id"]) if long else r["id"]
        rows.append([name, r["source"], r["device_class"], r["module"] or "memory",
                     str(r["batch"]) if r["module"] else "", str(r["seq"]) if r["module"] else "",
                     r["stat"] if r["module"] else "",
                     r["target"], r["measured"], r["backend"], r["status"]])
    return header, rows


def machine_line(report: dict) -> str:
    m = report["machine"]
    v = m["versions"]
    gpu = f", GPU {m['gpu']['name']} (sm {m['gpu']['compute_capability']})" if m.get("gpu") else ", no GPU"
    libs = ", ".join(f"{k} {v[k]}" for k in ("torch", "onnxruntime", "tensorrt") if v.get(k))
    return (f"{m['date']} · {m['cpu']} · {m['logical_cores']} logical / {m['physical_cores']} physical cores · "
            f"{' '.join(m['cpu_flags'])}{gpu} · device class {m['device_class']} · {libs} · "
            f"load {m['load_average_1m']}")


def busy_note(report: dict) -> str:
    """A warning when other processes shared the CPU. The end-of-run load counts the bench's own threads (up to
    one per core), so only what exceeds them is someone else's; one other busy core is already worth saying."""
    m = report["machine"]
    others = max(m["load_average_1m"], m.get("load_average_1m_end", 0) - m["logical_cores"])
    if others > max(1.0, m["logical_cores"] / 4):
        load = max(m["load_average_1m"], m.get("load_average_1m_end", 0))
        return (f"note: load average up to {load} on {m['logical_cores']} cores during the run (the bench itself "
                f"accounts for at most {m['logical_cores']}): other work shared the CPU and inflates these "
                "figures; the ratios of one run are fairer than absolute milliseconds")
    return ""


def gate_line(report: dict) -> str:
    g = report["gate"]
    counted = [r for r in g["results"] if r["status"] in ("pass", "FAIL")]
    na = sum(r["status"] == "n/a" for r in g["results"])
    nm = sum(r["status"] == "not measured" for r in g["results"])
    tail = f"; {nm} not measured, {na} for other device classes"
    if g["passed"]:
        return f"PASSED: {len(counted)} targets met on {', '.join(g['present_device_classes'])}{tail}"
    return f"FAILED: {len(g['failed'])} of {len(counted)} targets missed ({', '.join(g['failed'])}){tail}"


# -- renderers -----------------------------------------------------------------------------------------------
def print_report(report: dict, console: Console | None = None, detail: bool = False) -> None:
    console = console or Console(width=None if sys.stdout.isatty() else 200)  # piped: keep rows unwrapped
    console.print(f"[bold]hrm-export bench[/] {report['bundle']}")
    console.print(machine_line(report), highlight=False)
    if busy_note(report):
        console.print(f"[yellow]{busy_note(report)}[/]", highlight=False)
    meth = report["method"]
    console.print(f"method: {meth['clock']}; warm-up {meth['warmup']}; iterations {meth['iterations']}",
                  highlight=False)
    _table(console, "Backends", backend_rows(report))
    _table(console, "Latency, ms: p50 / p99 and × faster than torch/fp32 (same run)", latency_rows(report))
    for r in report.get("refused", []):
        console.print(f"[yellow]not run:[/] {r['backend']}/{r['precision']} {r['module']} B={r['batch']} "
                      f"length {r['seq']}: {r['reason']}", highlight=False)
    if detail:
        _table(console, "Every cell", detail_rows(report))
    _table(console, "Throughput (p50)", throughput_rows(report))
    _table(console, "Parameters by part (the plan's table)", memory_rows(report))
    if report["memory"]["artifacts"]:
        _table(console, "Artifacts", artifact_rows(report))
    mem = report["memory"]
    upto = ", ".join(f"≤ B{b}: {mb} MB" for b, mb in mem.get("peak_host_rss_mb_by_batch", {}).items())
    console.print(f"peak host RSS {mem['peak_host_rss_mb']} MB ({upto}) · peak device memory "
                  f"{mem['peak_device_mb'] if mem['peak_device_mb'] is not None else '— (no GPU)'} MB", highlight=False)
    if "gate" in report:
        _table(console, "Gate (budgets: " + report["gate"]["budgets"] + ")", gate_rows(report))
        ok = report["gate"]["passed"]
        console.print(f"[bold {'green' if ok else 'red'}]{gate_line(report)}[/]", highlight=False)


def _table(console: Console, title: str, rows: Rows) -> None:
    header, body = rows
    t = Table(title=title, title_justify="left", show_lines=False)
    for h in header:
        t.add_column(h, overflow="fold")
    for r in body:
        style = "red" if r and r[-1] == "FAIL" else None
        t.add_row(*r, style=style)
    console.print(t)


def markdown(report: dict) -> str:
    """The report's tables as Markdown (docs/benchmarks.md is written from this)."""
    parts = [f"Machine: {machine_line(report)}", "", busy_note(report), "",
             f"Method: {report['method']['clock']}; warm-up {report['method']['warmup']}; iterations "
             f"{report['method']['iterations']}. Heads: {report['method']['heads']}.", ""]
    sections = [("Backends", backend_rows(report)),
                ("Latency, ms: p50 / p99, × faster than torch/fp32 in the same run", latency_rows(report)),
                ("Throughput (p50)", throughput_rows(report)),
                ("Parameters by part", memory_rows(report)), ("Artifacts", artifact_rows(report))]
    if "gate" in report:
        sections.append(("Gate", gate_rows(report, long=True)))
    for title, (header, body) in sections:
        if not body:
            continue
        parts += [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        parts += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body]
        parts.append("")
    parts += [f"Not run: {r['backend']}/{r['precision']} {r['module']} batch {r['batch']} length {r['seq']}: "
              f"{r['reason']}" for r in report.get("refused", [])]
    if "gate" in report:
        parts.append(f"Gate: {gate_line(report)}")
    return "\n".join(parts) + "\n"


def _ms(v: float) -> str:
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def _num(v) -> str:
    return "—" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _yn(v) -> str:
    return "" if v is None else "on" if v else "off"
