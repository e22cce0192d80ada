"""The command line's contract: light --help/--version, exit codes (0, 1, 2, 3, 70), messages printed literally."""

from __future__ import annotations

import subprocess
import sys

import pytest
from parity_bundle import tiny_bundle

from hrm_export.core.budgets import DEFAULT_BUDGETS
from hrm_export.core.errors import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR

PROBE = """
import sys
try:
    from hrm_export.cli import main
    main()
except SystemExit as e:
    code = e.code
print("EXIT", code, "torch" in sys.modules, "onnxruntime" in sys.modules, file=sys.stderr)
"""


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=timeout)


def _probe(r: subprocess.CompletedProcess) -> tuple[int, bool, bool]:
    _, code, torch_loaded, ort_loaded = r.stderr.strip().splitlines()[-1].split()
    return int(code), torch_loaded == "True", ort_loaded == "True"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["bench", "--help"], ["export", "--help"]])
def test_help_and_version_import_neither_torch_nor_onnxruntime(args):
    r = _cli(*args)
    code, torch_loaded, ort_loaded = _probe(r)
    assert code == 0 and not torch_loaded and not ort_loaded, r.stderr
    assert ("hrm-export 0." in r.stdout) if args == ["--version"] else ("Usage" in r.stdout)


def test_a_bad_command_line_is_exit_2():
    code, _, _ = _probe(_cli("verify", "--no-such-option"))
    assert code == 2


def test_user_error_is_one_literal_line_and_a_hint(tmp_path):
    budgets = tmp_path / "parity.toml"
    text = DEFAULT_BUDGETS.read_text()
    start = text.index("[fp32.decision]")
    budgets.write_text(text[:start] + text[text.index("# --- bf16", start):])  # fp32 rows, no decision gates
    r = _cli("verify", str(tiny_bundle()), "--budgets", str(budgets))
    code, _, _ = _probe(r)
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("EXIT")]
    assert code == EXIT_USER_ERROR and "Traceback" not in r.stderr
    assert lines[0] == f"error: {budgets}: no [fp32.decision] table"  # square brackets survive: no Rich markup
    assert lines[1].startswith("hint: add [fp32.<module>.<output>] and [fp32.decision] rows")


def test_bf16_on_the_cpu_provider_is_one_line_not_a_traceback():
    r = _cli("verify", str(tiny_bundle()), "--precision", "bf16")
    code, _, _ = _probe(r)
    assert code == EXIT_USER_ERROR and "Traceback" not in r.stderr, r.stderr
    assert "error: backend ort-cpu cannot run bf16 here: ONNX Runtime's CPU provider has no bf16 MatMul kernel" \
        in r.stderr
    assert "hint: on the CPU verify the bf16 graph as --precision bf16-emulated" in r.stderr


def test_an_unexpected_exception_is_exit_70_with_the_traceback_in_a_file(monkeypatch, capsys):
    import hrm_export.core.model_card as card
    from hrm_export.cli import main

    def broken(*_a, **_k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(card, "model_card", broken)  # fault injection: a bug inside a command
    monkeypatch.setattr(sys, "argv", ["hrm-export", "info"])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err
    assert e.value.code == EXIT_INTERNAL_ERROR
    assert "error: internal error (ZeroDivisionError: a bug) — this is a bug in hrm-export, not in your input" in err
    log = err.split("the traceback is in ", 1)[1].split(";", 1)[0]
    with open(log) as f:
        assert "ZeroDivisionError: a bug" in f.read()
    assert "Traceback" not in err
