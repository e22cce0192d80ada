"""`hrm-export run`: replay a recorded day through the runtime and print the decision timeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hrm_export.cli.options import ArtifactDirArg, JsonOpt, TrustOpt

DaysOpt = Annotated[Path, typer.Option(
    "--days", help="Look-back tokens: .npy/.npz (D, F_day) or (B, D, F_day); or daily bars .csv/.parquet.")]
MinutesOpt = Annotated[Path, typer.Option(
    "--minutes", help="Session tokens: .npy/.npz (T, F_min) or (B, T, F_min); or minute bars .csv/.parquet.")]
BackendOpt = Annotated[str, typer.Option(
    "--backend", "-b", help="auto (fastest available: tensorrt > ort-cuda > ort-cpu > torch), tensorrt, ort-cuda, "
    "ort-cpu or torch.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="Artifact precision: fp32, bf16, int8, int8-cpu.")]
ProfileOpt = Annotated[str | None, typer.Option(
    "--profile", "-p", help="Shape profile to run under (default: the first one the artifacts were built for).")]
StepOpt = Annotated[int, typer.Option("--step", min=1, help="Minutes per push when streaming.")]
FullOpt = Annotated[bool, typer.Option("--full", help="One full-session pass (run_day) instead of streaming pushes.")]
DateOpt = Annotated[str | None, typer.Option("--date", help="With bar files: the session to replay (default: last).")]


def run(
    bundle: ArtifactDirArg,
    days: DaysOpt,
    minutes: MinutesOpt,
    backend: BackendOpt = "auto",
    precision: PrecisionOpt = "fp32",
    profile: ProfileOpt = None,
    step: StepOpt = 1,
    full: FullOpt = False,
    date: DateOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay one day through the runtime: start_day on --days, push --minutes in order, print every decision.

    The bundle is checked before the first inference (hashes, I/O signature, profile, versions) and the
    backend that runs is named. Streaming is the default (what live trading does); --full runs the whole
    session in one pass. With --json: one JSON line per minute and instrument, then a summary line.

    Example: hrm-export run engines/default --days days.npy --minutes minutes.npy --backend ort-cpu
    """
    from hrm_export.runtime import HRMRuntime
    from hrm_export.runtime.replay import load_day, replay

    console = Console(stderr=True)
    opts = {"profile": profile} if profile else {}
    with HRMRuntime.open(bundle, backend=backend, precision=precision, trust=trust, **opts) as rt:
        day_tokens, minute_tokens, day = load_day(days, minutes, date, lookback=rt.limits.days)
        console.print(f"[bold]run[/] {bundle} on {rt.backend.describe()} ({rt.reason}), profile {rt.limits.profile!r}",
                      highlight=False)
        columns = (TextColumn("[bold]push[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, disable=as_json or full) as bar:
            task = bar.add_task("minutes", total=minute_tokens.shape[1])
            timeline = replay(rt, day_tokens, minute_tokens, day=day, stream=not full, step=step,
                              on_push=lambda n: bar.update(task, advance=n))
        stage = "run_day" if full else "push"
        latency = rt.monitor.as_dict()["stages"][stage]
    summary = {"bundle": str(bundle), "backend": rt.backend_name, "precision": rt.precision, "why": rt.reason,
               "instruments": timeline.batch, "minutes": timeline.minutes, "mode": "full" if full else "stream",
               "halt_minute": timeline.halt_minute.tolist(),
               f"{stage}_ms": {k: round(latency[k], 4) for k in ("p50_ms", "p99_ms", "max_ms")}}
    if as_json:
        for row in timeline.rows():
            print(json.dumps(row))
        print(json.dumps({"summary": summary}))
        return
    table = Table(title=f"decisions — {day}")
    for col in ("minute", "instrument", "action", "confidence", "quantity", "q_halt", "q_continue", "halted"):
        table.add_column(col, justify="left" if col == "action" else "right")
    for r in timeline.rows():
        table.add_row(str(r["minute"]), str(r["instrument"]), r["action"], f"{r['confidence']:.3f}",
                      f"{r['quantity']:.3f}", f"{r['q_halt']:+.3f}", f"{r['q_continue']:+.3f}",
                      "[bold]HALT[/]" if r["halted"] else "")
    out = Console()
    out.print(table)
    lat = summary[f"{stage}_ms"]
    out.print(f"{summary['backend']}/{summary['precision']}: {stage} p50 {lat['p50_ms']:.3f} ms, p99 "
              f"{lat['p99_ms']:.3f} ms over {timeline.minutes} minutes × {timeline.batch} instrument(s); "
              f"halt minute per instrument {summary['halt_minute']} (-1: no halt)", highlight=False)
