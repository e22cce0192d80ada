"""Precision planner: which Linear layers must stay in fp32 for a precision to meet its parity budget.

Units are the Linear layers of the H- and L-module graphs, named by PyTorch module (`l_module.blocks.3.attn.qkv`);
keeping a unit in fp32 applies to l_module and l_step alike (they share weights). The search is a bisection
(delta-debugging style): if reducing everything fails and keeping every unit passes, split the candidates in
halves, keep whichever half alone suffices, and recurse; when both halves are needed, search each with the other
kept. Each probe is a composed run (H → L, batch 1) on held-out sample days judged against the parity budgets.

Probes are cheap to build: bf16 candidates are a graph pass; INT8 candidates start from one fully quantized
graph (one calibration) and restore the kept layers' fp32 inputs, dropping their Q/DQ pairs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hrm_export.core.errors import UserError, require
from hrm_export.core.ort_session import onnx_infer
from hrm_export.core.parity.report import Report
from hrm_export.precision import DEFAULT_METHOD
from hrm_export.precision.judge import judge, run_days
from hrm_export.precision.scopes import matches, weight_matmuls

ORT_INSTALL = "pip install 'hrm-export[ort]'"
PLANNED = ("h_module", "l_module")  # l_step follows l_module's plan


@dataclass
class Plan:
    precision: str
    units: list[str]  # every Linear considered
    keep_fp32: list[str]  # the minimal set found (module names)
    probes: list[dict] = field(default_factory=list)  # {keep: [...], passed, failed: [...]}
    final: Report | None = None
    feasible: bool = True

    def to_dict(self) -> dict:
        return {"precision": self.precision, "units": self.units, "keep_fp32": self.keep_fp32,
                "feasible": self.feasible, "probes": self.probes, "final": self.final.to_dict() if self.final else None}


class _Prober:
    """Builds and judges one candidate per keep-set; caches results by keep-set."""

    def __init__(self, manifest, precision: str, base_keep: Sequence[str], days, minutes, budgets, method: str,
                 calibration, workdir: Path, ref: dict):
        onnx = require("onnx", ORT_INSTALL)
        self.onnx, self.precision, self.base_keep = onnx, precision, tuple(base_keep)
        self.days, self.minutes, self.budgets, self.ref, self.workdir = days, minutes, budgets, ref, workdir
        self.cross = manifest.config.cross_attention
        self.fp32 = {m: onnx.load(str(manifest.artifact_path(manifest.find(m, "fp32")))) for m in PLANNED}
        self.fp32_paths = {m: manifest.artifact_path(manifest.find(m, "fp32")) for m in PLANNED}
        self.cache: dict[frozenset, Report] = {}
        self.probes: list[dict] = []
        if precision == "int8":  # one calibration, one fully quantized graph per module
            from hrm_export.precision.calibration import module_rows
            from hrm_export.precision.int8_qdq import quantize_qdq

            self.full_qdq = {}
            for m in PLANNED:
                out = workdir / f"{m}.full.int8.onnx"
                quantize_qdq(self.fp32_paths[m], out, module_rows(calibration, m), method, keep_fp32=self.base_keep)
                self.full_qdq[m] = onnx.load(str(out))

    def units(self) -> list[str]:
        names = {mod for m in PLANNED for mod in weight_matmuls(self.fp32[m]).values()}
        return sorted(n for n in names if not matches(n, self.base_keep))

    def judge(self, keep: Sequence[str]) -> Report:
        key = frozenset(keep)
        if key not in self.cache:
            paths = {m: self._candidate(m, tuple(sorted(key))) for m in PLANNED}
            cand = run_days(onnx_infer(paths), self.days, self.minutes, self.cross)
            j = judge(self.ref, cand, self.budgets, self.precision, f"ort-cpu {self._source()}")
            self.cache[key] = j
            self.probes.append({"keep": sorted(key), "passed": j.passed, "failed": j.failures()})
        return self.cache[key]

    def _source(self) -> str:
        return "bf16-emulated graph" if self.precision == "bf16" else "int8 Q/DQ graph"

    def _candidate(self, module: str, keep: tuple[str, ...]) -> Path:
        path = self.workdir / f"{module}.probe{len(self.probes)}.onnx"
        if self.precision == "bf16":
            from hrm_export.precision.bf16 import to_bf16
            from hrm_export.precision.emulate import emulate_bf16

            model = emulate_bf16(to_bf16(self.fp32[module], (*self.base_keep, *keep))[0])
        else:
            model = restore_fp32(self.full_qdq[module], self.fp32[module], keep)
        self.onnx.save_model(model, str(path))
        return path


def restore_fp32(qdq, fp32, keep: Sequence[str]):
    """The Q/DQ graph with the Linear layers of modules matching `keep` back on their fp32 inputs and weights."""
    import onnx

    model = onnx.ModelProto.FromString(qdq.SerializeToString())
    kept = {n for n, mod in weight_matmuls(fp32).items() if matches(mod, keep)}
    original = {n.name: n for n in fp32.graph.node if n.name in kept}
    fp32_inits = {i.name: i for i in fp32.graph.initializer}
    have = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if node.name in original:
            node.input[:] = original[node.name].input
            for i in node.input:
                if i in fp32_inits and i not in have:
                    model.graph.initializer.append(fp32_inits[i])
                    have.add(i)
    # The quantizer also points other readers of a quantized activation (e.g. a Shape) at its DQ output; once no
    # GEMM reads that DQ any more, give them the fp32 tensor back so the orphaned pair can go.
    producers = {o: n for n in model.graph.node for o in n.output}
    readers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    for dq in [n for n in model.graph.node if n.op_type == "DequantizeLinear"]:
        q = producers.get(dq.input[0])
        users = readers.get(dq.output[0], [])
        if q is None or q.op_type != "QuantizeLinear" or any(u.op_type in ("MatMul", "Gemm") for u in users):
            continue
        for u in users:
            u.input[:] = [q.input[0] if i == dq.output[0] else i for i in u.input]
    _drop_dead(model)
    return model


def _drop_dead(model) -> None:
    """Remove nodes whose outputs nobody reads (the orphaned Q/DQ pairs) and unused initializers."""
    from hrm_export.precision.graph import drop_unused_initializers

    while True:
        used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
        dead = [n for n in model.graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            model.graph.node.remove(n)
    drop_unused_initializers(model)


def bisect(units: Sequence[str], passes: Callable[[list[str]], bool]) -> tuple[list[str], bool]:
    """A small set of units to keep so that `passes(keep)` holds → (keep, feasible).

    Delta-debugging style: each unit in the answer is needed given the others (removing any one alone fails),
    found with O(k·log n) calls of `passes` for k needed units out of n.
    """
    units = list(units)

    def search(cands: list[str], others: list[str]) -> list[str]:
        # Invariant: keeping others + cands passes, keeping others alone fails.
        if len(cands) == 1:
            return cands
        a, b = cands[: len(cands) // 2], cands[len(cands) // 2:]
        if passes(others + a):
            return search(a, others)
        if passes(others + b):
            return search(b, others)
        need_a = search(a, others + b)
        if passes(others + need_a):
            return need_a
        return need_a + search(b, others + need_a)

    if passes([]):
        return [], True
    if not passes(units):
        return units, False
    return sorted(search(units, [])), True


def plan(manifest, precision: str, days: np.ndarray, minutes: np.ndarray, budgets, keep_fp32: Sequence[str] = (),
         method: str = DEFAULT_METHOD, calibration=None, on_probe: Callable[[dict], None] | None = None) -> Plan:
    """Bisect the Linear layers that must stay fp32 for `precision` ("bf16" | "int8") to pass its budgets."""
    from hrm_export.backends.torch_backend import TorchBackend
    from hrm_export.core.reference import reference_from_manifest
    from hrm_export.precision.int8_qdq import DEFAULT_KEEP

    if precision not in ("bf16", "int8"):
        raise UserError(f"the planner plans bf16 or int8, not {precision!r}", hint="--precision bf16|int8")
    budgets.require(precision)
    if precision == "int8" and calibration is None:
        raise UserError("int8 planning needs a calibration", hint="export with --precision int8 first "
                        "(writes calibration.npz) or pass --calibration-cache")
    base = (*DEFAULT_KEEP, *keep_fp32) if precision == "int8" else tuple(keep_fp32)
    with TorchBackend(reference_from_manifest(manifest), "fp32") as ref_backend:
        ref = run_days(ref_backend.infer_numpy, days, minutes, manifest.config.cross_attention)
    with tempfile.TemporaryDirectory(prefix="hrm-precision-plan-") as tmp:
        p = _Prober(manifest, precision, base, days, minutes, budgets, method, calibration, Path(tmp), ref)
        units = p.units()

        def passes(keep: list[str]) -> bool:
            before = len(p.probes)
            j = p.judge(keep)
            if on_probe and len(p.probes) > before:
                on_probe(p.probes[-1])
            return j.passed

        keep, feasible = bisect(units, passes)
        return Plan(precision, units, keep, p.probes, p.judge(keep), feasible)
