"""One halting rule everywhere: the runtime (per day and streaming), verify's metrics, the precision judge, the
trainer's validation and `hrm-export run --json` give the same halting minute for a halt at minute 0, in
mid-session, at the last minute, and when q_halt never beats q_continue (the close halts: minute 389).

The model is built to halt exactly where we say: every block's norm weights are zero (each residual block adds
nothing), FiLM is zero (γ = β = 0), and the embedding carries minute feature 0 into channel 0 beside a constant;
the Q-head reads q_halt = channel 0 after the final RMSNorm and q_continue = 0. So q_halt > q_continue exactly at
the minutes whose feature 0 is positive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from runtime_bundle import in_range

from hrm_export.core.budgets import load_budgets
from hrm_export.core.parity.metrics import decision_stats, merge
from hrm_export.runtime import HRMRuntime
from model_src import HRM, tiny_config

T = 390
CASES = {"minute 0": 0, "mid-session": 197, "last minute": T - 1, "never": None}
EXPECTED = {name: (T - 1 if at is None else at) for name, at in CASES.items()}


def halting_model() -> HRM:
    model = HRM(tiny_config()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.l.embed.weight[0, 0] = 1.0  # channel 0 = minute feature 0
        model.l.embed.bias[1:] = 1.0  # the other channels: a constant, so the RMS never vanishes
        model.l.norm.weight.fill_(1.0)
        model.l.heads.q.weight[0, 0] = 1.0  # q_halt = normalised channel 0; q_continue = 0
        model.l.heads.action.bias[2] = 1.0  # "long" at every minute
    return model


def minutes_for(at: int | None, seed: int = 0) -> np.ndarray:
    """(T, 11) tokens whose feature 0 is positive only at minute `at`."""
    x = np.random.default_rng(seed).normal(size=(T, 11)).astype(np.float32)
    x[:, 0] = -1.0
    if at is not None:
        x[at, 0] = 1.0
    return x


DAYS = in_range(np.random.default_rng(1).normal(size=(len(CASES), 64, 8)).astype(np.float32), "days")
MINUTES = in_range(np.stack([minutes_for(at, i) for i, at in enumerate(CASES.values())]), "minutes")  # (4, T, 11)
WANT = list(EXPECTED.values())


@pytest.fixture(scope="module")
def model():
    return halting_model()


def test_runtime_per_day_and_streaming(model):
    rt = HRMRuntime.from_model(model)
    assert rt.run_day(DAYS, MINUTES).halt_minute.tolist() == WANT
    session = rt.start_day(DAYS)
    for t in range(T):
        d = session.push(MINUTES[:, t:t + 1], start_minute=t)
    assert d.halt_minute.tolist() == WANT and d.halted.all()


def _heads(model, minutes=MINUTES) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        logits, quantity, q_values, _, _ = model(torch.from_numpy(DAYS), torch.from_numpy(minutes))
    return {"action_logits": logits, "quantity": quantity, "q_values": q_values}


def test_verify_and_the_precision_judge_count_an_explicit_halt_at_the_close_as_agreement(model):
    from hrm_export.precision.judge import judge

    ref = _heads(model)
    explicit = MINUTES.copy()
    explicit[3, T - 1, 0] = 1.0  # the "never" session halts on its own at the close: the same decision
    cand = _heads(model, explicit)
    s = merge([decision_stats(cand, ref, near_tie=1e-3)])
    assert s["halt_agree"] == s["sessions"] == 4 and s["halt_max_shift"] == 0
    budgets = load_budgets()
    as_np = lambda h: {k: v.numpy() for k, v in h.items()} | {"film_gamma": np.zeros((4, 48), np.float32),  # noqa
                                                              "film_beta": np.zeros((4, 48), np.float32)}
    report = judge(as_np(ref), as_np(cand), budgets, "fp32", "test")
    assert report.decision["halt_agree"] == 4 and report.decision["halt_max_shift"] == 0


def test_verify_counts_a_moved_halt():
    model = halting_model()
    ref, moved = _heads(model), MINUTES.copy()
    moved[:, :, 0] = np.roll(MINUTES[:, :, 0], 1, axis=1)  # each halt one minute later (the last wraps to 0)
    s = merge([decision_stats(_heads(model, moved), ref, near_tie=1e-3)])
    assert s["halt_agree"] == 1 and s["halt_max_shift"] == T - 1  # only "never" still agrees; 389 → 0


def test_trainer_validation(model):
    from model_src.labels import LabelConfig
    from model_src.train import evaluate
    from model_src.train_data import DayTensors
    from model_src.train_dist import setup_dist

    closes = 100 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 1e-3, T)))
    for i, want in enumerate(WANT):
        sample = SimpleNamespace(symbol="X", date=f"2024-01-0{i + 1}", days=DAYS[i], minutes=MINUTES[i],
                                 minute_close=closes, prev_close=100.0)
        stats = evaluate(model, DayTensors([sample], LabelConfig()), setup_dist(), torch.device("cpu"), "off", 1)
        assert stats["val_mean_halt_minute"] == want


def test_run_json(model, tmp_path):
    from hrm_export.export.bundle import export_bundle
    from model_src.checkpoint import save_checkpoint

    save_checkpoint(model, tmp_path / "halting.safetensors")
    export_bundle(tmp_path / "halting.safetensors", tmp_path / "bundle", profiles=["latency"])
    np.save(tmp_path / "days.npy", DAYS)
    np.save(tmp_path / "minutes.npy", MINUTES)
    for mode in ([], ["--full"]):
        r = subprocess.run([sys.executable, "-m", "hrm_export", "run", str(tmp_path / "bundle"), "--days",
                            str(tmp_path / "days.npy"), "--minutes", str(tmp_path / "minutes.npy"), "--json",
                            "--backend", "ort-cpu", *mode], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        lines = [json.loads(x) for x in r.stdout.splitlines()]
        assert lines[-1]["summary"]["halt_minute"] == WANT
        first_halted = [min(x["minute"] for x in lines[:-1] if x["instrument"] == b and x["halted"])
                        for b in range(len(WANT))]
        assert first_halted == WANT
