"""`hrm-export verify`: prove a bundle's artifacts compute what the PyTorch reference computes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hrm_export.cli.options import ArtifactDirArg, JsonOpt, TrustOpt
from hrm_export.core.backend_registry import BACKENDS
from hrm_export.core.errors import EXIT_GATE_FAILED, UserError
from hrm_export.core.parsing import split_list

BackendOpt = Annotated[str, typer.Option("--backend", "-b", help=f"Candidate engine: {', '.join(BACKENDS)}.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="Which artifacts of the bundle: fp32, bf16, int8, ...")]
BudgetsOpt = Annotated[Path | None, typer.Option("--budgets", help="Parity budget file. Default: the shipped one.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random profile points and the market inputs.")]
RandomOpt = Annotated[int, typer.Option("--random-points", help="Random points per profile besides min/opt/max.")]
PointOpt = Annotated[list[str] | None, typer.Option(
    "--point", help="Extra point to verify, e.g. 'batch=4,minutes=120' (repeatable); other axes at opt.")]
SaveInputsOpt = Annotated[Path | None, typer.Option(
    "--save-inputs", help="Write the feeds of --save-module as Polygraphy JSON (polygraphy run --load-inputs).")]
SaveOutputsOpt = Annotated[Path | None, typer.Option(
    "--save-outputs", help="Write the reference outputs of --save-module as Polygraphy RunResults (--load-outputs).")]
SaveModuleOpt = Annotated[str, typer.Option("--save-module", help="Module whose feeds/outputs --save-* write.")]
ProfileOpt = Annotated[str | None, typer.Option(
    "--profile", "-p", help="Comma-separated profiles whose points to verify (default: every profile in the "
    "bundle). On a CPU, 'latency' skips the batch-128 throughput points that take most of the time.")]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="ONNX Runtime intra-op threads (0: one per core).")]
PngOpt = Annotated[Path | None, typer.Option(
    "--png", help="Also draw the logit error against the reference's logit margin (per margin bin) to this PNG.")]
NoStreamOpt = Annotated[bool, typer.Option("--no-streaming", help="Skip the chained l_step session checks.")]


def verify(
    bundle: ArtifactDirArg,
    backend: BackendOpt = "ort-cpu",
    precision: PrecisionOpt = "fp32",
    budgets: BudgetsOpt = None,
    seed: SeedOpt = 0,
    random_points: RandomOpt = 2,
    point: PointOpt = None,
    profile: ProfileOpt = None,
    save_inputs: SaveInputsOpt = None,
    save_outputs: SaveOutputsOpt = None,
    save_module: SaveModuleOpt = "l_module",
    threads: ThreadsOpt = 0,
    no_streaming: NoStreamOpt = False,
    png: PngOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prove a bundle computes what the PyTorch reference computes: tensors and trading decisions vs budgets.

    The fp32 reference and the candidate engine run the same realistic feeds at every profile point (min, opt,
    max and random ones), per module, composed H → FiLM → L, and streaming; max abs / rel error, cosine and
    trading decisions are judged against the budgets. Ends with PASSED or FAILED; exit 3 on FAILED.

    Example: hrm-export verify engines/default --backend ort-cpu --precision fp32
             hrm-export verify engines/default --precision int8 --profile latency --png int8-margin.png
    """
    from hrm_export.verify.bundle import verify_bundle

    console = Console(stderr=True)
    points = [_parse_point(p) for p in point or []]
    with console.status("verifying…") as status:
        report = verify_bundle(
            bundle, backend=backend, precision=precision, budgets=budgets, seed=seed, n_random=random_points,
            points=points, only_profiles=split_list(profile, "profile") if profile else (),
            streaming=not no_streaming, save_inputs=save_inputs, save_outputs=save_outputs,
            save_module=save_module, intra_op_threads=threads, trust=trust,
            on_step=None if as_json else lambda s: status.update(f"verifying {s}"),
        )
    if png and report.decision and report.decision_budget:
        from hrm_export.verify.plot import plot_margin_bins

        m = report.meta
        plot_margin_bins(report.decision, report.decision_budget.near_tie_margin,
                         f"{m['backend']}/{m['precision']} vs {m['reference']}: logit error by margin", png)
        console.print(f"error-vs-margin plot: {png}")
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        Console().print(report)
    if not report.passed:
        raise typer.Exit(EXIT_GATE_FAILED)


def _parse_point(text: str) -> dict[str, int]:
    try:
        return {k.strip(): int(v) for k, v in (kv.split("=") for kv in text.split(",") if kv.strip())}
    except ValueError:
        raise UserError(f"--point {text!r}: expected axis=int pairs", hint="e.g. --point batch=4,minutes=120") from None
