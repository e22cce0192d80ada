"""`hrm-export inspect`: what an artifact or bundle holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hrm_export.cli.options import JsonOpt, TrustOpt
from hrm_export.cli.output import json_text
from hrm_export.core.errors import ManifestError

PathArg = Annotated[Path, typer.Argument(help="A bundle directory (with manifest.json), an .onnx file or a .plan.")]


def inspect(path: PathArg, trust: TrustOpt = None, as_json: JsonOpt = False) -> None:
    """Describe an ONNX file, a TensorRT plan or a whole bundle: I/O, shapes, dtypes, opset, sizes, integrity.

    For an ONNX file: I/O names, shapes, dtypes, opset, size and node/op counts; for a bundle: its manifest, each
    artifact, and whether the bundle is whole (every file's sha256, the config against the checkpoint and the
    graphs, the signature with --trust). A bundle that fails a check is still described, then the first problem
    is the error line: exit 1. TensorRT .plan files are described where TensorRT is installed.

    Example: hrm-export inspect engines/default --trust key.pub  |  hrm-export inspect engines/default/l_step.onnx
    """
    from hrm_export.export.describe import describe

    info = describe(path, trust=trust)
    if as_json:
        print(json_text(info, indent=2, default=str))
    else:
        _print(info)
    problems = info.get("integrity", {}).get("problems", [])
    if problems:
        more = f" (and {len(problems) - 1} more problem(s) listed above)" if len(problems) > 1 else ""
        raise ManifestError(problems[0]["message"] + more, hint=problems[0]["hint"])


def _print(info: dict) -> None:
    console = Console()
    if "bundle" in info:
        m = info["manifest"]
        ck = m["checkpoint"]
        console.print(f"[bold]bundle[/] {info['bundle']} — created {m['created']}")
        source = (f"{ck['path']} (from {ck.get('source', '?')})" if ck.get("path")
                  else f"random init (seed {ck.get('random_init_seed')})")
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
                          f"(profiles {', '.join(a['profile'])})" + ("" if a["status"] == "ok" else " [red]BAD[/]"))
            if a.get("details"):
                _print_file(console, a["details"])
        integrity = info["integrity"]
        console.print(f"\nsignature: {integrity['signature']}", highlight=False)
        for problem in integrity["problems"]:
            console.print(Text.assemble(("problem: ", "bold red"), problem["message"]))
        console.print(Text.assemble(("integrity: ", "bold"), ("PASSED", "green") if integrity["ok"] else
                                    (f"FAILED ({len(integrity['problems'])} problem(s))", "red")))
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
