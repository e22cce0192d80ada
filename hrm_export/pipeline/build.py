"""`run_build`: the whole pipeline behind `hrm-export build` — export, precision variants, TensorRT plans,
then the verify and bench summaries — reporting each step as done, SKIPPED (with why and what to do) or
failed.

The pipeline is a composition of the verbs, as the CLI is, so it sits above them (the import contract in
pyproject.toml: cli → pipeline → verbs → runtime/backends/tensorrt → core). Without TensorRT every other
artifact is still produced and the TensorRT step is SKIPPED with the install command; `--require-tensorrt`
turns that into a user error raised before anything is written.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hrm_export.bench.suite import SuiteOptions, run_bench
from hrm_export.core.manifest import Manifest
from hrm_export.core.profiles import load_profile
from hrm_export.core.reference import reference_from_manifest
from hrm_export.export import DEFAULT_OPSET
from hrm_export.export.bundle import export_bundle
from hrm_export.pipeline import DONE, FAILED, SKIPPED
from hrm_export.precision.variants import make_variants
from hrm_export.tensorrt.builder import compute_capability, install_command, require_tensorrt, tensorrt_version
from hrm_export.tensorrt.options import BuildOptionError, BuildOptions
from hrm_export.tensorrt.plans import build_job, plan_jobs
from hrm_export.verify.bundle import verify_bundle


@dataclass
class Step:
    name: str
    status: str
    detail: str
    seconds: float = 0.0


@dataclass
class BuildReport:
    out: str
    steps: list[Step] = field(default_factory=list)
    artifacts: list[dict] = field(default_factory=list)
    parity: list[dict] = field(default_factory=list)  # one row per verified backend/precision (parity_row)
    gate_failed: bool = False  # verify (or bench) ran and a budget was missed

    def add(self, name: str, status: str, detail: str, t0: float) -> Step:
        step = Step(name, status, detail, round(time.perf_counter() - t0, 1))
        self.steps.append(step)
        return step

    def to_dict(self) -> dict:
        return asdict(self)


def run_build(out: str | Path, checkpoint: Path | None, opts: BuildOptions, progress=None, log=print,
              verify: bool = True, bench: bool = True, opset: int | None = None,
              verify_profiles: tuple[str, ...] = ()) -> BuildReport:
    """Run every step into `out`; `progress` (rich Progress) shows long steps, `log` prints one-line notes.
    `verify` / `bench` False skip the closing summaries (reported SKIPPED); `verify_profiles` limits the verify
    to those profiles' points (default: all)."""
    opts.validate()
    _check_verify_profiles(opts, verify_profiles)
    if opts.require_tensorrt:  # before any file is written: exit 1, nothing half-made
        require_tensorrt()
        compute_capability()  # a GPU to build on
    out = Path(out)
    report = BuildReport(str(out))

    t0 = time.perf_counter()
    manifest = _export(out, checkpoint, opts, progress, log, opset)
    report.add("export", DONE, f"{len(manifest.artifacts)} ONNX files (fp32), profiles "
               f"{', '.join(manifest.profiles)}", t0)

    t0 = time.perf_counter()
    manifest = _precision(manifest, opts, report, t0, log)

    t0 = time.perf_counter()
    jobs, missing = plan_jobs(manifest, opts)  # shape checks run here, with or without TensorRT
    version = tensorrt_version()
    if version is None:
        report.add("tensorrt", SKIPPED, f"TensorRT not installed; {len(jobs)} plan(s) shape-checked, none built. "
                   f"Install: {install_command()}; then rerun with --require-tensorrt", t0)
    elif not _gpu():
        report.add("tensorrt", SKIPPED, f"TensorRT {version} is installed but no CUDA GPU is visible; "
                   f"{len(jobs)} plan(s) shape-checked, none built. Build on the GPU the plans will serve on", t0)
    elif not jobs:
        report.add("tensorrt", SKIPPED, "no ONNX artifact to build from: " + "; ".join(missing), t0)
    else:
        for job in jobs:
            log(f"tensorrt: building {job.plan_path} (profiles {', '.join(job.profiles)})")
            build_job(manifest, job, opts, progress)
        extra = f"; not built: {'; '.join(missing)}" if missing else ""
        report.add("tensorrt", DONE, f"{len(jobs)} plan(s) with TensorRT {version}{extra}", t0)

    built = sorted({a.precision for a in Manifest.load(out).artifacts if a.format == "trt-plan"})
    if verify:
        _verify(out, report, built, log, verify_profiles)
    else:
        report.add("verify", SKIPPED, "--no-verify", time.perf_counter())
    if bench:
        _bench(out, report, built, log)
    else:
        report.add("bench", SKIPPED, "--no-bench", time.perf_counter())
    manifest = Manifest.load(out)
    report.artifacts = [{"module": a.module, "precision": a.precision, "format": a.format, "path": a.path}
                        for a in manifest.artifacts]
    return report


