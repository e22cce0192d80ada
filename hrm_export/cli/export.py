"""`hrm-export export`: the reference HRM → one ONNX file per module + manifest.json."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from hrm_export.cli.options import CheckpointOpt, JsonOpt, OutDirOpt
from hrm_export.cli.output import json_text
from hrm_export.core.parsing import split_list
from hrm_export.core.specs import EXPORTED as MODULES
from hrm_export.export import DEFAULT_OPSET, DEFAULT_PROFILES
from hrm_export.precision import VARIANTS

ProfileOpt = Annotated[str, typer.Option(
    "--profile", "-p", help="Comma-separated profiles the artifacts admit: shipped names (latency, throughput) or "
    ".toml paths.")]
PrecisionOpt = Annotated[str, typer.Option(
    "--precision", help="Comma-separated precisions to write: fp32 (always), bf16 (+ its CPU-emulated twin), int8 "
    "(Q/DQ for TensorRT), int8-cpu (ONNX Runtime integer ops). Calibration flags: `hrm-export precision make`.")]
OpsetOpt = Annotated[int, typer.Option(
    "--opset", help="ONNX opset (>= 18). 23 fuses Attention/RMSNormalization (needs TensorRT >= 10.15); "
    "18 for older TensorRT 10.")]


def export(
    out: OutDirOpt,
    checkpoint: CheckpointOpt = None,
    profile: ProfileOpt = ",".join(DEFAULT_PROFILES),
    opset: OpsetOpt = DEFAULT_OPSET,
    precision: PrecisionOpt = "fp32",
    as_json: JsonOpt = False,
) -> None:
    """Export h_module, l_module and l_step to ONNX with named dynamic axes, and write DIR/manifest.json.

    Without --checkpoint the built-in trained model is used; if it is absent, a seeded random-init HRM
    (with a warning). The checkpoint is copied into DIR, so the bundle can be moved. Every file is written
    atomically and the manifest last, once every requested precision exists.

    Example: hrm-export export --out engines/default --precision fp32,bf16,int8
    """
    from hrm_export.export.bundle import check_opset, check_out_dir, export_bundle
    from hrm_export.precision.variants import make_variants

    console = Console(stderr=True)
    profiles = split_list(profile, "profile")
    precisions = split_list(precision, "precision", ("fp32", *VARIANTS))
    check_opset(opset)  # export_bundle checks these too; here they come before the progress bar is drawn
    check_out_dir(out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        with Progress(TextColumn("[bold]export[/] {task.description}"), BarColumn(), TextColumn("{task.completed}/"
                      "{task.total}"), TimeElapsedColumn(), console=console, disable=as_json) as bar:
            task = bar.add_task(MODULES[0], total=len(MODULES))

            def step(name: str, seconds: float) -> None:
                bar.console.print(f"  {name}.onnx written in {seconds:.1f} s")
                nxt = MODULES.index(name) + 1
                bar.update(task, advance=1, description=MODULES[nxt] if nxt < len(MODULES) else "done")

            variants = any(p != "fp32" for p in precisions)
            # With variants the manifest is written once, by make_variants, when every requested file exists:
            # a run killed between the fp32 graphs and the variants leaves no manifest that looks complete.
            manifest = export_bundle(checkpoint, out, profiles=profiles, opset=opset, on_module=step,
                                     write_manifest=not variants)
            if variants:
                manifest = make_variants(manifest, precisions, on_step=lambda msg: bar.console.print(f"  {msg}"))
    for w in caught:
        if issubclass(w.category, UserWarning) and "random-init" in str(w.message):
            console.print(f"[bold yellow]warning:[/] {w.message}", highlight=False)
    if as_json:
        print(json_text(manifest.to_dict(), indent=2))
        return
    size = sum((Path(out) / a.path).stat().st_size for a in manifest.artifacts) / 1e6
    Console().print(f"[green]wrote[/] {manifest.path} — {len(manifest.artifacts)} ONNX files, {size:.1f} MB, "
                    f"({', '.join(precisions)}), opset {opset}, profiles {', '.join(manifest.profiles)}")
