"""`hrm-export run`: replay a recorded day through the runtime and print the decision timeline."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from hrm_export.cli.options import ArtifactDirArg, JsonOpt, TrustOpt
from hrm_export.cli.output import json_text

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
StepOpt = Annotated[int | None, typer.Option("--step", min=1, help="Minutes per push when streaming (default 1).")]
FullOpt = Annotated[bool, typer.Option("--full", help="One full-session pass (run_day) instead of streaming pushes.")]
DateOpt = Annotated[str | None, typer.Option(
    "--date", help="Bar files: the session to replay, YYYY-MM-DD (default: the last complete session).")]
ExchangeOpt = Annotated[str | None, typer.Option(
    "--exchange", help="Bar files: the exchange's calendar, by ISO MIC (XNYS, XLON, XHKG, ...; default XNYS).")]
TzOpt = Annotated[str | None, typer.Option(
    "--tz", help="Bar files: the zone of naive timestamps, e.g. Europe/London (aware ones need none).")]
MaxFilledOpt = Annotated[float | None, typer.Option(
    "--max-filled", min=0.0, max=1.0, help="Bar files: the share of a session's minutes that may be filled "
    "(default 0.05); over it the session is refused.")]
AllowOpt = Annotated[bool, typer.Option(
    "--allow-over-limit", help="Bar files: replay a session even when more of it was filled than --max-filled "
    "allows, or it is partial (the summary says what was invented).")]
SessionMinutesOpt = Annotated[int | None, typer.Option(
    "--session-minutes", min=1, help="Token files: the session's length when the tokens stop before its close "
    "(default: the tokens are the whole session).")]


@contextlib.contextmanager
def data_warnings():
    """The data layer's WARNING lines (a suspicious gap, a session passed over), collected while the day is loaded
    and printed after it loaded; when it is refused, its one error line says it all and they are dropped. A
    refused bar file is re-raised with the command-line spelling of the fix (--allow-over-limit, --tz)."""
    import logging

    from model_src.errors import DataError

    notes: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: notes.append(record.getMessage())
    logger = logging.getLogger("model_src.data")
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield notes
    except DataError as e:
        from hrm_export.runtime.errors import InputError

        msg = str(e)
        flags = [flag for api, flag in (("allow_over_limit", "--allow-over-limit"), ("max_filled", "--max-filled"),
                                        ("tz=", "--tz ZONE"), ("exchange", "--exchange MIC")) if api in msg]
        raise InputError(msg, hint=f"on the command line: {', '.join(flags)}" if flags else "") from None
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def run(
    bundle: ArtifactDirArg,
    days: DaysOpt,
    minutes: MinutesOpt,
    backend: BackendOpt = "auto",
    precision: PrecisionOpt = "fp32",
    profile: ProfileOpt = None,
    step: StepOpt = None,
    full: FullOpt = False,
    date: DateOpt = None,
    exchange: ExchangeOpt = None,
    tz: TzOpt = None,
    max_filled: MaxFilledOpt = None,
    allow_over_limit: AllowOpt = False,
    session_minutes: SessionMinutesOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay one day through the runtime: start_day on --days, push --minutes in order, print every decision.

    The bundle is checked before the first inference (hashes, I/O signature, profile, versions) and the day
    before the first push (its length, every token's range). Bar files are placed on the --exchange calendar
    and the last complete session is replayed (or --date); the summary names the date, the exchange and what
    was repaired. Streaming is the default (what live trading does); --full runs the whole session in one pass.
    With --json: one JSON line per minute and instrument, then a summary line.

    Example: hrm-export run engines/default --days days.npy --minutes minutes.npy --backend ort-cpu
             hrm-export run engines/lse --days lse_daily.csv --minutes lse_1min.csv --exchange XLON --tz Europe/London
    """
    from hrm_export.core.parsing import OptionError
    from hrm_export.runtime import HRMRuntime
    from hrm_export.runtime.replay import load_day, replay

    if full and step is not None:
        raise OptionError("--step sets the minutes per streaming push, and --full replays the day in one pass",
                          hint="drop --step, or drop --full to stream")
    policy = None
    if max_filled is not None or allow_over_limit:
        from model_src.repairs import RepairPolicy

        policy = RepairPolicy(0.05 if max_filled is None else max_filled, allow_over_limit)
    console = Console(stderr=True)
    opts = {"profile": profile} if profile else {}
    with HRMRuntime.open(bundle, backend=backend, precision=precision, trust=trust, **opts) as rt:
        with data_warnings() as notes:
            day = load_day(days, minutes, date=date, exchange=exchange, tz=tz, policy=policy,
                           session_minutes=session_minutes, max_minutes=rt.cfg.max_minutes, max_days=rt.limits.days)
        console.print(f"[bold]run[/] {bundle} on {rt.backend.describe()} ({rt.reason}), profile {rt.limits.profile!r}",
                      highlight=False)
        for note in notes:
            console.print(Text.assemble(("warning: ", "bold yellow"), note))
        if day.facts is not None:
            console.print(f"session {day.facts.describe()}; {day.report.line()}", highlight=False)
        columns = (TextColumn("[bold]push[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, disable=as_json or full) as bar:
            task = bar.add_task("minutes", total=day.minutes.shape[1])
            timeline = replay(rt, day, stream=not full, step=step or 1, on_push=lambda n: bar.update(task, advance=n))
        stage = "run_day" if full else "push"
        latency = rt.monitor.as_dict()["stages"][stage]
    summary = {"bundle": str(bundle), "backend": rt.backend_name, "precision": rt.precision, "why": rt.reason,
               **day.summary(), "instruments": timeline.batch, "mode": "full" if full else "stream",
               "halt_minute": timeline.halt_minute.tolist(),
               f"{stage}_ms": {k: round(latency[k], 4) for k in ("p50_ms", "p99_ms", "max_ms")}}
    if as_json:
        for row in timeline.rows():
            print(json_text(row))
        print(json_text({"summary": summary}))
        return
    table = Table(title=f"decisions — {day.label}")
    for col in ("minute", "instrument", "action", "confidence", "quantity", "q_halt", "q_continue", "halted"):
        table.add_column(col, justify="left" if col == "action" else "right")
    for r in timeline.rows():
        table.add_row(str(r["minute"]), str(r["instrument"]), r["action"], f"{r['confidence']:.3f}",
                      f"{r['quantity']:.3f}", f"{r['q_halt']:+.3f}", f"{r['q_continue']:+.3f}",
                      "[bold]HALT[/]" if r["halted"] else "")
    out = Console()
    out.print(table)
    lat = summary[f"{stage}_ms"]
    where = f"{day.facts.describe()}; {day.report.line()}" if day.facts is not None else f"{day.label}, " \
        f"{day.session_minutes}-minute session"
    out.print(f"{where}\n{summary['backend']}/{summary['precision']}: {stage} p50 {lat['p50_ms']:.3f} ms, p99 "
              f"{lat['p99_ms']:.3f} ms over {timeline.minutes} minutes × {timeline.batch} instrument(s); "
              f"halt minute per instrument {summary['halt_minute']} (-1: no halt)", highlight=False)