def _check_verify_profiles(opts: BuildOptions, wanted: tuple[str, ...]) -> None:
    """Before anything is written: the closing verify can only take points of profiles the bundle will have."""
    names = [load_profile(p).name for p in opts.profiles]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise BuildOptionError(f"--verify-profile {','.join(unknown)}: not among the --profile of this build",
                               hint=f"choose from {', '.join(names)}")


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _export(out: Path, checkpoint: Path | None, opts: BuildOptions, progress, log, opset: int | None) -> Manifest:
    from hrm_export.core.specs import EXPORTED

    task = progress.add_task("export ONNX", total=len(EXPORTED)) if progress is not None else None

    def done(name: str, seconds: float) -> None:
        log(f"export: {name}.onnx in {seconds:.1f} s")
        if task is not None:
            progress.advance(task)

    # With variants to make, the manifest is saved once they exist (_precision): never an fp32-only one first.
    manifest = export_bundle(checkpoint, out, profiles=list(opts.profiles), opset=opset or DEFAULT_OPSET,
                             on_module=done, write_manifest=not _variants(opts))
    if task is not None:
        progress.remove_task(task)
    return manifest


def _variants(opts: BuildOptions) -> list[str]:
    wanted = [p for p in opts.precisions if p != "fp32"]
    if "int8" in wanted:  # the INT8 graph ONNX Runtime CPU runs fast (integer ops) beside the Q/DQ one for TensorRT
        wanted.append("int8-cpu")
    return wanted


def _precision(manifest: Manifest, opts: BuildOptions, report: BuildReport, t0: float, log) -> Manifest:
    wanted = _variants(opts)
    if not wanted:
        report.add("precision", DONE, "fp32 only: nothing to convert", t0)
        return manifest
    log(f"precision: making {', '.join(wanted)} ONNX variants")
    try:
        make_variants(manifest, wanted, on_step=lambda msg: log(f"precision: {msg}"))
    except ImportError as e:  # a piece it needs (ModelOpt, the synthetic market, ...) is not installed here
        report.add("precision", SKIPPED, f"{', '.join(wanted)} variants not made: {e}", t0)
        manifest.save()  # the fp32 bundle, complete as it stands
        return Manifest.load(manifest.dir)
    manifest = Manifest.load(manifest.dir)
    made = [a for a in manifest.artifacts if a.format == "onnx" and a.precision != "fp32"]
    report.add("precision", DONE, f"{len(made)} ONNX variant(s): "
               f"{', '.join(sorted({a.precision for a in made})) or 'none'}", t0)
    return manifest


def _verify(out: Path, report: BuildReport, built: list[str], log, profiles: tuple[str, ...]) -> None:
    """On ONNX Runtime CPU (runs everywhere): fp32, and the CPU-runnable stand-ins of the variants made
    (bf16-emulated for bf16; int8 Q/DQ runs as is); then every precision that has TensorRT plans."""
    t0 = time.perf_counter()
    made = {a.precision for a in Manifest.load(out).artifacts if a.format == "onnx"}
    cpu = [p for p in ("fp32", "bf16-emulated", "int8", "int8-cpu") if p in made]
    lines, failed = [], False
    for backend, precision in [("ort-cpu", p) for p in cpu] + [("tensorrt", p) for p in built]:
        log(f"verify: {backend}/{precision} against the PyTorch reference")
        result = verify_bundle(out, backend=backend, precision=precision, n_random=0, only_profiles=profiles,
                               on_step=lambda msg: log(f"verify: {msg}"))
        passed = _passed(result)
        failed |= passed is False
        lines.append(f"{backend}/{precision} {_summary(result)}")
        report.parity.append(parity_row(backend, precision, result))
    report.gate_failed |= failed
    report.add("verify", FAILED if failed else DONE, "; ".join(lines), t0)


