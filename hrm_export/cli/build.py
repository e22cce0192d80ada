"""`hrm-export build`: checkpoint → ONNX → precision variants → TensorRT plans → verify + bench summaries."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from hrm_export.cli.options import CheckpointOpt, JsonOpt, OutDirOpt
from hrm_export.cli.output import json_text
from hrm_export.core.errors import EXIT_GATE_FAILED
from hrm_export.core.parsing import split_list
from hrm_export.core.specs import MODULES
from hrm_export.pipeline import DONE, SKIPPED
from hrm_export.tensorrt.options import DEFAULT_PROFILES, HARDWARE_COMPATIBILITY, PRECISIONS, make_options

TRT = "TensorRT options"


def build(
    out: OutDirOpt,
    checkpoint: CheckpointOpt = None,
    precision: Annotated[str, typer.Option(
        "--precision", help=f"Comma-separated precisions to build: {', '.join(PRECISIONS)}.")] = ",".join(PRECISIONS),
    profile: Annotated[str, typer.Option(
        "--profile", "-p", help="Shape profiles (hrm_export/profiles/*.toml names or paths); each becomes one TensorRT "
        "optimization profile of every plan.")] = ",".join(DEFAULT_PROFILES),
    module: Annotated[str, typer.Option("--module", help="Modules to build plans for.")] = ",".join(MODULES),
    require_tensorrt: Annotated[bool, typer.Option(
        "--require-tensorrt", help="Fail (exit 1, nothing written) if TensorRT is not installed, instead of "
        "skipping the TensorRT step.")] = False,
    timing_cache: Annotated[Path | None, typer.Option(
        "--timing-cache", help="TensorRT timing cache file: loaded if present, written back after each plan.",
        rich_help_panel=TRT)] = None,
    error_on_timing_cache_miss: Annotated[bool, typer.Option(
        "--error-on-timing-cache-miss", help="Fail a build that would time a tactic not in --timing-cache "
        "(reproducible rebuilds).", rich_help_panel=TRT)] = False,
    workspace_mib: Annotated[int | None, typer.Option(
        "--workspace-mib", help="Builder workspace limit in MiB. Default: TensorRT's (the GPU's memory).",
        rich_help_panel=TRT)] = None,
    opt_level: Annotated[int, typer.Option(
        "--opt-level", help="Builder optimisation level 0..5 (higher: longer build, maybe faster plan).",
        rich_help_panel=TRT)] = 3,
    version_compatible: Annotated[bool, typer.Option(
        "--version-compatible", help="Plans that later TensorRT releases of the same major version can run.",
        rich_help_panel=TRT)] = False,
    hardware_compatibility_level: Annotated[str, typer.Option(
        "--hardware-compatibility-level", help=f"{', '.join(HARDWARE_COMPATIBILITY)}: ampere+ plans run on any "
        "GPU of compute capability ≥ 8.0 (slower).", rich_help_panel=TRT)] = "none",
    opset: Annotated[int | None, typer.Option(
        "--opset", help="ONNX opset of the export (default 23: fused Attention/RMSNormalization, TensorRT ≥ 10.15; "
        "18 for older TensorRT 10).", rich_help_panel=TRT)] = None,
    verify_profile: Annotated[str | None, typer.Option(
        "--verify-profile", help="Profiles whose points the closing verify covers (default: every --profile). "
        "On a CPU, 'latency' skips the batch-128 points that take most of the time.")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip the closing verify summary.")] = False,
    no_bench: Annotated[bool, typer.Option("--no-bench", help="Skip the closing quick bench.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build everything a deployment needs into DIR, with progress, and end with verify + bench summaries.

    Steps: export ONNX per module (fp32); bf16 / int8 ONNX variants; one TensorRT plan per module and precision
    (strongly typed, one optimization profile per --profile); verify; a quick bench.

    Without TensorRT the TensorRT step is SKIPPED with the install command and everything else is still made
    (exit 0); --require-tensorrt makes that an error (exit 1, nothing written). A missed parity budget exits 3.

    Example: hrm-export build --out engines/default --timing-cache engines/trt.cache
    """
    from hrm_export.pipeline.build import run_build

    opts = make_options(precision=precision, profile=profile, module=module, require_tensorrt=require_tensorrt,
                        timing_cache=timing_cache, error_on_timing_cache_miss=error_on_timing_cache_miss,
                        workspace_mib=workspace_mib, opt_level=opt_level, version_compatible=version_compatible,
                        hardware_compatibility=hardware_compatibility_level)
    err = Console(stderr=True)
    log = (lambda _msg: None) if as_json else (lambda msg: err.print(f"  {msg}", highlight=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        with Progress(SpinnerColumn(), TextColumn("[bold]build[/] {task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=err,
                      disable=as_json, transient=True) as progress:
            report = run_build(out, checkpoint, opts, progress=progress, log=log, verify=not no_verify,
                               bench=not no_bench, opset=opset,
                               verify_profiles=split_list(verify_profile, "verify-profile") if verify_profile else ())
    for w in caught:
        if issubclass(w.category, UserWarning) and "random-init" in str(w.message):
            err.print(f"[bold yellow]warning:[/] {w.message}", highlight=False)
    if as_json:
        print(json_text(report.to_dict(), indent=2))
    else:
        _print(report)
    if report.gate_failed:
        raise typer.Exit(EXIT_GATE_FAILED)


def _print(report) -> None:
    console = Console()
    table = Table(title=f"hrm-export build → {report.out}")
    for col in ("step", "status", "seconds", "detail"):
        table.add_column(col, overflow="fold")
    style = {DONE: "green", SKIPPED: "yellow"}
    for s in report.steps:
        table.add_row(s.name, f"[{style.get(s.status, 'red')}]{s.status}[/]", f"{s.seconds:.1f}", s.detail)
    console.print(table)
    if report.parity:
        console.print(_parity_table(report.parity))
    for s in report.steps:
        if s.status == SKIPPED and s.name == "tensorrt":
            console.print(f"[yellow]TensorRT step SKIPPED:[/] {s.detail}", highlight=False)
    kinds = sorted({f"{a['format']}/{a['precision']}" for a in report.artifacts})
    console.print(f"[green]bundle[/] {report.out}: {len(report.artifacts)} artifacts ({', '.join(kinds)})")


def _parity_table(rows: list[dict]) -> Table:
    """Each verified precision against the PyTorch fp32 reference: FiLM, heads, decisions, verdict (fits 80 columns)."""
    backends = {r["backend"] for r in rows}
    one_backend = len(backends) == 1
    t = Table(title="Parity vs the PyTorch fp32 reference" + (f" on {backends.pop()}" if one_backend else "")
              + ": max abs error of FiLM γ,β and the heads, worst over every point; decisions that agree."
              " bf16/INT8 logits and Q are budgeted relative to their RMS (`hrm-export verify` shows max/rms;"
              " docs/parity.md)",
              box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True)
    t.add_column("precision" if one_backend else "engine", no_wrap=True)
    for col in ("γ,β", "logits", "Q", "actions", "halts", "quantity", ""):
        t.add_column(col, justify="right", overflow="fold")  # a narrow terminal folds a cell, never drops digits
    num = lambda v: "—" if v is None else f"{v:.1e}".replace("e-0", "e-")  # noqa: E731  # 2.3e-6
    worst = lambda *vs: max((v for v in vs if v is not None), default=None)  # noqa: E731
    for r in rows:
        t.add_row(r["precision"] if one_backend else f"{r['backend']}/{r['precision']}",
                  num(worst(r["film_gamma_max_abs"], r["film_beta_max_abs"])), num(r["logits_max_abs"]),
                  num(r["q_values_max_abs"]), r["action_agree"], r["halt_agree"], num(r["quantity_max_abs"]),
                  "[green]PASS[/]" if r["passed"] else "[red]FAIL[/]")
    return t
