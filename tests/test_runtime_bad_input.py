"""Bad input raises a typed UserError with a one-line message and a hint — and never corrupts a session."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from runtime_bundle import assert_same_decisions, tiny_bundle, tiny_runtime_model, tokens

from hrm_export.core.errors import UserError
from hrm_export.runtime import (
    HRMRuntime,
    InputError,
    NotStartedError,
    ProfileError,
    SequenceError,
    SessionFullError,
)


@pytest.fixture(scope="module", params=["torch", "ort-cpu"])
def runtime(request):
    rt = HRMRuntime.open(tiny_bundle(), backend=request.param)
    yield rt
    rt.close()


def with_value(x: torch.Tensor, value: float, where=(0, 0, 3)) -> torch.Tensor:
    y = x.clone()
    y[where] = value
    return y


def bad_pushes(minutes: torch.Tensor, t: int):
    """(what, push arguments, expected error) at the point where minute t is next."""
    step = minutes[:, t:t + 1]
    return [
        ("NaN", (with_value(step, float("nan")), t), InputError),
        ("+Inf", (with_value(step, float("inf")), t), InputError),
        ("-Inf in the second instrument", (with_value(step, float("-inf"), (1, 0, 0)), t), InputError),
        ("10 features", (step[..., :10], t), InputError),
        ("12 features", (torch.cat([step, step[..., :1]], dim=-1), t), InputError),
        ("no batch axis", (step[0], t), InputError),
        ("integer tokens", (step.long(), t), InputError),
        ("wrong instrument count", (minutes[:1, t:t + 1], t), InputError),
        ("a list", (step.tolist(), t), InputError),
        ("empty push", (minutes[:, t:t], t), InputError),
        ("skips a minute", (step, t + 1), SequenceError),
        ("repeats a minute", (step, t - 1), SequenceError),
        ("past the session", (minutes[:, :1].repeat(1, 391 - t, 1), t), SessionFullError),
    ]


def test_each_bad_push_is_refused_and_the_stream_continues_exactly(runtime):
    days, minutes = tokens(2, 16, 60, seed=7)
    full = runtime.run_day(days, minutes, session_minutes=390)  # the stream below is a 390-minute day too
    session = runtime.start_day(days)
    for t in range(60):
        if t in (1, 17, 59):  # every kind of bad push, mid-stream, before the good one
            for what, (x, start), error in bad_pushes(minutes, t):
                with pytest.raises(error) as e:
                    session.push(x, start_minute=start)
                assert isinstance(e.value, UserError), what
                assert "\n" not in str(e.value) and e.value.hint, what
                assert session.n_minutes == t, what
        line = session.push_timeline(minutes[:, t:t + 1], start_minute=t)
        assert_same_decisions(line, full)


def test_nan_message_names_instrument_session_minute_and_feature(runtime):
    days, minutes = tokens(2, 4, 203)
    session = runtime.session(symbols=["AAA", "BBB"]).start_day(days)
    with pytest.raises(InputError, match=r"non-finite value nan at instrument 'BBB' \(row 1\), session minute 2, "
                       r"feature 5 \(volume_z\)"):
        session.push(with_value(minutes[:, :3], float("nan"), (1, 2, 5)), start_minute=0)
    session.push(minutes[:, :200], start_minute=0)
    with pytest.raises(InputError, match=r"at instrument 'AAA' \(row 0\), session minute 201, feature 3 \(range\)"):
        session.push(with_value(minutes[:, 200:203], float("inf"), (0, 1, 3)), start_minute=200)
    assert session.n_minutes == 200


def test_push_before_start_day(runtime):
    _, minutes = tokens(1, 4, 1)
    with pytest.raises(NotStartedError, match="start_day"):
        runtime.session().push(minutes, start_minute=0)


def test_push_after_the_session_is_full_then_next_day(runtime):
    days, minutes = tokens(1, 5, 390, seed=8)
    session = runtime.start_day(days)
    session.push(minutes, start_minute=0)
    with pytest.raises(SessionFullError, match="session is full: 390 of 390"):
        session.push(minutes[:, :1], start_minute=390)
    assert session.n_minutes == 390
    session.start_day(days)
    full = runtime.run_day(days, minutes[:, :3], session_minutes=390)  # the first 3 minutes of a 390-minute day
    assert_same_decisions(session.push_timeline(minutes[:, :3], start_minute=0), full)


def test_more_days_or_minutes_than_the_profile(runtime):
    days, minutes = tokens(1, 65, 391)  # the tiny model's profile: 64 days, 390 minutes
    with pytest.raises(ProfileError, match=r"65 look-back days, profile 'latency' admits at most 64"):
        runtime.start_day(days)
    with pytest.raises(ProfileError, match="65 look-back days"):
        runtime.run_day(days, minutes[:, :5])
    with pytest.raises(ProfileError, match=r"391 minutes, profile 'latency' admits at most 390"):
        runtime.run_day(days[:, :64], minutes)


def test_start_day_with_bad_days_keeps_the_running_day(runtime):
    days, minutes = tokens(2, 6, 10, seed=9)
    full = runtime.run_day(days, minutes, session_minutes=390)
    session = runtime.start_day(days)
    session.push(minutes[:, :4], start_minute=0)
    for bad in (with_value(days, float("nan")), days[..., :7], days[:, :0]):
        with pytest.raises(InputError):
            session.start_day(bad)
    assert session.n_minutes == 4
    assert_same_decisions(session.push_timeline(minutes[:, 4:], start_minute=4), full)


@pytest.mark.parametrize("static", [False, True], ids=["growing", "static"])
def test_a_failing_backend_call_leaves_the_session_as_it_was(static):
    rt = HRMRuntime.from_model(tiny_runtime_model(), static_cache=static)
    days, minutes = tokens(1, 6, 8, seed=10)
    full = rt.run_day(days, minutes, session_minutes=390)
    session = rt.start_day(days)
    session.push(minutes[:, :3], start_minute=0)
    assert session.cache_design == ("static" if static else "growing")
    owner, attr = (session._stream, "step") if static else (rt.backend, "infer")
    real, calls = getattr(owner, attr), []

    def failing(*args):  # the backend dies mid-push (device lost, OOM, ...)
        calls.append(args[0] if isinstance(args[0], str) else "l_step_static")
        raise RuntimeError("device lost")

    setattr(owner, attr, failing)
    with pytest.raises(RuntimeError, match="device lost"):
        session.push(minutes[:, 3:5], start_minute=3)
    setattr(owner, attr, real)
    assert calls == ["l_step_static" if static else "l_step"] and session.n_minutes == 3
    assert_same_decisions(session.push_timeline(minutes[:, 3:], start_minute=3), full)


def test_numpy_float64_tokens_are_accepted_and_equal_float32():
    rt = HRMRuntime.from_model(tiny_runtime_model())
    days, minutes = tokens(1, 6, 5, seed=11)
    a = rt.run_day(days, minutes)
    b = rt.run_day(days.double().numpy(), minutes.double().numpy())
    np.testing.assert_array_equal(a.action_logits, b.action_logits)
