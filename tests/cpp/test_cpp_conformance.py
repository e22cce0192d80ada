"""The C++ runtime against the Python runtime on the same bundle (tests/cpp/cpp_fixtures.py): per-module
outputs within the fp32 parity budgets of hrm_export/budgets/parity.toml (and bit-equal, since the same ONNX Runtime
library runs underneath), decisions identical to what model_src.decisions makes of the Python heads,
streaming equal to run_day, and the four halting cases."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch
from cpp_fixtures import EXPECTED_HALTS, L_STEP_CALLS, SESSION, STREAM_CHUNK

from hrm_export.core.budgets import load_budgets
from hrm_export.core.parity.report import judge_decisions, judge_tensors
from hrm_export.core.parity.result import RunResult

CASES = ("fp32", "int8-cpu")
HEADS = ("action_logits", "quantity", "q_values")
TIMELINES = ("run_day", "stream", f"stream_{STREAM_CHUNK}")


@pytest.fixture(scope="module")
def cpp_out(cpp_build, cpp_fixtures, tmp_path_factory):
    out = tmp_path_factory.mktemp("cpp-out")
    done = subprocess.run([str(cpp_build / "hrm_conformance"), str(cpp_fixtures), str(out)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def _load(folder, names) -> dict[str, np.ndarray]:
    return {n: np.load(folder / f"{n}.npy") for n in names}


def _judge(scope: str, cand: dict, ref: dict) -> None:
    """Every output within the fp32 budgets of `scope`, then bit-equal: the same ONNX Runtime library, the
    same graph and the same session options on both sides leave no room for a difference."""
    as_t = lambda d: {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in d.items()}  # noqa: E731
    rows = judge_tensors(RunResult(scope, "cpp", {}, as_t(ref), as_t(cand)), load_budgets(), "fp32")
    failed = [f"{r.output}: {'; '.join(r.failures)}" for r in rows if not r.passed]
    assert not failed, f"{scope}: {failed}"
    for k in ref:
        np.testing.assert_array_equal(np.asarray(cand[k], np.float32), np.asarray(ref[k], np.float32),
                                      err_msg=f"{scope}.{k}: within budget but not bit-equal to the Python runtime")


@pytest.mark.parametrize("case", CASES)
def test_per_module_outputs_match_the_python_runtime(cpp_out, cpp_fixtures, case):
    got, want = cpp_out / case, cpp_fixtures / "expected" / case
    names = ("h_tokens", "film_gamma", "film_beta")
    _judge("h_module", _load(got / "h", names), _load(want / "h", names))
    for k in range(len(L_STEP_CALLS)):
        names = tuple(f"{k}_{n}" for n in (*HEADS, "present_kv"))
        strip = lambda d: {n.split("_", 1)[1]: v for n, v in d.items()}  # noqa: E731
        _judge("l_step", strip(_load(got / "l_step", names)), strip(_load(want / "l_step", names)))
    _judge("composed", _load(got / "run_day", HEADS), _load(want / "run_day", HEADS))
    for stream in TIMELINES[1:]:
        _judge("streaming", _load(got / stream, HEADS), _load(want / stream, HEADS))


@pytest.mark.parametrize("case", CASES)
def test_decisions_are_the_rule_applied_to_the_python_heads(cpp_out, cpp_fixtures, case):
    for tl in TIMELINES:
        got = _load(cpp_out / case / tl, ("action", "halted", "halt_minute", "confidence"))
        want = _load(cpp_fixtures / "expected" / case / tl, ("action", "halted", "halt_minute", "confidence"))
        for k in ("action", "halted", "halt_minute"):
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"{case} {tl}: {k}")
        # float64 softmax on both sides; numpy's vectorised exp and libm's may differ in the last bit
        np.testing.assert_array_max_ulp(got["confidence"], want["confidence"], maxulp=4)


@pytest.mark.parametrize("case", CASES)
def test_streaming_equals_run_day(cpp_out, case):
    """The C++ pushes against the C++ full pass, judged by the case precision's streaming budgets and decision
    gates (int8-cpu quantizes activations per call, so its l_step and l_module differ within those budgets);
    on fp32 the decisions are identical."""
    budgets = load_budgets()
    as_t = lambda d: {k: torch.from_numpy(np.asarray(d[k], np.float32)) for k in HEADS}  # noqa: E731
    full = _load(cpp_out / case / "run_day", (*HEADS, "action", "halted", "halt_minute"))
    for stream in TIMELINES[1:]:
        got = _load(cpp_out / case / stream, (*HEADS, "action", "halted", "halt_minute"))
        result = RunResult("streaming", stream, {}, as_t(full), as_t(got))
        failed = [(r.output, r.failures) for r in judge_tensors(result, budgets, case) if not r.passed]
        assert not failed, f"{stream}: {failed}"
        stats, gate_failures = judge_decisions([result], budgets.decision(case))
        assert not gate_failures and stats["halt_agree"] == stats["sessions"], (stream, gate_failures)
        if case == "fp32":
            for k in ("action", "halted", "halt_minute"):
                np.testing.assert_array_equal(got[k], full[k], err_msg=f"{case} {stream} vs run_day: {k}")


@pytest.mark.parametrize("case", CASES)
def test_the_four_halting_cases(cpp_out, case):
    """Instrument 0 halts at minute 0, 1 mid-session, 2 at the last minute (q_halt wins there), 3 never wins
    and halts at the close; halts are sticky, and before the close instruments 2 and 3 have not halted."""
    for tl in TIMELINES:
        d = _load(cpp_out / case / tl, ("halt_minute", "halted", "q_values"))
        assert d["halt_minute"].tolist() == EXPECTED_HALTS, tl
        wins = d["q_values"][..., 0] > d["q_values"][..., 1]  # (B, T)
        assert wins[0, 0] and wins[1, 157] and not wins[1, :157].any(), tl
        assert wins[2, SESSION - 1] and not wins[2, :-1].any(), tl  # the last minute, by q_halt
        assert not wins[3].any(), tl  # never: the close commits
        assert d["halted"][:, SESSION - 2].tolist() == [1, 1, 0, 0], tl
        assert d["halted"][:, SESSION - 1].tolist() == [1, 1, 1, 1], tl
        assert d["halted"][0].all() and d["halted"][1, 157:].all(), tl  # sticky after the first halt


def test_json_floats_are_printed_as_python_prints_them(cpp_out, cpp_fixtures):
    got = (cpp_out / "repr.txt").read_text().splitlines()
    want = (cpp_fixtures / "floats_repr.txt").read_text().splitlines()
    assert len(got) == len(want) > 4000
    diff = [(i, g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert not diff, diff[:10]
