"""`hrm-export triton`: write a Triton model repository from a bundle, serve it locally, load-test it.

    hrm-export triton DIR --out REPO [--max-batch N] [--instances N]    the repository (default command)
    hrm-export triton serve REPO                                        tritonserver on 127.0.0.1 until Ctrl-C
    hrm-export triton bench REPO                                        hrm_day + hrm_stream load, decisions checked
"""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from hrm_export.cli.options import ArtifactDirArg, JsonOpt, OutDirOpt
from hrm_export.core.errors import EXIT_GATE_FAILED, UserError


class _WriteByDefault(TyperGroup):
    """`hrm-export triton DIR ...` is `hrm-export triton write DIR ...`; serve and bench are named."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["write", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_WriteByDefault, no_args_is_help=True, help="Triton Inference Server: write a model "
                  "repository (`hrm-export triton DIR --out REPO`), serve it locally, load-test it.")

RepoArg = Annotated[Path, typer.Argument(help="Model repository written by `hrm-export triton DIR --out REPO`.")]
EnvOpt = Annotated[Path | None, typer.Option(
    "--env", help="The server's virtual environment with nvidia-pytriton (default: $HRM_TRITON_ENV, else "
    ".venv-triton of the project, built by `make triton-env`).")]


MaxBatchOpt = Annotated[int | None, typer.Option(
    "--max-batch", help="Cap on every model's max_batch_size (default: the largest batch of the profiles).")]
InstancesOpt = Annotated[int, typer.Option("--instances", help="Model instances per device (per GPU).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="What hrm_day/hrm_stream run: fp32, int8-cpu, ...")]
BackendOpt = Annotated[str, typer.Option(
    "--backend", help="Runtime backend of hrm_day/hrm_stream: auto, tensorrt, ort-cuda, ort-cpu.")]
IdleOpt = Annotated[float, typer.Option(
    "--stream-idle", help="Seconds without a request after which a live sequence and its cache are freed.")]
SequencesOpt = Annotated[int, typer.Option(
    "--max-sequences", help="Live sequences (instruments) hrm_stream holds at once.")]
StreamBatchOpt = Annotated[int, typer.Option(
    "--stream-batch", help="Requests of different sequences joined into one hrm_stream execution.")]
PlansOpt = Annotated[list[Path] | None, typer.Option(
    "--plans-from", help="Another bundle of the same weights whose TensorRT plans (another GPU) join the repository; "
    "repeat per GPU model.")]


@app.command()
def write(
    bundle: ArtifactDirArg,
    out: OutDirOpt,
    max_batch: MaxBatchOpt = None,
    instances: InstancesOpt = 1,
    precision: PrecisionOpt = "fp32",
    backend: BackendOpt = "auto",
    stream_idle: IdleOpt = 300.0,
    max_sequences: SequencesOpt = 1024,
    stream_batch: StreamBatchOpt = 8,
    plans_from: PlansOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace REPO if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a Triton model repository: per-module ONNX Runtime (and TensorRT) models, hrm_day and hrm_stream.

    Every config.pbtxt takes its inputs and outputs from the manifest. The repository is assembled beside REPO
    and renamed into place.

    Example: hrm-export triton engines/default --out triton-repo --max-batch 64 --instances 2
    """
    from hrm_export.triton import RepositoryOptions, write_repository

    opts = RepositoryOptions(max_batch=max_batch, instances=instances, precision=precision, backend=backend,
                             stream_idle_s=stream_idle, max_sequences=max_sequences, stream_batch=stream_batch,
                             plan_bundles=tuple(plans_from or ()))
    written = write_repository(bundle, out, opts, force=force)
    if as_json:
        print(json.dumps({"repository": str(written.path), "models": written.models}, indent=2))
        return
    table = Table(title=f"Triton repository {written.path}")
    table.add_column("model")
    table.add_column("platform / backend")
    for name, platform in written.models.items():
        table.add_row(name, platform)
    console = Console()
    console.print(table)
    console.print(f"try it here: hrm-export triton serve {written.path}   (docs/triton.md: the official container "
                  "on GPUs)", highlight=False)


@app.command()
def serve(
    repo: RepoArg,
    env: EnvOpt = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="Load only these models (default: every Python-backend model).")] = None,
    log: Annotated[Path | None, typer.Option("--log", help="Server log file (default: a temp file).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Verbose server log.")] = False,
) -> None:
    """Serve REPO on 127.0.0.1 (free ports) with the tritonserver bundled in nvidia-pytriton, until Ctrl-C.

    That build has only the Python backend, so hrm_day and hrm_stream are served (over ONNX Runtime CPU);
    the per-module ONNX Runtime / TensorRT models need the official container (docs/triton.md).

    Example: hrm-export triton serve triton-repo
    """
    from hrm_export.triton.server import LocalServer

    console = Console(stderr=True)
    server = LocalServer(repo, env=env, models=model, log=log, verbose=verbose)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops the server like Ctrl-C
    try:
        server.start()
        console.print(f"[green]serving[/] {', '.join(server.models)} from {server.repo} (pid {server.pid})\n"
                      f"  HTTP {server.http_url}   gRPC {server.grpc_url}   metrics {server.metrics_url}\n"
                      f"  log {server.log}   Ctrl-C stops it", highlight=False)
        code = server.proc.wait()
        console.print(f"[red]tritonserver exited ({code})[/]; log {server.log}", highlight=False)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("stopping", highlight=False)
    finally:
        server.stop()


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


