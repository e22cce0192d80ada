"""`hrm-export precision`: make bf16/INT8 variants of a bundle, plan which layers stay fp32, time the CPU INT8."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hrm_export.cli.options import ArtifactDirArg, JsonOpt, TrustOpt
from hrm_export.cli.output import json_text
from hrm_export.precision import DEFAULT_METHOD, METHODS

app = typer.Typer(help="bf16 / INT8 variants of a bundle: make them, plan their fp32 islands, time the CPU INT8.",
                  no_args_is_help=True)

KeepOpt = Annotated[list[str] | None, typer.Option(
    "--keep-fp32", help="Glob over PyTorch module names kept in fp32 (repeatable), e.g. 'l_module.blocks.*.attn'.")]
MethodOpt = Annotated[str, typer.Option("--calibration-method", help=f"INT8 ranges: {' | '.join(METHODS)}.")]
SizeOpt = Annotated[int, typer.Option("--calibration-size", help="Sample days used to calibrate INT8.")]
CacheOpt = Annotated[Path | None, typer.Option(
    "--calibration-cache", help="Calibration npz to reuse (default: DIR/calibration.npz if present, else built).")]
DaysOpt = Annotated[int, typer.Option("--days", help="Held-out sample days to judge on (batch 1 each).")]


def _calibration(bundle: Path, cache: Path | None):
    from hrm_export.precision.calibration import Calibration
    from hrm_export.precision.variants import CALIBRATION_FILE

    if cache is not None:
        return Calibration.load(cache)
    default = bundle / CALIBRATION_FILE
    return Calibration.load(default) if default.exists() else None


@app.command()
def make(
    bundle: ArtifactDirArg,
    precision: Annotated[str, typer.Option("--precision", help="Comma-separated: bf16, int8, int8-cpu.")] = "bf16,int8",
    keep_fp32: KeepOpt = None,
    calibration_size: SizeOpt = 32,
    calibration_method: MethodOpt = DEFAULT_METHOD,
    calibration_cache: CacheOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write <module>.<precision>.onnx beside the bundle's fp32 graphs and record them in manifest.json.

    bf16 also writes bf16-emulated (runs on ONNX Runtime CPU). int8 is explicit symmetric Q/DQ for TensorRT,
    calibrated on sample days (L-module fed the γ/β its H-module computes); int8-cpu is dynamic INT8 for
    ONNX Runtime CPU. Example: hrm-export precision make engines/default --precision bf16,int8,int8-cpu
    """
    from hrm_export.core.manifest import Manifest
    from hrm_export.precision.variants import make_variants

    console = Console(stderr=True)
    manifest = Manifest.load(bundle, trust=trust)
    with console.status("precision variants") as status:
        manifest = make_variants(manifest, [p.strip() for p in precision.split(",") if p.strip()],
                                 calibration=_calibration(bundle, calibration_cache), keep_fp32=keep_fp32 or (),
                                 calibration_size=calibration_size, method=calibration_method,
                                 on_step=lambda msg: status.update(msg))
    made = [a for a in manifest.artifacts if a.precision != "fp32"]
    if as_json:
        print(json_text([a.to_dict() for a in made], indent=2))
        return
    table = Table("module", "precision", "file", "made by", "kept fp32")
    for a in made:
        kept = a.made_by.get("excluded_modules") or a.made_by.get("fp32_linears") or []
        table.add_row(a.module, a.precision, a.path, a.made_by.get("tool", ""), ", ".join(kept))
    Console().print(table)


