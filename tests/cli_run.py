"""Run `hrm-export` in this process, through its real entry point (hrm_export.cli.main), and read what it printed.

In-process because a fresh interpreter per case costs seconds of imports (torch) on a 2-core machine; the code
path is the console script's: main() parses, runs, turns errors into exit codes and prints them.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        """Every non-blank stderr line."""
        return [line for line in self.err.splitlines() if line.strip()]

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]

    @property
    def message(self) -> str:
        """The error line and the hint line, joined: what a person reads."""
        return " ".join(line for line in self.err.splitlines() if line.startswith(("error:", "hint:")))


def hrm_export(*args) -> Result:
    from hrm_export.cli import main

    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = ["hrm-export", *map(str, args)]
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "200"  # rich wraps tables at 80 columns when not on a terminal
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
        if columns is None:
            os.environ.pop("COLUMNS")
        else:
            os.environ["COLUMNS"] = columns
    return Result(code, out.getvalue(), err.getvalue())


def assert_one_line_error(r: Result, *words: str, code: int = 1) -> None:
    """Exit `code`, exactly one `error:` line, no traceback, and every word (the thing and the fix) in the message."""
    assert r.code == code, (r.code, r.err[-2000:])
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err[-2000:]
    assert len(r.error_lines) == 1, r.err[-2000:]
    for w in words:
        assert w in r.message, (w, r.message)
