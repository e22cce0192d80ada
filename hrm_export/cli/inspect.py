"""`hrm-export inspect`: what an artifact or bundle holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hrm_export.cli.options import JsonOpt
from hrm_export.cli.output import json_text

PathArg = Annotated[Path, typer.Argument(help="A bundle directory (with manifest.json), an .onnx file or a .plan.")]


def inspect(path: PathArg, as_json: JsonOpt = False) -> None:
    """Describe an ONNX file, a TensorRT plan or a whole bundle: I/O, shapes, dtypes, opset, sizes.

    For an ONNX file: I/O names, shapes, dtypes, opset, size and node/op counts; for a bundle: its manifest and
    each artifact. TensorRT .plan files are described where TensorRT is installed (the plan header always).

    Example: hrm-export inspect engines/default   |   hrm-export inspect engines/default/l_step.onnx --json
    """
    from hrm_export.export.describe import describe

    info = describe(path)
    if as_json:
        print(json_text(info, indent=2, default=str))
        return
    console = Console()
    if "bundle" in info:
        m = info["manifest"]
        ck = m["checkpoint"]
        console.print(f"[bold]bundle[/] {info['bundle']} — created {m['created']}")
        source = ck.get("path") or f"random init (seed {ck.get('random_init_seed')})"
        digest = f"  sha256 {ck['sha256'][:16]}…" if ck.get("sha256") else ""
        console.print(f"checkpoint: {source}{digest}")
        console.print("versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
        table = Table(title="profiles [min, opt, max]")
        axes = list(next(iter(m["profiles"].values()))["axes"]) if m["profiles"] else []
        for col in ("profile", *axes):
            table.add_column(col)
        for name, p in m["profiles"].items():
            table.add_row(name, *(str(p["axes"][a]) for a in axes))
        console.print(table)
        for a in info["artifacts"]:
            console.print(f"\n[bold]{a['module']}[/] {a['precision']} {a['format']} — {a['path']} "
                          f"(profiles {', '.join(a['profile'])})" + ("" if a["exists"] else " [red]MISSING[/]"))
            if a.get("details"):
                _print_file(console, a["details"])
        return
    _print_file(console, info)


def _print_file(console: Console, d: dict) -> None:
    if d.get("format") == "trt-plan" or "inputs" not in d:  # a plan (or a note why not): whatever keys it has
        for k, v in d.items():
            console.print(f"  {k}: {v}", highlight=False, markup=False)
        return
    table = Table(show_header=True, box=None, pad_edge=False)
    for col in ("", "name", "dtype", "shape"):
        table.add_column(col)
    for kind in ("inputs", "outputs"):
        for t in d[kind]:
            table.add_row(kind[:-1], t["name"], t["dtype"], "(" + ", ".join(str(x) for x in t["shape"]) + ")")
    console.print(table)
    opset = ", ".join(f"{k} {v}" for k, v in d["opset"].items())
    console.print(f"  opset {opset} · {d['bytes'] / 1e6:.1f} MB · {d['nodes']} nodes · {d['initializers']} "
                  f"initializers · producer {d['producer']}")
    console.print("  ops: " + ", ".join(f"{k} {v}" for k, v in d["ops"].items()))
