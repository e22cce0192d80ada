"""The synthetic market: deterministic, schema-clean, regime persistence, U-shapes, and a learnable signal."""

import numpy as np
import pandas as pd
import pytest

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
    """Least squares on today's tokens (plus yesterday's day token) predicts the 15-minute forward return
    out of sample, and the sign rule built on it beats the majority class of the action labels."""
    samples = synthetic_samples(200, seed=5, lookback=4)
    days, minutes = stack_samples(samples)
    B, T, _ = minutes.shape
    x = np.concatenate([minutes.numpy(), np.repeat(days[:, -1:, :].numpy(), T, axis=1)], axis=-1)  # (B, T, 19)
    x = np.concatenate([x, x[..., 1:2] * x[..., 11 + 2:11 + 3], np.ones((B, T, 1))], axis=-1)
    lab_cfg = LabelConfig()
    fwd = np.stack([np.log(s.minute_close[np.minimum(np.arange(T) + 15, T - 1)] / s.minute_close) for s in samples])
    labels = np.stack([session_labels(s.minute_close, lab_cfg)[0] for s in samples])
    ntr = int(B * 0.7)
    coef, *_ = np.linalg.lstsq(x[:ntr].reshape(-1, x.shape[-1]), fwd[:ntr].ravel(), rcond=None)
    pred = x[ntr:] @ coef  # (B_val, T)
    resid = fwd[ntr:] - pred
    r2 = 1.0 - resid.var() / fwd[ntr:].var()
    assert r2 > 0.02, r2
    rule = np.where(pred > lab_cfg.band, 2, np.where(pred < -lab_cfg.band, 0, 1))
    majority = np.bincount(labels[:ntr].ravel(), minlength=3).argmax()
    acc, base = np.mean(rule == labels[ntr:]), np.mean(labels[ntr:] == majority)
    assert acc > base + 0.03, (acc, base)
