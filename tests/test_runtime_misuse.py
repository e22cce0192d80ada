"""Misuse of the runtime API fails closed: a typed UserError with a one-line message and a hint, and the session
is where it was. Tokens outside their range, start_minute of the wrong type, calls after close(), pushes without
start_minute from two threads, a model output that is NaN (docs/runtime.md, "Bad input")."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
import torch
from runtime_bundle import assert_same_decisions, overflowing_model, tiny_bundle, tokens

from hrm_export.core.errors import UserError
from hrm_export.runtime import HRMRuntime, InputError, NonFiniteOutput, RuntimeClosedError, SequenceError


@pytest.fixture(scope="module", params=["torch", "ort-cpu"])
def runtime(request):
    rt = HRMRuntime.open(tiny_bundle(), backend=request.param)
    yield rt
    rt.close()


def test_start_minute_must_be_an_int(runtime):
    days, minutes = tokens(1, 8, 6)
    session = runtime.start_day(days)
    session.push(minutes[:, :5], start_minute=0)
    for bad in ("5", 5.0, True, [5]):
        with pytest.raises(InputError, match=r"push: start_minute=.* is a \w+, not an int") as e:
            session.push(minutes[:, 5:6], start_minute=bad)
        assert e.value.hint and session.n_minutes == 5
    with pytest.raises(InputError, match="start_day: session_minutes='390' is a str, not an int"):
        runtime.start_day(days).start_day(days, session_minutes="390")
    session.push(minutes[:, 5:6], start_minute=np.int64(5))  # numpy integers are ints


@pytest.mark.parametrize("value, feature", [(450.0, "feature 0 (ret_1m)"), (1e30, "feature 0 (ret_1m)"),
                                            (-0.5, "feature 3 (range)"), (2.0, "feature 10 (filled)")])
def test_tokens_outside_their_range_are_refused_naming_instrument_minute_and_feature(runtime, value, feature):
    days, minutes = tokens(2, 8, 10)
    session = runtime.session(symbols=["SPY", "QQQ"]).start_day(days)
    session.push(minutes[:, :7], start_minute=0)
    bad = minutes[:, 7:8].clone()
    bad[1, 0, int(feature.split()[1])] = value
    where = re.escape(f"at instrument 'QQQ' (row 1), session minute 7, {feature} is outside the feature's valid range")
    with pytest.raises(InputError, match=where) as e:
        session.push(bad, start_minute=7)
    assert "model_src.features" in e.value.hint and session.n_minutes == 7
    with pytest.raises(InputError, match="look-back day 3, feature 4 .close_loc."):
        runtime.run_day(days.index_put((torch.tensor(0), torch.tensor(3), torch.tensor(4)), torch.tensor(1.5)),
                        minutes)


@pytest.mark.parametrize("backend", ["torch", "ort-cpu"])
def test_a_closed_runtime_refuses_every_call_and_never_reopens(backend):
    rt = HRMRuntime.open(tiny_bundle(), backend=backend)
    days, minutes = tokens(1, 8, 4)
    session = rt.start_day(days)
    session.push(minutes[:, :2], start_minute=0)
    rt.close()
    for call in (lambda: session.push(minutes[:, 2:3], start_minute=2), lambda: rt.start_day(days),
                 lambda: rt.run_day(days, minutes), lambda: session.start_day(days)):
        with pytest.raises(RuntimeClosedError, match="on a closed runtime") as e:
            call()
        assert "HRMRuntime.open" in e.value.hint
    assert session.n_minutes == 2 and rt.closed
    if backend == "ort-cpu":
        assert rt.backend._sessions == {}  # no ONNX Runtime session was re-created behind the caller's back


def test_pushes_without_start_minute_from_two_threads_are_refused_not_reordered(runtime):
    days, minutes = tokens(1, 8, 40, seed=3)
    full = runtime.run_day(days, minutes, session_minutes=390)
    session = runtime.start_day(days)
    session.push(minutes[:, :10])  # the main thread feeds the day
    errors: list[BaseException] = []

    def other_thread():
        try:
            session.push(minutes[:, 10:11])
        except UserError as e:
            errors.append(e)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], SequenceError) and session.n_minutes == 10
    assert "pass start_minute" in errors[0].hint
    # with start_minute, any thread may push, and every push is checked: each lands where it says or is refused
    done: list[int] = []

    def numbered(t0: int):
        while True:
            try:
                session.push(minutes[:, t0:t0 + 1], start_minute=t0)
                done.append(t0)
                return
            except SequenceError:  # not its turn yet: the minute before it has not landed
                threading.Event().wait(0.001)

    threads = [threading.Thread(target=numbered, args=(t0,)) for t0 in range(39, 9, -1)]  # started out of order
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(done) == list(range(10, 40)) and session.n_minutes == 40
    # nothing was reordered: the day ends where the one full pass ends
    np.testing.assert_allclose(session.last.confidence, full.confidence[:, 39], atol=1e-4)
    np.testing.assert_array_equal(session.last.action, full.action[:, 39])
    np.testing.assert_array_equal(session.halt_minute, full.halt_minute)
    session.start_day(days)  # a new day: any one thread may feed it without start_minute
    t = threading.Thread(target=lambda: session.push(minutes[:, :3]))
    t.start()
    t.join()
    assert session.n_minutes == 3


def test_a_non_finite_output_is_refused_and_the_session_goes_on():
    rt = HRMRuntime.from_model(overflowing_model())
    days, minutes = tokens(1, 8, 12, seed=4)
    minutes[..., 10] = 0.0
    full = rt.run_day(days, minutes, session_minutes=390)  # the first 12 minutes of a 390-minute day
    session = rt.session(symbols=["SPY"]).start_day(days)
    session.push(minutes[:, :5], start_minute=0)
    filled = minutes[:, 5:6].clone()
    filled[..., 10] = 1.0
    with pytest.raises(NonFiniteOutput, match=r"l_step output action_logits: non-finite value at instrument 'SPY' "
                       r"\(row 0\), session minute 5; no decision was made"):
        session.push(filled, start_minute=5)
    assert session.n_minutes == 5 and session.last.minute == 4
    assert_same_decisions(session.push_timeline(minutes[:, 5:], start_minute=5), full)
