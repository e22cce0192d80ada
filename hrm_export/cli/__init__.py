"""The `hrm-export` command tree. Each verb lives in its own module and calls one library function.

Every module here imports only typer, rich and torch-free constants at the top; the work (torch, onnx,
onnxruntime) is imported inside the command that needs it, so `hrm-export --help` and `--version` are fast.

How a run ends (docs/cli.md): exit 0; a user error → one `error:` line and a `hint:` line, exit 1; a failed
gate → the full report, then exit 3; anything else is a bug → one line saying so and where the traceback was
written (or the traceback itself with --debug), exit 70. Messages are printed literally, never as Rich markup.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback

import typer
from rich.console import Console
from rich.text import Text

from hrm_export import __version__
from hrm_export.core.errors import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, USER_ERRORS

app = typer.Typer(
    name="hrm-export",
    help="Export the HRM trading model to ONNX / TensorRT / ONNX Runtime, prove parity, measure latency.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_debug = False


def _version(value: bool) -> None:
    if value:
        print(f"hrm-export {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="On an unexpected error, print the traceback here."),
) -> None:
    """Export → verify → bench the dual-book HRM. Run a verb with --help for its options.

    Exit codes: 0 ok · 1 bad input (one error line + hint) · 2 bad command line · 3 a parity or latency gate
    failed · 70 a bug (the traceback's file is named).
    """
    global _debug
    _debug = debug


def _register() -> None:
    from hrm_export.cli import bench, build, export, info, inspect, precision, run, sign, verify

    app.command()(info.info)
    app.command()(export.export)
    app.command()(verify.verify)
    app.command()(inspect.inspect)
    app.command()(sign.sign)
    app.command()(build.build)
    app.add_typer(precision.app, name="precision")
    app.command()(bench.bench)
    app.command()(run.run)
    from hrm_export.cli import triton

    app.add_typer(triton.app, name="triton")


_register()


def print_error(message: str, hint: str = "") -> None:
    """One red `error:` line and a yellow `hint:` line on stderr, the text printed literally."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)  # one line each, whatever the width
    console.print(Text.assemble(("error: ", "bold red"), str(message)))
    if hint:
        console.print(Text.assemble(("hint: ", "yellow"), str(hint)))


def main() -> None:
    """Console entry point: user errors become one line + hint (exit 1), bugs one line + a traceback file (70)."""
    try:
        code = app(standalone_mode=False)  # --help, --version and gates return the command's exit code
    except USER_ERRORS as e:
        print_error(str(e), getattr(e, "hint", ""))
        sys.exit(EXIT_USER_ERROR)
    except (typer.Abort, KeyboardInterrupt):
        print_error("interrupted")
        sys.exit(130)
    except Exception as e:
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # a bad command line (the parser's own error): exit 2
            e.show()
            sys.exit(e.exit_code)
        _report_bug(e)
        sys.exit(EXIT_INTERNAL_ERROR)
    sys.exit(code if isinstance(code, int) else 0)


def _report_bug(e: Exception) -> None:
    text = "".join(traceback.format_exception(e))
    if _debug or "--debug" in sys.argv:
        sys.stderr.write(text)
        where = "above"
    else:
        fd, path = tempfile.mkstemp(prefix=f"hrm-export-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(f"hrm-export {__version__}: {' '.join(sys.argv)}\n{text}")
        where = f"in {path}"
    print_error(f"internal error ({type(e).__name__}: {e}) — this is a bug in hrm-export, not in your input",
                f"the traceback is {where}; rerun with --debug to print it, and report it with that file")