@app.command()
def plan(
    bundle: ArtifactDirArg,
    precision: Annotated[str, typer.Option("--precision", help="bf16 or int8.")] = "int8",
    keep_fp32: KeepOpt = None,
    days: DaysOpt = 16,
    calibration_method: MethodOpt = DEFAULT_METHOD,
    calibration_cache: CacheOpt = None,
    budgets: Annotated[Path | None, typer.Option("--budgets", help="Parity budget file.")] = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Bisect which Linear layers must stay fp32 for bf16/int8 to meet the parity budgets; name them by module.

    Each probe runs H → L composed on held-out sample days (seed 1; calibration uses seed 0) on ONNX Runtime CPU
    (bf16 through its emulated graph) against the PyTorch fp32 reference. Feed the answer back with
    --keep-fp32. Example: hrm-export precision plan engines/default --precision int8
    """
    from hrm_export.core.budgets import load_budgets
    from hrm_export.core.manifest import Manifest
    from hrm_export.core.market_inputs import sample_days
    from hrm_export.precision.planner import plan as run_plan

    console = Console(stderr=True)
    manifest = Manifest.load(bundle, trust=trust)
    d, m = sample_days(manifest.config, days, seed=1)
    cal = _calibration(bundle, calibration_cache) if precision == "int8" else None

    def show(probe: dict) -> None:
        if not as_json:
            mark = "[green]pass[/]" if probe["passed"] else f"[red]fail[/] {', '.join(probe['failed'][:3])}"
            console.print(f"  probe keep={probe['keep'] or '[]'}: {mark}", highlight=False)

    result = run_plan(manifest, precision, d, m, load_budgets(budgets), keep_fp32 or (), calibration_method, cal,
                      on_probe=show)
    if as_json:
        print(json_text(result.to_dict(), indent=2))
        return
    out = Console()
    if not result.feasible:
        out.print(f"[red]{precision}: fails its budgets even with every Linear in fp32[/] — the loss is elsewhere "
                  "(attention, norms, casts) or the budget is tighter than the precision allows")
    elif result.keep_fp32:
        out.print(f"{precision}: keep in fp32 → {' '.join(result.keep_fp32)}")
        out.print(f"  use: --keep-fp32 {' --keep-fp32 '.join(result.keep_fp32)}")
    else:
        out.print(f"{precision}: every Linear can run in {precision} within budget")
    out.print(f"  {len(result.probes)} probes over {len(result.units)} Linear layers, {days} days, "
              f"final: {'PASSED' if result.final and result.final.passed else 'FAILED'}")


@app.command("bench-cpu")
def bench_cpu(
    bundle: ArtifactDirArg,
    precision: Annotated[str, typer.Option("--precision", help="Comma-separated precisions to time.")] =
    "fp32,int8-cpu",
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 1,
    runs: Annotated[int, typer.Option("--runs", help="Timed runs per module and precision.")] = 20,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Time fp32 vs int8-cpu on ONNX Runtime CPU (median/p90 ms, full 390-minute day, interleaved runs).

    Example: hrm-export precision bench-cpu engines/default --precision fp32,int8-cpu,int8
    """
    from hrm_export.core.machine import machine_summary as machine
    from hrm_export.core.manifest import Manifest
    from hrm_export.core.market_inputs import sample_days
    from hrm_export.precision.cpu_bench import bench

    manifest = Manifest.load(bundle, trust=trust)
    d, m = sample_days(manifest.config, batch, seed=2)
    timings = bench(manifest, [p.strip() for p in precision.split(",")], batch=batch, days=d, minutes=m, runs=runs)
    if as_json:
        print(json_text({"machine": machine(), "backend": "ort-cpu", "timings": [t.to_dict() for t in timings]},
                         indent=2))
        return
    table = Table("module", "precision", "batch", "minutes", "median ms", "p90 ms", "vs fp32",
                  title=f"ONNX Runtime CPU — {machine()} — at least {runs} interleaved runs each")
    base = {t.module: t.median_ms for t in timings if t.precision == "fp32"}
    for t in timings:
        speed = f"{base[t.module] / t.median_ms:.2f}×" if t.module in base else ""
        table.add_row(t.module, t.precision, str(t.batch), str(t.minutes or "—"), f"{t.median_ms:.1f}",
                      f"{t.p90_ms:.1f}", speed)
    Console().print(table)


@app.command()
def verify(
    bundle: ArtifactDirArg,
    days: DaysOpt = 16,
    png: Annotated[Path | None, typer.Option("--png", help="Write the error-vs-logit-margin plot here.")] = None,
    budgets: Annotated[Path | None, typer.Option("--budgets", help="Parity budget file.")] = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Judge the bundle's bf16 (emulated graph and PyTorch bf16), int8 and int8-cpu against their budgets.

    Composed H → L runs on held-out sample days (seed 1), batch 1, against the PyTorch fp32 reference; each row
    says which engine produced it. Exit 3 if a budget is missed.
    Example: hrm-export precision verify engines/default --png engines/default/precision.png
    """
    from hrm_export.core.budgets import load_budgets
    from hrm_export.core.errors import EXIT_GATE_FAILED
    from hrm_export.core.manifest import Manifest
    from hrm_export.core.market_inputs import sample_days
    from hrm_export.precision.report import plot_error_vs_margin, precision_report

    manifest = Manifest.load(bundle, trust=trust)
    b = load_budgets(budgets)
    d, m = sample_days(manifest.config, days, seed=1)
    with Console(stderr=True).status("judging bf16 / int8 / int8-cpu"):
        reports = precision_report(manifest, d, m, b)
    if png and reports:
        plot_error_vs_margin(reports, png)
    passed = bool(reports) and all(r.passed for r in reports)
    if as_json:
        print(json_text({"passed": passed, "reports": [r.to_dict() for r in reports]}, indent=2))
    else:
        out = Console()
        for r in reports:
            out.print(r)
        out.print(f"{len(reports)} candidates, {days} days × {m.shape[1]} minutes, batch 1 — "
                  + ("[green]PASSED[/]" if passed else "[red]FAILED[/]"))
    if not passed:
        raise typer.Exit(EXIT_GATE_FAILED)
