"""The synthetic market: deterministic, schema-clean, legs as documented, a tape that only the day tokens show
and that decides the pauses' labels."""

import contextlib

import numpy as np
import pandas as pd
import pytest
import torch

from model_src.data import build_samples, clean_bars
from model_src.features import DAY_FEATURES
from model_src.labels import LONG, SHORT, LabelConfig, session_labels
from model_src.synthetic import (
    IMPULSE,
    IMPULSE_MINUTES,
    LEG,
    LEVEL,
    P_FOLLOW,
    REGIMES,
    STEP_AT,
    STEP_MINUTES,
    TREND_CUT,
    simulate_market,
    synthetic_market,
)
from model_src.train_probe import heldout_accuracy, mlp_probes

N_DAYS = 300
LEG_MINUTE = np.arange(390) % LEG
PAUSE = (LEG_MINUTE >= IMPULSE_MINUTES + 5) & (LEG_MINUTE < STEP_AT)  # (390,) pause minutes, impulse settled
ODD_LEG = (np.arange(390) // LEG) % 2 == 1


@pytest.fixture(scope="module")
def market():
    return synthetic_market(N_DAYS, seed=0)


@pytest.fixture(scope="module")
def hidden():
    return simulate_market(N_DAYS, seed=0)[0]


@pytest.fixture(scope="module")
def samples(market):
    return build_samples(*market)


def leg_bits(hidden, first_day: int) -> np.ndarray:
    """(N, 390) the bit that governs each minute's leg: trending for even legs, up for odd legs."""
    return np.where(ODD_LEG[None], hidden.up[first_day:, None], hidden.trending[first_day:, None])


def test_deterministic_for_a_seed(market):
    daily, minute = market
    d2, m2 = synthetic_market(N_DAYS, seed=0)
    pd.testing.assert_frame_equal(daily, d2)
    pd.testing.assert_frame_equal(minute, m2)
    _, m3 = synthetic_market(N_DAYS, seed=1)
    assert not np.array_equal(minute["close"].to_numpy(), m3["close"].to_numpy())


def test_bars_follow_the_schema(market):
    daily, minute = market
    assert len(minute) == N_DAYS * 390 and len(daily) == N_DAYS
    for df in (daily, minute):
        clean, report = clean_bars(df)
        assert report.as_dict() == {}  # nothing to repair
        assert (df[["open", "high", "low", "close"]] > 0).all().all()
        assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
        assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
        assert str(df["timestamp"].dt.tz) == "America/New_York"
    first = minute["timestamp"].iloc[:390]
    assert first.iloc[0].strftime("%H:%M") == "09:30" and first.iloc[-1].strftime("%H:%M") == "15:59"
    s = minute.iloc[390:780]  # daily bars aggregate the session's minutes
    assert daily["open"].iloc[1] == s["open"].iloc[0] and daily["close"].iloc[1] == s["close"].iloc[-1]
    assert daily["volume"].iloc[1] == s["volume"].sum()
    assert set(daily["regime"]) == set(REGIMES)


def test_the_tape_is_read_from_the_day_tokens(hidden, samples):
    """Each session's two bits are functions of its own day tokens (the latest ret5), nothing else."""
    first = N_DAYS - len(samples)
    ret5 = np.array([s.days[-1, DAY_FEATURES.index("ret5")] for s in samples])  # float32 tokens
    np.testing.assert_allclose(ret5, hidden.ret5[first:], rtol=1e-5, atol=1e-5)
    clear = np.abs(np.abs(ret5) - TREND_CUT) > 1e-4  # away from float32 rounding at the cut
    assert (hidden.trending[first:][clear] == (np.abs(ret5) >= TREND_CUT)[clear]).all()
    assert (hidden.up[first:][np.abs(ret5) > 1e-4] == (ret5 > 0)[np.abs(ret5) > 1e-4]).all()
    assert 0.4 < hidden.trending.mean() < 0.6 and 0.4 < hidden.up.mean() < 0.6  # both bits about balanced
    stay = np.mean(hidden.trending[7:] == hidden.trending[6:-1])
    assert stay > 0.6  # a multi-day state: consecutive days share 4 of ret5's 5 days


def test_legs_reset_to_the_impulse_then_step(hidden):
    """Pauses sit at d·IMPULSE from the open whatever came before; the step lands at ±LEVEL."""
    y = np.cumsum(hidden.minute_return, axis=1)  # (D, 390) log price relative to the open
    d = hidden.direction.astype(float)
    pause_level = (y * d)[:, PAUSE].mean()
    assert abs(pause_level - IMPULSE) < 0.1 * IMPULSE
    hold = LEG_MINUTE == STEP_AT + STEP_MINUTES + 5
    after = (y * d * hidden.follows)[:, hold]  # follow: +LEVEL along d, fade: +LEVEL against it
    assert abs(after.mean() - LEVEL) < 0.1 * LEVEL
    assert abs(np.mean(hidden.follows[:, LEG_MINUTE == 0] == 1) - 0.5) < 0.05  # each bit about half the days


def test_the_tape_decides_the_pause_labels(hidden, samples):
    """During a pause the 30-minute label is long/short along d when the leg's bit is set, against d when not:
    knowing d alone is a coin."""
    first = N_DAYS - len(samples)
    labels = np.stack([session_labels(s.minute_close, LabelConfig())[0] for s in samples])  # (N, 390)
    d = hidden.direction[first:]
    along_d = np.where(d > 0, labels == LONG, labels == SHORT)[:, PAUSE]
    against_d = np.where(d > 0, labels == SHORT, labels == LONG)[:, PAUSE]
    bit = leg_bits(hidden, first)[:, PAUSE]
    agrees = np.where(bit, along_d, against_d).mean()
    assert agrees > 0.8 * P_FOLLOW, agrees
    assert abs(along_d.mean() - against_d.mean()) < 0.1  # without the bit: no side is favoured


def test_the_session_does_not_show_the_tape(hidden, samples):
    """A classifier on a pause minute's tokens (and its leg minute) cannot tell the leg's bit, out of sample."""
    first = N_DAYS - len(samples)
    x = torch.from_numpy(np.stack([s.minutes for s in samples])[:, PAUSE])  # (N, P, 11)
    phase = torch.from_numpy(LEG_MINUTE[PAUSE] / LEG).float()[None, :, None].expand(len(x), -1, 1)
    x = torch.cat([x, x[..., :8].abs(), phase], -1)
    y = torch.from_numpy(leg_bits(hidden, first)[:, PAUSE]).long()
    n = int(0.7 * len(x))
    with one_thread():
        acc = heldout_accuracy(x, y, n, hidden=32, lr=3e-3)
    majority = max(y[n:].float().mean().item(), 1 - y[n:].float().mean().item())
    assert acc < majority + 0.04, (acc, majority)


def test_the_day_tokens_add_what_the_minutes_cannot():
    """An MLP on a minute's tokens and leg minute beats the majority class; given also the leg's bit, read from
    the day tokens as the H-module would, it gains at least 5 points more, out of sample (model_src.train_probe)."""
    with one_thread():
        rows = mlp_probes(160, seed=5, hidden=64)
    majority, tokens, bit = rows.values()
    assert tokens > majority + 0.1, rows
    assert bit > tokens + 0.05, rows


@contextlib.contextmanager
def one_thread():
    """Tiny matmuls: extra threads only wait on each other on a busy machine (10× slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
