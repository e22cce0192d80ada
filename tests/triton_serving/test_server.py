"""A real tritonserver (nvidia-pytriton's, from `make triton-env`) on 127.0.0.1 serving the tiny bundle's repository:
decisions over HTTP and gRPC equal the Python runtime's, live streams, bad requests answered while the server
goes on serving, idle sequences freed, metrics, a bounded load, and no process left after a stop by PID.

Run: make test-triton   (or .venv/bin/python -m pytest -m triton tests/triton_serving)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import psutil
import pytest
from conftest import IDLE_S
from runtime_bundle import in_range
from tritonclient.utils import InferenceServerException

from hrm_export.runtime import HRMRuntime
from hrm_export.triton.client import TritonClient
from hrm_export.triton.load import LoadOptions, run_load
from hrm_export.triton.server import LocalServer, server_env

pytestmark = pytest.mark.triton

FIELDS = ("action", "halted", "confidence", "quantity")


@pytest.fixture(scope="module")
def server(repo, tmp_path_factory):
    server_env()  # a clear error (build it with `make triton-env`) rather than a failed start
    with LocalServer(repo, log=tmp_path_factory.mktemp("server") / "tritonserver.log").start() as s:
        yield s


@pytest.fixture(scope="module")
def rt(bundle):
    with HRMRuntime.open(bundle, backend="ort-cpu") as runtime:
        yield runtime


@pytest.fixture(params=["http", "grpc"])
def client(request, server):
    c = TritonClient(server.http_url if request.param == "http" else server.grpc_url, request.param)
    yield c
    c.close()


def day_tokens(batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random tokens inside each feature's valid range (the runtime refuses others)."""
    g = np.random.default_rng(seed)
    return (in_range(g.standard_normal((batch, 16, 8), dtype=np.float32), "days"),
            in_range(g.standard_normal((batch, 390, 11), dtype=np.float32), "minutes"))


def metrics(server) -> str:
    with urllib.request.urlopen(server.metrics_url, timeout=10) as r:
        return r.read().decode()


def metric(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{want}}} in the metrics")


def test_hrm_day_equals_the_runtime(client, rt):
    days, minutes = day_tokens(3, seed=1 if client.protocol == "http" else 2)
    got = client.day(days, minutes)
    tl = rt.run_day(days, minutes)
    for f in ("action", "halted"):
        np.testing.assert_array_equal(got[f], getattr(tl, f))
    np.testing.assert_array_equal(got["halt_minute"], tl.halt_minute)
    np.testing.assert_allclose(got["confidence"], tl.confidence, atol=1e-6, rtol=0)
    np.testing.assert_allclose(got["quantity"], tl.quantity, atol=1e-6, rtol=0)
    assert got["action"].shape == (3, 390) and got["action"].dtype == np.int32
    assert (tl.halt_minute >= 0).any()  # the tiny model halts somewhere: the halt columns are exercised


def test_streams_interleaved_equal_the_runtime_sessions(client, rt):
    """Two instruments streamed minute by minute, their requests alternating, against two runtime sessions."""
    days, minutes = day_tokens(2, seed=3)
    ids = (11, 12) if client.protocol == "http" else (21, 22)
    sessions = [rt.start_day(days[i:i + 1]) for i in range(2)]
    for i, seq in enumerate(ids):
        assert client.step(seq, days=days[i:i + 1], start=True)["minute"].tolist() == [-1]
    halted_seen = False
    for t in range(390):
        for i, seq in enumerate(ids):
            got = client.step(seq, minutes=minutes[i:i + 1, t:t + 1], minute=t, end=t == 389)
            ref = sessions[i].push(minutes[i:i + 1, t:t + 1], start_minute=t)
            assert got["minute"].tolist() == [t]
            for f in FIELDS:
                np.testing.assert_allclose(got[f], getattr(ref, f), atol=1e-6, rtol=0, err_msg=f"{f} at {t}")
            assert got["halt_minute"].tolist() == ref.halt_minute.tolist()
            halted_seen |= bool(ref.halted[0])
    assert halted_seen
    with pytest.raises(InferenceServerException, match="START"):  # END freed it: a sequence that is over
        client.step(ids[0], minutes=minutes[:1, :1], minute=0)