@app.command()
def bench(
    repo: RepoArg,
    url: Annotated[str | None, typer.Option(
        "--url", help="host:port of a running server (its --protocol port); default: start one on REPO.")] = None,
    protocol: Annotated[str, typer.Option("--protocol", help="grpc or http.")] = "grpc",
    clients: Annotated[int, typer.Option("--clients", min=1, help="Concurrent hrm_day clients.")] = 8,
    requests: Annotated[int, typer.Option("--requests", min=1, help="hrm_day requests per client.")] = 500,
    streams: Annotated[int, typer.Option("--streams", min=1, help="Interleaved hrm_stream sequences.")] = 8,
    minutes: Annotated[int, typer.Option("--minutes", min=1, help="Minutes streamed per sequence.")] = 390,
    env: EnvOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load-test hrm_day and hrm_stream on loopback; every decision is compared with the Python runtime.

    Prints throughput, p50/p99 latency, errors and decision equality; exit 3 on any error or differing decision.

    Example: hrm-export triton bench triton-repo --clients 8 --requests 500 --streams 8 --minutes 390
    """
    from hrm_export.triton.client import PROTOCOLS
    from hrm_export.triton.load import LoadOptions, run_load
    from hrm_export.triton.repository import python_model_parameters
    from hrm_export.triton.server import LocalServer

    if protocol not in PROTOCOLS:
        raise UserError(f"--protocol {protocol!r} is not a Triton protocol", hint=f"use one of {', '.join(PROTOCOLS)}")
    console = Console(stderr=True)
    params = python_model_parameters(repo, "hrm_day")
    opts = LoadOptions(clients=clients, requests=requests, streams=streams, minutes=minutes, protocol=protocol)
    bundle = repo / "hrm_day" / "1" / params.get("bundle", "bundle")
    reference = {"backend": params.get("backend", "auto"), "precision": params.get("precision", "fp32")}
    if url is None:
        with LocalServer(repo, env=env, models=["hrm_day", "hrm_stream"]).start() as server:
            console.print(f"server pid {server.pid} on {server.grpc_url if protocol == 'grpc' else server.http_url}",
                          highlight=False)
            report = run_load(server.grpc_url if protocol == "grpc" else server.http_url, bundle, opts, **reference)
    else:
        report = run_load(url, bundle, opts, **reference)
    report["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report["cores"] = os.cpu_count()
    failed = any(report[p]["errors"] or report[p]["decisions_differ"] for p in ("hrm_day", "hrm_stream"))
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    if failed:
        raise typer.Exit(EXIT_GATE_FAILED)


def _print_report(report: dict) -> None:
    parts = ("hrm_day", "hrm_stream")
    table = Table(title=f"Triton load over {report['protocol']}: {report['days']} days, {report['day_minutes']} "
                  f"minutes a day; reference {report['reference']}")
    table.add_column("")
    for part in parts:
        table.add_column(part, justify="right")
    rows = {
        "requests": lambda r: str(r["requests"]),
        "errors": lambda r: str(r["errors"]),
        "wall s": lambda r: f"{r['wall_s']:.1f}",
        "throughput": lambda r: f"{r['throughput_per_s']:.1f} {r['unit']}/s",
        "in-process (same run)": lambda r: f"{r['in_process_per_s']} {r['unit']}/s",
        "Triton / in-process": lambda r: f"×{r['ratio_to_in_process']}",
        "latency p50 / p99 ms": lambda r: f"{r['p50_ms']} / {r['p99_ms']}",
        "Triton executions": lambda r: str(r["triton_executions"]),
        "decisions differ": lambda r: str(r["decisions_differ"]),
        "max |Δ| confidence, quantity": lambda r: f"{r['max_abs_diff_confidence_quantity']:.1e}",
    }
    for label, cell in rows.items():
        table.add_row(label, *(cell(report[p]) for p in parts))
    console = Console()
    console.print(table)
    for part in parts:
        if report[part]["first_error"]:
            console.print(f"[red]{part} first error:[/] {report[part]['first_error']}", highlight=False)
    ok = all(not report[p]["errors"] and not report[p]["decisions_differ"] for p in parts)
    console.print("[green]PASSED[/]" if ok else "[red]FAILED[/]")