def _bench(out: Path, report: BuildReport, built: list[str], log) -> None:
    """A quick latency summary (batch 1, short sweeps, 0.5 s per cell): PyTorch and ONNX Runtime CPU at fp32,
    ONNX Runtime CPU at int8-cpu, plus TensorRT at each built precision; the full table is `hrm-export bench`."""
    t0 = time.perf_counter()

    manifest = Manifest.load(out)
    backends = ("torch", "ort-cpu") + (("tensorrt",) if built else ())
    cpu_int8 = ("int8-cpu",) if any(a.precision == "int8-cpu" for a in manifest.artifacts) else ()
    opts = SuiteOptions(backends=backends, precisions=("fp32", *cpu_int8, *built), quick=True,
                         device="cuda" if built else "cpu")
    log(f"bench: quick latency of {', '.join(backends)} (batch 1)")
    result = run_bench(manifest, reference_from_manifest(manifest), opts,
                       on_cell=lambda label, total: log(f"bench: {label}"))
    day = [c for c in result.get("cells", []) if c.get("module") == "day" and c.get("batch") == 1]
    parts = [f"{c.get('backend', '?')}/{c.get('precision', '?')} {c['timing']['p50_ms']:.1f} ms" for c in day]
    where = result.get("machine", {}).get("cpu") or opts.device
    detail = f"p50 per trading day (H + L over 390 minutes, batch 1) on {where}: " + ", ".join(parts) if parts \
        else f"{len(result.get('cells', []))} cells measured"
    report.add("bench", DONE, detail + "; full table: hrm-export bench", t0)


def parity_row(backend: str, precision: str, result) -> dict:
    """The closing parity table's row: FiLM γ/β and the decisions first, then the worst tensor anywhere."""
    worst = {(s["scope"], s["output"]): s["max_abs"] for s in result.summary()}
    d = result.decision or {}
    top = max(result.summary(), key=lambda s: s["max_abs"], default=None)
    return {
        "backend": backend, "precision": precision, "passed": result.passed, "checks": len(result.rows),
        "film_gamma_max_abs": worst.get(("h_module", "film_gamma")),
        "film_beta_max_abs": worst.get(("h_module", "film_beta")),
        "logits_max_abs": max((v for (sc, o), v in worst.items() if o == "action_logits"), default=None),
        "q_values_max_abs": max((v for (sc, o), v in worst.items() if o == "q_values"), default=None),
        "action_agree": f"{d.get('action_agree', 0)}/{d.get('action_judged', 0)}",
        # judged sessions, as the gate counts them: disagreements inside the reference's near tie are excused
        "halt_agree": f"{d.get('halt_agree', 0)}/{d.get('sessions', 0) - d.get('halt_ties', 0)}"
                      + (f" +{d['halt_ties']} tie" if d.get("halt_ties") else ""),
        "quantity_max_abs": d.get("quantity_max_abs"),
        "worst": None if top is None else f"{top['scope']}.{top['output']} {top['max_abs']:.1e}",
    }


def _passed(result) -> bool | None:
    v = result.get("passed") if isinstance(result, dict) else getattr(result, "passed", None)
    return v if isinstance(v, bool) else None


def _summary(result) -> str:
    """'PASSED (31 checks, worst l_module.action_logits max_abs 2.1e-06)' from a verify Report-like result."""
    passed = _passed(result)
    verdict = {True: "PASSED", False: "FAILED", None: "done"}[passed]
    rows = getattr(result, "rows", None)
    if not rows:
        return verdict
    worst = max(rows, key=lambda r: getattr(r, "max_abs", 0.0))
    failures = result.failures() if hasattr(result, "failures") else []
    first = f"; first failure: {failures[0]}" if failures else ""
    return (f"{verdict} ({len(rows)} checks, worst {worst.scope}.{worst.output} max_abs {worst.max_abs:.1e}"
            f"{first})")