def test_bad_requests_get_errors_and_the_server_keeps_serving(server, rt):
    c = TritonClient(server.grpc_url, "grpc")
    days, minutes = day_tokens(1, seed=4)
    cases = {
        "wrong feature count": lambda: c.day(days[:, :, :7], minutes),
        "wrong rank": lambda: c.day(days[0], minutes[0]),
        "wrong dtype": lambda: c.day(days.astype(np.float64), minutes),
        "too many days": lambda: c.day(np.concatenate([days] * 5, axis=1), minutes),  # 80 > the profile's 64
        "NaN minute": lambda: c.day(days, np.where(np.arange(11) == 3, np.nan, minutes).astype(np.float32)),
        "never started": lambda: c.step(31, minutes=minutes[:, :1], minute=0),
    }
    messages = {}
    for what, call in cases.items():
        with pytest.raises(InferenceServerException) as e:
            call()
        messages[what] = e.value.message()
    assert "non-finite value nan" in messages["NaN minute"] and "hint:" in messages["NaN minute"]
    assert "64" in messages["too many days"]  # the profile's limit is named
    assert "START" in messages["never started"]

    c.step(32, days=days, start=True)
    c.step(32, minutes=minutes[:, :1], minute=0)
    with pytest.raises(InferenceServerException, match="skips 1 minute"):
        c.step(32, minutes=minutes[:, 2:3], minute=2)  # minute 1 skipped
    with pytest.raises(InferenceServerException, match="repeats"):
        c.step(32, minutes=minutes[:, :1], minute=0)
    with pytest.raises(InferenceServerException, match="non-finite"):
        c.step(32, minutes=np.full_like(minutes[:, 1:2], np.inf), minute=1)
    with pytest.raises(InferenceServerException, match="days sent without START"):
        c.step(32, days=days, minutes=minutes[:, 1:2], minute=1)
    with pytest.raises(InferenceServerException, match="START without days"):
        c.step(33, start=True)
    # the refused requests left the sequence where it was: minute 1 is next and equals the runtime's
    got = c.step(32, minutes=minutes[:, 1:2], minute=1, end=True)
    session = rt.start_day(days)
    session.push(minutes[:, :1], start_minute=0)
    assert got["action"].tolist() == session.push(minutes[:, 1:2], start_minute=1).action.tolist()
    # and the server answers everyone else as before
    tl = rt.run_day(days, minutes)
    np.testing.assert_array_equal(c.day(days, minutes)["action"], tl.action)
    c.close()


def test_a_bad_request_batched_with_good_ones_fails_alone(server, rt):
    """Concurrent hrm_day requests the dynamic batcher may join: the NaN one errs, the others are answered."""
    from concurrent.futures import ThreadPoolExecutor

    feeds = [day_tokens(1, seed=50 + i) for i in range(6)]
    feeds[2] = (feeds[2][0], np.full_like(feeds[2][1], np.nan))

    def call(feed):
        c = TritonClient(server.grpc_url, "grpc")
        try:
            return c.day(*feed)
        except InferenceServerException as e:
            return e
        finally:
            c.close()

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(call, feeds))
    assert isinstance(results[2], InferenceServerException) and "non-finite" in results[2].message()
    for i, r in enumerate(results):
        if i != 2:
            np.testing.assert_array_equal(r["action"], rt.run_day(*feeds[i]).action)


