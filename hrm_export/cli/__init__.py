"""The `hrm-export` command tree. Each verb lives in its own module and calls one library function."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from hrm_export import __version__
from hrm_export.errors import EXIT_USER_ERROR, USER_ERRORS

app = typer.Typer(
    name="hrm-export",
    help="Export the HRM trading model to ONNX / TensorRT / ONNX Runtime, prove parity, measure latency.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"hrm-export {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Export → verify → bench the dual-book HRM. Run a verb with --help for its options."""


def _register() -> None:
    from hrm_export.cli import export, info, inspect, verify

    app.command()(info.info)
    app.command()(export.export)
    app.command()(verify.verify)
    app.command()(inspect.inspect)
    from hrm_export.cli import build

    app.command()(build.build)
    from hrm_export.cli import precision

    app.add_typer(precision.app, name="precision")
    from hrm_export.cli import bench

    app.command()(bench.bench)
    from hrm_export.cli import run

    app.command()(run.run)
    from hrm_export.cli import triton

    app.add_typer(triton.app, name="triton")


_register()


def main() -> None:
    """Console entry point: user errors become one red line + hint and exit 1."""
    try:
        app()
    except USER_ERRORS as e:
        console = Console(stderr=True)
        console.print(f"[bold red]error:[/] {e}", highlight=False)
        hint = getattr(e, "hint", "")
        if hint:
            console.print(f"[yellow]hint:[/] {hint}", highlight=False)
        sys.exit(EXIT_USER_ERROR)
