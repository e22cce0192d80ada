"""The synthetic market: deterministic, schema-clean, regime persistence, U-shapes, and a learnable signal."""

import numpy as np
import pandas as pd
import pytest
import torch

from model_src.data import clean_bars, stack_samples, synthetic_samples
from model_src.labels import LabelConfig, session_labels
from model_src.synthetic import REGIMES, STAY, synthetic_market


@pytest.fixture(scope="module")
def market():
    return synthetic_market(300, seed=0)


def test_deterministic_for_a_seed(market):
    daily, minute = market
    d2, m2 = synthetic_market(300, seed=0)
    pd.testing.assert_frame_equal(daily, d2)
    pd.testing.assert_frame_equal(minute, m2)
    _, m3 = synthetic_market(300, seed=1)
    assert not np.array_equal(minute["close"].to_numpy(), m3["close"].to_numpy())


def test_bars_follow_the_schema(market):
    daily, minute = market
    assert len(minute) == 300 * 390 and len(daily) == 300
    for df in (daily, minute):
        clean, report = clean_bars(df)
        assert report.as_dict() == {}  # nothing to repair
        assert (df[["open", "high", "low", "close"]] > 0).all().all()
        assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
        assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
        assert str(df["timestamp"].dt.tz) == "America/New_York"
    first = minute["timestamp"].iloc[:390]
    assert first.iloc[0].strftime("%H:%M") == "09:30" and first.iloc[-1].strftime("%H:%M") == "15:59"
    # daily bars aggregate the session's minutes
    s = minute.iloc[390:780]
    assert daily["open"].iloc[1] == s["open"].iloc[0] and daily["close"].iloc[1] == s["close"].iloc[-1]
    assert daily["volume"].iloc[1] == s["volume"].sum()


def test_regimes_persist_across_days(market):
    daily, _ = market
    reg = daily["regime"].to_numpy()
    assert set(reg) == set(REGIMES)
    stay = np.mean(reg[1:] == reg[:-1])
    assert abs(stay - STAY) < 0.07  # Markov persistence, not i.i.d. (which would give ~0.25)


def test_intraday_u_shapes(market):
    _, minute = market
    close = minute["close"].to_numpy().reshape(300, 390)
    vol = minute["volume"].to_numpy().reshape(300, 390)
    absret = np.abs(np.diff(np.log(close), axis=1))  # (days, 389)
    mid = slice(150, 240)
    assert absret[:, :15].mean() > 1.5 * absret[:, mid].mean()
    assert absret[:, -15:].mean() > 1.2 * absret[:, mid].mean()
    assert vol[:, :15].mean() > 1.5 * vol[:, mid].mean() and vol[:, -15:].mean() > 1.5 * vol[:, mid].mean()


def test_overnight_gaps_lean_with_the_regime(market):
    daily, _ = market
    prev_close = daily["close"].shift(1)
    gap = np.log(daily["open"] / prev_close)
    up, down = gap[daily["regime"] == "trend_up"].mean(), gap[daily["regime"] == "trend_down"].mean()
    assert up > 0.001 and down < -0.001


def test_forward_returns_are_partly_predictable():
    """A small MLP on one minute's tokens plus yesterday's day token, trained on the first 70 % of days,
    beats the majority class of the 15-minute action labels on the last 30 %: the signal is learnable."""
    torch.manual_seed(0)
    samples = synthetic_samples(250, seed=5, lookback=4)
    days, minutes = stack_samples(samples)
    B, T, _ = minutes.shape
    x = torch.cat([minutes, days[:, -1:, :].expand(B, T, -1)], dim=-1)  # (B, T, 19)
    y = torch.from_numpy(np.stack([session_labels(s.minute_close, LabelConfig())[0] for s in samples]))  # (B, T)
    ntr = int(B * 0.7)
    xtr, ytr = x[:ntr].reshape(-1, x.shape[-1]), y[:ntr].reshape(-1)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[-1], 64), torch.nn.GELU(), torch.nn.Linear(64, 3))
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: extra threads only wait on each other (10× slower on a busy machine)
    try:
        for _ in range(3):
            for idx in torch.randperm(len(xtr)).split(1024):
                loss = torch.nn.functional.cross_entropy(net(xtr[idx]), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        pred = net(x[ntr:]).argmax(-1)  # (B_val, T)
    majority = torch.bincount(ytr, minlength=3).argmax()
    acc, base = (pred == y[ntr:]).float().mean().item(), (y[ntr:] == majority).float().mean().item()
    assert acc > base + 0.05, (acc, base)
