"""`hrm-export bench`: the latency table — per module, per backend × precision, against PyTorch eager fp32."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from hrm_export.bench import BACKENDS, DEFAULT_BACKENDS, PRECISIONS
from hrm_export.cli.options import ArtifactDirArg, JsonOpt, TrustOpt
from hrm_export.cli.output import json_text
from hrm_export.core.errors import EXIT_GATE_FAILED, UserError
from hrm_export.core.parsing import split_ints, split_list

BackendOpt = Annotated[str, typer.Option("--backend", "-b", help=f"Comma-separated backends: {', '.join(BACKENDS)}. "
                                         "Unavailable ones are listed with the reason. torch/fp32 always runs; "
                                         "torch-compile (torch.compile, minutes of compiling) only when named.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help=f"Comma-separated precisions: {', '.join(PRECISIONS)}.")]
BatchOpt = Annotated[str, typer.Option("--batch", help="Comma-separated batch sizes (days or symbols per call).")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write a PNG: latency against minutes per backend.")]
QuickOpt = Annotated[bool, typer.Option("--quick", help="Batch 1 only, short sweeps, 0.5 s per cell (~1-2 min).")]
BudgetsOpt = Annotated[Path | None, typer.Option("--budgets", help="Latency budgets TOML "
                                                  "(default hrm_export/budgets/latency.toml).")]
CellSecondsOpt = Annotated[float, typer.Option("--seconds", help="Timed seconds per cell; iterations adapt to it.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu or cuda[:N]. Default: cuda if present, else cpu.")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="Intra-op threads for torch and ONNX Runtime.")]
DetailOpt = Annotated[bool, typer.Option("--detail", help="Also print every cell: warm-up, iterations, p50..max.")]
MarkdownOpt = Annotated[Path | None, typer.Option("--markdown", help="Also write the tables as Markdown to this file.")]


def bench(
    bundle: ArtifactDirArg,
    backend: BackendOpt = ",".join(DEFAULT_BACKENDS),
    precision: PrecisionOpt = ",".join(PRECISIONS),
    batch: BatchOpt = "1,8,128",
    plot: PlotOpt = None,
    quick: QuickOpt = False,
    budgets: BudgetsOpt = None,
    seconds: CellSecondsOpt = 2.0,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    detail: DetailOpt = False,
    markdown_out: MarkdownOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure latency, throughput and memory per module and backend × precision, against targets.

    Every available backend × precision runs side by side with PyTorch eager fp32 in the same run (ratios), then
    the figures are held against hrm_export/budgets/latency.toml.

    Cells: H-module (64 days), L-module (390 minutes, and a sweep 1..390), 256-minute windows, the streaming
    L-step (one new minute after t cached ones), conditioning + heads (PyTorch sub-timing) and the per-day total
    (H + L 390 + heads), at each --batch. Iterations adapt to --seconds per cell. Exits 3 after the full report
    when a target for this device class is missed.

    Example: hrm-export bench engines/default --batch 1,8 --plot bench.png
    """
    import torch

    from hrm_export.bench import bench_bundle
    from hrm_export.bench.report import markdown, print_report
    from hrm_export.bench.suite import SuiteOptions

    opts = SuiteOptions(backends=split_list(backend, "backend", BACKENDS),
                        precisions=split_list(precision, "precision", PRECISIONS),
                        batches=split_ints(batch, "batch"), budget_s=seconds, quick=quick,
                        device=device or ("cuda" if torch.cuda.is_available() else "cpu"), threads=threads)
    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {opts.device}: this torch has no CUDA device", hint="use --device cpu")
    console = Console(stderr=True)
    if not console.is_terminal:  # a log file (e.g. on a lent GPU machine): one timestamped line per cell
        report = bench_bundle(bundle, opts, budgets, on_cell=lambda label, _: console.log(f"bench {label}"),
                              trust=trust)
    else:
        with Progress(TextColumn("[bold]bench[/] {task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("starting", total=None)
            report = bench_bundle(bundle, opts, budgets,
                                  on_cell=lambda label, _: bar.update(task, description=label), trust=trust)
    if plot:
        from hrm_export.bench.plot import plot_latency

        report["plot"] = str(plot_latency(report, plot))
    if markdown_out:
        from model_src.atomic import atomic_write_text

        atomic_write_text(markdown_out, markdown(report))
    if as_json:
        print(json_text(report, indent=2))
    else:
        print_report(report, detail=detail)
        if plot:
            Console().print(f"[green]wrote[/] {plot}")
    if not report["gate"]["passed"]:
        raise typer.Exit(EXIT_GATE_FAILED)
