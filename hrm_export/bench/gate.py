"""The latency gate: the targets of hrm_export/budgets/latency.toml held against a bench report, after the run.

The targets' schema and loader are hrm_export/core/latency_targets.py. `backend` picks whose figure counts:
  "best"               the measured backend × precision that does best on this target (optionally only
                       `precision`) — "can this machine meet it at all";
  "each"               every measured backend × precision must meet it;
  "<name>/<precision>" exactly that one.
A speed-up's baseline fields override the candidate's: {backend, precision} compares backends on the same
cell (vs PyTorch eager fp32), {module, seq} compares cells of the same backend (the streaming step against
recomputing the day).

Targets filed under a device class this run did not measure are listed as "n/a"; a target whose cell was not
measured (a skipped backend, --quick) is "not measured" — neither fails the gate, both are reported.
"""

from __future__ import annotations

from hrm_export.core.latency_targets import Target

PASS, FAIL, NOT_MEASURED, NOT_APPLICABLE = "pass", "FAIL", "not measured", "n/a"


def evaluate(report: dict, targets: list[Target]) -> dict:
    """Judge every target against the report's cells; `passed` is False if any applicable target FAILs."""
    present = {c["device_class"] for c in report["cells"]} | {report["machine"]["device_class"]}
    rows = [_judge(t, report, present) for t in targets]
    return {"present_device_classes": sorted(present), "results": rows,
            "passed": not any(r["status"] == FAIL for r in rows),
            "failed": [r["id"] for r in rows if r["status"] == FAIL]}


def _row(t: Target, status: str, measured: str = "", chosen: str = "", device_class: str = "") -> dict:
    return {"id": t.id, "source": t.source, "what": t.what, "kind": t.kind, "module": t.module, "batch": t.batch,
            "seq": t.seq, "stat": t.stat, "device_class": device_class or ",".join(t.device_class),
            "target": t.goal(), "measured": measured, "backend": chosen, "status": status}


def _judge(t: Target, report: dict, present: set[str]) -> dict:
    classes = [d for d in t.device_class if d in present]
    if not classes:
        return _row(t, NOT_APPLICABLE)
    if t.kind == "memory":
        return _judge_memory(t, report, classes[0])
    cells = [c for c in report["cells"] if c["device_class"] in classes and c["module"] == t.module
             and c["batch"] == t.batch and c["seq"] == t.seq and _selected(t, c)]
    scored = []  # (figure, higher_is_better?, cell)
    for c in cells:
        if t.kind == "latency":
            scored.append((c["timing"][f"{t.stat}_ms"], c))
        else:
            base = _baseline_cell(t, c, report)
            if base is not None:
                scored.append((base["timing"][f"{t.stat}_ms"] / c["timing"][f"{t.stat}_ms"], c))
    if not scored:
        return _row(t, NOT_MEASURED, device_class=",".join(classes))
    ok = (lambda v: v <= t.max_ms) if t.kind == "latency" else (lambda v: v >= t.min_ratio)
    fmt = (lambda v: f"{v:.2f} ms") if t.kind == "latency" else (lambda v: f"{v:.2f}×")
    if t.backend == "each":
        bad = [(v, c) for v, c in scored if not ok(v)]
        v, c = bad[0] if bad else scored[0]
        status = FAIL if bad else PASS
        chosen = _label(c) if bad else f"all {len(scored)}"
    else:
        v, c = (min if t.kind == "latency" else max)(scored, key=lambda s: s[0])
        status, chosen = (PASS if ok(v) else FAIL), _label(c)
    return _row(t, status, fmt(v), chosen, c["device_class"])


def _selected(t: Target, cell: dict) -> bool:
    if t.backend in ("best", "each"):
        return t.precision is None or cell["precision"] == t.precision
    name, _, prec = t.backend.partition("/")
    return cell["backend"] == name and (not prec or cell["precision"] == prec)


def _baseline_cell(t: Target, cell: dict, report: dict) -> dict | None:
    want = {k: cell[k] for k in ("backend", "precision", "module", "batch", "seq", "device")}
    want.update(t.baseline)
    if (want["backend"], want["precision"], want["module"], want["batch"], want["seq"]) == (
            cell["backend"], cell["precision"], cell["module"], cell["batch"], cell["seq"]):
        return None  # a cell is not its own baseline
    for c in report["cells"]:
        if all(c[k] == v for k, v in want.items()):
            return c
    return None


def _judge_memory(t: Target, report: dict, dc: str) -> dict:
    mem = report["memory"]
    if t.metric.startswith("params_mb_"):
        prec = t.metric.removeprefix("params_mb_")
        total = next(r for r in mem["parameters"] if r["part"] == "total")
        value = total["mb"][prec]
    elif t.metric == "peak_host_rss_mb_upto_batch":
        value = mem.get("peak_host_rss_mb_by_batch", {}).get(str(t.batch))
    else:
        value = mem.get(t.metric)
    if value is None:
        return _row(t, NOT_MEASURED, device_class=dc)
    return _row(t, PASS if value <= t.max_mb else FAIL, f"{value:g} MB", t.metric, dc)


def _label(cell: dict) -> str:
    return f"{cell['backend']}/{cell['precision']}"
