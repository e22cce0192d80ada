"""The latency gate: budgets/latency.toml held against a bench report, after the run, never during it.

A target names a figure (module, batch, sequence length, statistic) on a device class and either a ceiling
(kind = "latency", max_ms; kind = "memory", max_mb) or a speed-up over a baseline cell (kind = "speedup",
min_ratio = baseline / candidate). `backend` picks whose figure counts:
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

import sys
from dataclasses import dataclass, field
from pathlib import Path

from hrm_export.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

DEFAULT_BUDGETS = Path(__file__).resolve().parent.parent.parent / "budgets" / "latency.toml"
KINDS = ("latency", "speedup", "memory")
STATS = ("p50", "p90", "p99", "max", "mean", "min")
# peak_host_rss_mb_upto_batch: the process's peak RSS over every cell up to the target's `batch`.
MEMORY_METRICS = ("peak_host_rss_mb", "peak_host_rss_mb_upto_batch", "peak_device_mb", "params_mb_fp32",
                  "params_mb_bf16", "params_mb_int8")
PASS, FAIL, NOT_MEASURED, NOT_APPLICABLE = "pass", "FAIL", "not measured", "n/a"


@dataclass
class Target:
    id: str
    kind: str
    device_class: tuple[str, ...]
    what: str = ""
    source: str = "ours"  # "plan" (the latency/memory plan's table) | "ours" (stricter, this project's)
    module: str = ""
    backend: str = "best"
    precision: str | None = None
    batch: int = 1
    seq: int = 0
    stat: str = "p50"
    max_ms: float | None = None
    min_ratio: float | None = None
    max_mb: float | None = None
    metric: str = ""
    baseline: dict = field(default_factory=dict)

    def goal(self) -> str:
        if self.kind == "latency":
            return f"≤ {self.max_ms:g} ms"
        if self.kind == "speedup":
            return f"≥ {self.min_ratio:g}×"
        return f"≤ {self.max_mb:g} MB"


def load_budgets(path: str | Path | None = None) -> list[Target]:
    """Targets from a budgets TOML ([[target]] tables); UserError naming the entry and field on a bad file."""
    path = Path(path) if path else DEFAULT_BUDGETS
    if not path.is_file():
        raise UserError(f"budgets file {path} not found",
                        hint=f"pass --budgets FILE (the default is {DEFAULT_BUDGETS})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})", hint="see budgets/latency.toml for the format") from None
    targets = []
    for i, raw in enumerate(data.get("target", [])):
        targets.append(_target(path, i, raw))
    if not targets:
        raise UserError(f"{path}: no [[target]] entries", hint="see budgets/latency.toml for the format")
    return targets


def _target(path: Path, i: int, raw: dict) -> Target:
    where = f"{path}: target #{i + 1} ({raw.get('id', 'no id')})"
    known = set(Target.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UserError(f"{where}: unknown field(s) {unknown}", hint=f"known fields: {sorted(known)}")
    for req in ("id", "kind", "device_class"):
        if req not in raw:
            raise UserError(f"{where}: missing field {req!r}", hint="see budgets/latency.toml for the format")
    dc = raw["device_class"]
    t = Target(**{**raw, "device_class": (dc,) if isinstance(dc, str) else tuple(dc)})
    need = {"latency": ("module", "max_ms"), "speedup": ("module", "min_ratio"), "memory": ("metric", "max_mb")}
    if t.kind not in need:
        raise UserError(f"{where}: kind {t.kind!r}", hint=f"use one of {KINDS}")
    for req in need[t.kind]:
        if not getattr(t, req):
            raise UserError(f"{where}: kind {t.kind!r} needs {req!r}", hint="see budgets/latency.toml")
    if t.stat not in STATS:
        raise UserError(f"{where}: stat {t.stat!r}", hint=f"use one of {STATS}")
    if t.kind == "memory" and t.metric not in MEMORY_METRICS:
        raise UserError(f"{where}: metric {t.metric!r}", hint=f"use one of {MEMORY_METRICS}")
    return t


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