def test_idle_sequence_is_freed(server):
    c = TritonClient(server.grpc_url, "grpc")
    days, minutes = day_tokens(1, seed=5)
    c.step(41, days=days, start=True)
    c.step(41, minutes=minutes[:, :1], minute=0)
    before = metric(metrics(server), "hrm_stream_sequences_expired_total", model="hrm_stream")
    time.sleep(IDLE_S + 2.5)  # past Triton's idle timeout and the model's sweep (every IDLE_S / 4)
    with pytest.raises(InferenceServerException):
        c.step(41, minutes=minutes[:, 1:2], minute=1)
    c.step(42, days=days, start=True, end=True)  # any execute() publishes the model's metrics
    text = metrics(server)
    assert metric(text, "hrm_stream_sequences_expired_total", model="hrm_stream") >= before + 1
    assert metric(text, "hrm_stream_active_sequences", model="hrm_stream") == 0
    c.close()


def test_metrics_endpoint_has_triton_and_runtime_figures(server, rt):
    c = TritonClient(server.http_url, "http")
    c.day(*day_tokens(1, seed=6))
    text = metrics(server)
    assert metric(text, "nv_inference_count", model="hrm_day", version="1") >= 1
    assert metric(text, "hrm_runtime_stage_calls_total", model="hrm_day", stage="run_day") >= 1
    assert metric(text, "hrm_runtime_stage_latency_ms", model="hrm_day", stage="l_module", stat="p50") > 0
    assert metric(text, "hrm_runtime_host_rss_bytes", model="hrm_stream") > 0
    c.close()


def test_bounded_load_has_no_errors_and_identical_decisions(server, bundle):
    report = run_load(server.grpc_url, bundle, LoadOptions(clients=8, requests=4, streams=4, minutes=60, seed=100))
    for part in ("hrm_day", "hrm_stream"):
        assert report[part]["errors"] == 0, report[part]["first_error"]
        assert report[part]["decisions_differ"] == 0
        assert report[part]["max_abs_diff_confidence_quantity"] < 1e-5
    assert report["hrm_day"]["requests"] == 32 and report["hrm_stream"]["requests"] == 240
    assert report["hrm_stream"]["triton_inferences"] >= 240
    # 4 streams at once on 2 cores: the sequence batcher joins requests of different sequences in one execute()
    # (fewer executions than requests), and the decisions above held under it
    assert report["hrm_stream"]["triton_executions"] < report["hrm_stream"]["triton_inferences"]


def test_serve_cli_stops_the_server_and_its_stubs_by_pid(repo, tmp_path):
    """`hrm-export triton serve` in a subprocess: ready, then SIGTERM to it; the server and stubs are gone."""
    log = tmp_path / "server.log"
    cli = subprocess.Popen([sys.executable, "-m", "hrm_export", "triton", "serve", str(repo), "--model", "hrm_day",
                            "--log", str(log)], stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines = []
        for line in cli.stderr:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        pid = int(re.search(r"\(pid (\d+)\)", text).group(1))
        http = re.search(r"HTTP (127\.0\.0\.1:\d+)", text).group(1)
        stubs = [p.pid for p in psutil.Process(pid).children(recursive=True)]
        assert stubs, "the Python backend runs each model instance in a stub process"
        with urllib.request.urlopen(f"http://{http}/v2/models/hrm_day/ready", timeout=10) as r:
            assert r.status == 200
        os.kill(cli.pid, signal.SIGTERM)
        assert cli.wait(60) == 0
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait(10)
    for p in (pid, *stubs):
        assert not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE, p


def test_a_tampered_bundle_fails_the_model_load_with_the_reason(bundle, tmp_path):
    """The runtime inside the server opens its bundle fail-closed: a changed file stops the start, and the
    launcher's error names it (no half-started server is left)."""
    from hrm_export.triton import write_repository
    from hrm_export.triton.server import ServerError

    repo = write_repository(bundle, tmp_path / "repo").path
    onnx = repo / "hrm_day" / "1" / "bundle" / "h_module.onnx"
    data = onnx.read_bytes()
    onnx.unlink()  # the file is a hard link shared with other models: write a changed copy in its place
    onnx.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    server = LocalServer(repo, models=["hrm_day"], log=tmp_path / "server.log")
    with pytest.raises(ServerError, match="sha256"):
        server.start(attempts=1)
    assert server.proc.poll() is not None
