"""`hrm-export verify`: prove a bundle's artifacts compute what the PyTorch reference computes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hrm_export.cli.options import ArtifactDirArg, JsonOpt, TrustOpt
from hrm_export.cli.output import json_text
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
DeviceOpt = Annotated[str | None, typer.Option(
    "--device", help="Where the torch candidate runs: cpu, cuda or cuda:N (default: cuda if present, else cpu). "
    "The reference always runs fp32 on the CPU.")]
CompileOpt = Annotated[bool, typer.Option(
    "--compile", help="torch.compile the torch candidate (dynamic shapes; the first calls compile).")]
CudaGraphsOpt = Annotated[bool, typer.Option(
    "--cuda-graphs", help="Replay captured CUDA graphs, one per input-shape bucket (torch on cuda, or tensorrt).")]


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
    device: DeviceOpt = None,
    compile: CompileOpt = False,
    cuda_graphs: CudaGraphsOpt = False,
    png: PngOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prove a bundle computes what the PyTorch reference computes: tensors and trading decisions vs budgets.

    The fp32 reference and the candidate engine run the same realistic feeds at every profile point (min, opt,
    max and random ones), per module, composed H → FiLM → L, and streaming; max abs / rel error, cosine and
    trading decisions are judged against the budgets. Ends with PASSED or FAILED; exit 3 on FAILED.

    PyTorch itself is a candidate too (--backend torch: bf16, --device cuda, --compile, --cuda-graphs), judged by
    the same budgets, so the GPU path's parity is a report like any other.

    Example: hrm-export verify engines/default --backend ort-cpu --precision fp32
             hrm-export verify engines/default --precision int8 --profile latency --png int8-margin.png
             hrm-export verify engines/default --backend torch --precision bf16 --device cuda --cuda-graphs
    """
    if "," in precision:  # one report, one verdict, one set of budgets per run
        raise UserError(f"--precision {precision!r}: verify judges one precision per run",
                        hint="run it once per precision, e.g. hrm-export verify DIR --precision int8")
    check_candidate_flags(backend, device, compile, cuda_graphs)  # before the reference is loaded
    from hrm_export.verify.bundle import verify_bundle

    console = Console(stderr=True)
    points = [_parse_point(p) for p in point or []]
    with console.status("verifying…") as status:
        report = verify_bundle(
            bundle, backend=backend, precision=precision, budgets=budgets, seed=seed, n_random=random_points,
            points=points, only_profiles=split_list(profile, "profile") if profile else (),
            streaming=not no_streaming, save_inputs=save_inputs, save_outputs=save_outputs,
            save_module=save_module, intra_op_threads=threads, device=device, compile=compile,
            cuda_graphs=cuda_graphs, trust=trust,
            on_step=None if as_json else lambda s: status.update(f"verifying {s}"),
        )
    if png and report.decision and report.decision_budget:
        from hrm_export.verify.plot import plot_margin_bins

        m = report.meta
        plot_margin_bins(report.decision, report.decision_budget.near_tie_margin,
                         f"{m['backend']}/{m['precision']} vs {m['reference']}: logit error by margin", png)
        console.print(f"error-vs-margin plot: {png}")
    if as_json:
        print(json_text(report.to_dict(), indent=2))
    else:
        Console().print(report)
    if not report.passed:
        raise typer.Exit(EXIT_GATE_FAILED)


def _parse_point(text: str) -> dict[str, int]:
    try:
        return {k.strip(): int(v) for k, v in (kv.split("=") for kv in text.split(",") if kv.strip())}
    except ValueError:
        raise UserError(f"--point {text!r}: expected axis=int pairs", hint="e.g. --point batch=4,minutes=120") from None


def check_candidate_flags(backend: str, device: str | None, compile: bool, cuda_graphs: bool) -> None:
    """--device / --compile / --cuda-graphs against --backend, in one line each, before any work."""
    if device is not None and backend != "torch":
        raise UserError(f"--device is for --backend torch, not {backend}",
                        hint="ONNX Runtime and TensorRT name their device in the backend: ort-cpu, ort-cuda, tensorrt")
    if device is not None and device != "cpu" and not _is_cuda(device):
        raise UserError(f"--device {device!r}: not a device", hint="use cpu, cuda or cuda:N")
    if compile and backend != "torch":
        raise UserError(f"--compile is for --backend torch, not {backend}", hint="drop --compile")
    if cuda_graphs and backend not in ("torch", "tensorrt"):
        raise UserError(f"--cuda-graphs is for --backend torch or tensorrt, not {backend}", hint="drop --cuda-graphs")
    if compile and cuda_graphs:
        raise UserError("--compile and --cuda-graphs together are not offered (CUDA graphs capture eager PyTorch)",
                        hint="verify each on its own")
    if cuda_graphs and backend == "torch":
        import torch

        on = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if not _is_cuda(on):
            raise UserError(f"--cuda-graphs needs a CUDA device; the torch candidate would run on {on}",
                            hint="on a GPU machine add --device cuda, or drop --cuda-graphs")


def _is_cuda(device: str) -> bool:
    return device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())
