"""Streaming (start_day + push) equals the full-session pass (run_day) at every minute, on every backend here."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from runtime_bundle import assert_same_decisions, tiny_bundle, tiny_runtime_model, tokens

from hrm_export.core.errors import UserError
from hrm_export.runtime import HRMRuntime

BACKENDS = ["torch", "ort-cpu"]


@pytest.fixture(scope="module", params=BACKENDS)
def runtime(request):
    rt = HRMRuntime.open(tiny_bundle(), backend=request.param)
    assert rt.backend_name == request.param
    yield rt
    rt.close()


def test_push_one_minute_at_a_time_equals_run_day_at_every_minute(runtime):
    days, minutes = tokens(3, 16, 390)  # a full session, 3 instruments
    full = runtime.run_day(days, minutes)
    session = runtime.start_day(days)
    for t in range(390):
        d = session.push(minutes[:, t:t + 1], start_minute=t)
        ref = full.at(t)
        assert d.minute == t
        np.testing.assert_array_equal(d.action, ref.action, err_msg=f"minute {t}")
        np.testing.assert_allclose(d.confidence, ref.confidence, atol=1e-4, err_msg=f"minute {t}")
        np.testing.assert_allclose(d.quantity, ref.quantity, atol=1e-4, err_msg=f"minute {t}")
        np.testing.assert_allclose(d.q_halt, ref.q_halt, atol=1e-4)
        np.testing.assert_allclose(d.q_continue, ref.q_continue, atol=1e-4)
        np.testing.assert_array_equal(d.halted, ref.halted, err_msg=f"minute {t}")
        np.testing.assert_array_equal(d.halt_minute, ref.halt_minute, err_msg=f"minute {t}")
    assert session.n_minutes == 390
    np.testing.assert_array_equal(session.halt_minute, full.halt_minute)


def test_pushes_of_several_minutes_equal_run_day(runtime):
    days, minutes = tokens(2, 9, 120, seed=2)
    full = runtime.run_day(days, minutes, session_minutes=390)
    session = runtime.start_day(days)
    t = 0
    for size in (1, 5, 2, 30, 1, 81):  # 120 minutes in uneven pushes
        line = session.push_timeline(minutes[:, t:t + size], start_minute=t)
        assert (line.first_minute, line.minutes) == (t, size)
        assert_same_decisions(line, full)
        t += size


def test_pushes_longer_than_the_profile_step_and_batch_are_split(runtime):
    days, minutes = tokens(5, 12, 40, seed=3)
    full = runtime.run_day(days, minutes, session_minutes=390)  # the stream below is a 390-minute day too
    small = dataclasses.replace(runtime.limits, batch=2, new_minutes=3)  # 5 instruments → 3 chunks; 17 → 6 steps
    saved, runtime.limits = runtime.limits, small
    try:
        n_calls = runtime.monitor.as_dict()["stages"].get("l_step", {}).get("count", 0)
        session = runtime.start_day(days)
        line = session.push_timeline(minutes[:, :17], start_minute=0)
        calls = runtime.monitor.as_dict()["stages"]["l_step"]["count"] - n_calls
        assert calls == 3 * 6
        assert_same_decisions(line, full)
        assert_same_decisions(session.push_timeline(minutes[:, 17:], start_minute=17), full)
        assert_same_decisions(runtime.run_day(days, minutes, session_minutes=390), full, atol=1e-5)  # chunked too
    finally:
        runtime.limits = saved


def test_halt_is_sticky_for_the_day_and_cleared_by_a_new_day(runtime):
    days, minutes = tokens(4, 16, 200, seed=4)
    full = runtime.run_day(days, minutes)
    wants_halt = full.q_halt > full.q_continue  # (B, T) the raw per-minute rule
    # the model's Q-head flips back and forth, so there are minutes after a halt that would not halt alone
    b, t = np.argwhere(full.halted & ~wants_halt)[0]
    first = int(np.argmax(wants_halt[b]))
    assert full.halt_minute[b] == first < t
    assert full.halted[b, first:].all() and not full.halted[b, :first].any()
    session = runtime.start_day(days)
    session.push(minutes[:, :t + 1], start_minute=0)
    assert session.halt_minute[b] == first
    session.start_day(days)  # next day: the stream and the halts start over
    assert session.n_minutes == 0 and (session.halt_minute == -1).all()
    d = session.push(minutes[:, :1], start_minute=0)
    np.testing.assert_array_equal(d.halted, full.halted[:, 0])


def test_cross_attention_model_streams_like_it_runs_the_day():
    rt = HRMRuntime.from_model(tiny_runtime_model(cross_attention=True))
    days, minutes = tokens(2, 7, 60, seed=5)
    full = rt.run_day(days, minutes, session_minutes=390)
    session = rt.start_day(days)
    for t in range(0, 60, 4):
        assert_same_decisions(session.push_timeline(minutes[:, t:t + 4], start_minute=t), full)


def test_bf16_torch_streaming_tracks_run_day():
    rt = HRMRuntime.from_model(tiny_runtime_model(), precision="bf16")
    days, minutes = tokens(2, 8, 50, seed=6)
    full = rt.run_day(days, minutes)
    session = rt.start_day(days)
    line = session.push_timeline(minutes, start_minute=0)
    # bf16 keeps 8 bits of mantissa: incremental and full attention round differently, so compare loosely
    np.testing.assert_allclose(line.action_logits, full.action_logits, atol=0.1)
    assert (line.action == full.action).mean() > 0.9


def test_runtime_keeps_the_callers_model_untouched():
    model = tiny_runtime_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    HRMRuntime.from_model(model, precision="bf16").run_day(*tokens(1, 4, 5))
    after = model.state_dict()
    assert all(after[k].dtype == torch.float32 and torch.equal(after[k], v) for k, v in before.items())


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_cuda_streaming_equals_run_day(cuda_graphs):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    rt = HRMRuntime.from_model(tiny_runtime_model(), device="cuda", cuda_graphs=cuda_graphs)
    days, minutes = tokens(2, 16, 390, seed=30)
    full = HRMRuntime.from_model(tiny_runtime_model()).run_day(days, minutes)  # CPU eager reference
    session = rt.start_day(days)
    assert session._kv.device.type == "cuda"  # K/V stays on the device between pushes
    for t in range(0, 390, 1 if cuda_graphs else 13):
        assert_same_decisions(session.push_timeline(minutes[:, t:t + (1 if cuda_graphs else 13)], start_minute=t),
                              full, atol=1e-3)
    assert_same_decisions(rt.run_day(days, minutes), full, atol=1e-3)
    if cuda_graphs:
        assert rt.backend.captures >= 390  # one l_step graph per past length (plus the warm-up's)
        again = rt.start_day(days)  # the second day replays the captured graphs
        captures = rt.backend.captures
        for t in range(20):
            assert_same_decisions(again.push_timeline(minutes[:, t:t + 1], start_minute=t), full, atol=1e-3)
        assert rt.backend.captures == captures


@pytest.mark.slow
def test_torch_compile_streaming_equals_run_day():
    rt = HRMRuntime.from_model(tiny_runtime_model(), compile=True)
    days, minutes = tokens(1, 16, 24, seed=31)
    full = HRMRuntime.from_model(tiny_runtime_model()).run_day(days, minutes, session_minutes=390)
    session = rt.start_day(days)
    for t in range(0, 24, 6):
        assert_same_decisions(session.push_timeline(minutes[:, t:t + 6], start_minute=t), full)


def test_raw_minute_bars_stream_like_the_offline_tokens():
    build_samples = pytest.importorskip("model_src.data", reason="model_src.data not installed").build_samples
    synthetic_market = pytest.importorskip("model_src.synthetic", reason="model_src.synthetic missing").synthetic_market

    daily, minute = synthetic_market(8, seed=3)
    sample = build_samples(daily, minute, lookback=16)[-1]
    bars = minute[minute["timestamp"].dt.date == sample.date]  # complete synthetic session: 390 bars, no repairs
    assert len(bars) == 390
    rt = HRMRuntime.from_model(tiny_runtime_model())
    full = rt.run_day(sample.days[None], sample.minutes[None])
    session = rt.session().start_day(sample.days[None], prev_close=[sample.prev_close])
    cols = {f: bars[f].to_numpy() for f in ("open", "high", "low", "close", "volume")}
    bad = {**{f: v[:1] for f, v in cols.items()}, "close": [float("nan")]}
    for t in range(0, 390, 3):
        if t == 30:  # a broken bar is refused and changes nothing
            with pytest.raises(UserError, match="non-finite or non-positive price"):
                session.push_bars(bad, start_minute=t)
        d = session.push_bars({f: v[t:t + 3] for f, v in cols.items()}, start_minute=t)
        ref = full.at(t + 2)
        np.testing.assert_array_equal(d.action, ref.action)
        np.testing.assert_allclose(d.confidence, ref.confidence, atol=1e-4)
        np.testing.assert_array_equal(d.halted, ref.halted)
    with pytest.raises(UserError, match="push_bars, not tokens"):
        session.push(sample.minutes[None, :1], start_minute=390)
