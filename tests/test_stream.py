"""The fixed-capacity K/V cache (l_step_static): equal to the full pass at every minute, on every backend here;
the runtime's push path; ORT reading the session's numpy cache in place; older bundles; chunked run_day."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrm_export.core.manifest import Manifest
from hrm_export.core.specs import STATIC_STEP, static_cache_shape
from hrm_export.runtime import HRMRuntime
from model_src import HRM, tiny_config
from tests.runtime_bundle import assert_same_decisions, copy_bundle, tiny_bundle, tiny_runtime_model, tokens

SPANS = [1] * 40 + [3, 7, 1, 64] + [1] * 30  # single minutes, odd chunks, a run_day-sized chunk


def _stream(s, minutes, spans=SPANS):
    t, lines = 0, []
    for n in spans:
        lines.append(s.push_timeline(minutes[:, t:t + n], start_minute=t))
        t += n
    return lines, t


def _cat(lines):
    from hrm_export.core.decisions import Timeline

    joined = {f: np.concatenate([getattr(x, f) for x in lines], axis=1) for f in Timeline.__dataclass_fields__
              if f not in ("first_minute", "halt_minute")}
    return Timeline(first_minute=lines[0].first_minute, halt_minute=lines[-1].halt_minute, **joined)


@pytest.mark.parametrize("cross", [False, True])
def test_model_static_step_equals_full_pass(cross):
    torch.manual_seed(0)
    m = HRM(tiny_config(cross_attention=cross)).eval()
    c = m.cfg
    days, minutes = torch.randn(2, 10, 8), torch.randn(2, 60, 11)
    with torch.no_grad():
        h, g, b = m.h(days)
        full = m.l(minutes, g, b, h if cross else None)
        cache = torch.zeros(static_cache_shape(c, 2))
        views = [cache[i, j] for i in range(c.l_layers) for j in range(2)]
        t, outs = 0, []
        for n in (1, 1, 5, 13, 1, 39):
            *heads, new = m.l.step_static(minutes[:, t:t + n], g, b, torch.tensor([t]), views, h if cross else None)
            cache[:, :, :, :, t:t + n] = new
            outs.append(heads)
            t += n
    for i, name in enumerate(("action_logits", "quantity", "q_values")):
        got = torch.cat([o[i] for o in outs], dim=1)
        torch.testing.assert_close(got, full[i], atol=2e-6, rtol=0, msg=name)


@pytest.mark.parametrize("backend", ["ort-cpu", "torch"])
def test_push_static_equals_full_pass_every_minute(backend):
    rt = HRMRuntime.open(tiny_bundle(), backend=backend)
    days, minutes = tokens(3, 12, 390, seed=4)
    full = rt.run_day(days, minutes)
    s = rt.start_day(days)
    assert s.cache_design == "static"
    lines, t = _stream(s, minutes)
    assert s.n_minutes == t
    assert_same_decisions(_cat(lines), full, atol=1e-5)
    # the growing design on the same runtime gives the same decisions
    grow = HRMRuntime.open(tiny_bundle(), backend=backend, static_cache=False).start_day(days)
    assert grow.cache_design == "growing"
    assert_same_decisions(_cat(_stream(grow, minutes)[0]), full, atol=1e-5)


def test_refused_push_leaves_static_session_as_it_was():
    rt = HRMRuntime.open(tiny_bundle(), backend="ort-cpu")
    days, minutes = tokens(2, 12, 30, seed=5)
    full = rt.run_day(days, minutes, session_minutes=390)
    s = rt.start_day(days)
    s.push(minutes[:, :10], start_minute=0)
    bad = minutes[:, 10:11].clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(Exception, match="NaN|non-finite|finite"):
        s.push(bad, start_minute=10)
    assert s.n_minutes == 10
    rest = s.push_timeline(minutes[:, 10:30], start_minute=10)
    assert_same_decisions(rest, full, atol=1e-5)


def test_ort_reads_the_session_cache_in_place():
    """The cache's OrtValues share the numpy array's memory: a write into the array after binding changes what
    ONNX Runtime computes (a copy taken at bind time would not)."""
    from hrm_export.backends.ort_backend import OrtBackend

    be = OrtBackend(tiny_bundle())
    be.activate()
    cfg = be.manifest.config
    film = {"film_gamma": torch.zeros(1, cfg.l_dim), "film_beta": torch.zeros(1, cfg.l_dim)}
    stream = be.stream_state(film)
    x = tokens(1, 1, 2, seed=6)[1]
    stream.step(x[:, :1], 0)
    before = stream.step(x[:, 1:2], 1)[0].clone()
    again = stream.step(x[:, 1:2], 1)[0]
    torch.testing.assert_close(again, before, atol=0, rtol=0)
    stream.cache[:, :, :, :, 0] += 1.0  # slot 0 is visible at position 1
    assert not torch.allclose(stream.step(x[:, 1:2], 1)[0], before)


def test_bundle_without_static_step_streams_through_l_step(tmp_path):
    bundle = copy_bundle(tmp_path)
    m = Manifest.load(bundle)
    m.artifacts = [a for a in m.artifacts if a.module != STATIC_STEP]
    m.save()
    rt = HRMRuntime.open(bundle, backend="ort-cpu")
    days, minutes = tokens(2, 12, 20, seed=7)
    s = rt.start_day(days)
    assert s.cache_design == "growing"
    full = rt.run_day(days, minutes, session_minutes=390)
    assert_same_decisions(s.push_timeline(minutes, start_minute=0), full, atol=1e-5)


@pytest.mark.parametrize("backend", ["ort-cpu", "torch"])
def test_run_day_in_chunks_equals_one_pass(backend):
    rt = HRMRuntime.open(tiny_bundle(), backend=backend)
    days, minutes = tokens(3, 12, 390, seed=8)
    one = rt.run_day(days, minutes)
    rt.cache.clear()
    chunked = rt.run_day(days, minutes, chunk_minutes=64)
    assert_same_decisions(chunked, one, atol=1e-5)


def test_from_model_runtime_streams_static():
    rt = HRMRuntime.from_model(tiny_runtime_model())
    days, minutes = tokens(2, 12, 50, seed=9)
    s = rt.start_day(days)
    assert s.cache_design == "static"
    full = rt.run_day(days, minutes, session_minutes=390)
    assert_same_decisions(_cat(_stream(s, minutes, [1] * 20 + [30])[0]), full, atol=1e-5)


def test_graphed_stream_body_equals_full_pass_on_cpu():
    """The body the CUDA graph captures (the step and its index_copy_ into the cache at a device-side position),
    run eagerly: a new day on the same state (reset) gives the same heads as a fresh one."""
    from hrm_export.backends.stream import GraphedTorchStream
    from model_src.model import LStepStatic

    m = tiny_runtime_model()
    days, minutes = tokens(2, 12, 80, seed=11)
    with torch.no_grad():
        h, g, b = m.h(days)
        full = m.l(minutes, g, b)
    stream = GraphedTorchStream(LStepStatic(m.l).eval(), m.cfg, {"film_gamma": g, "film_beta": b}, "cpu",
                                capture=False)
    for _day in range(2):
        outs, t = [], 0
        for n in [1] * 30 + [20, 1, 29]:
            outs.append(stream.step(minutes[:, t:t + n], t))
            t += n
        torch.testing.assert_close(torch.cat([o[0] for o in outs], dim=1), full[0], atol=1e-5, rtol=0)
        stream.reset({"film_gamma": g, "film_beta": b})
    assert sorted(stream._graphs) == [1, 20, 29]  # one entry per push length, not per minute
