"""Feature sets: counts agree with the config, values are finite and O(1), and no feature looks ahead."""

import numpy as np
import pytest

from model_src import config
from model_src.features import (
    CLIP,
    DAY_FEATURES,
    MINUTE_FEATURES,
    day_feature_rows,
    minute_features,
)
from model_src.synthetic import synthetic_market


def test_feature_counts_match_config():
    assert len(DAY_FEATURES) == config.N_DAY_FEATURES == config.HRMConfig().n_day_features
    assert len(MINUTE_FEATURES) == config.N_MINUTE_FEATURES == config.HRMConfig().n_minute_features
    assert len(set(DAY_FEATURES)) == len(DAY_FEATURES) and len(set(MINUTE_FEATURES)) == len(MINUTE_FEATURES)


@pytest.fixture(scope="module")
def market():
    return synthetic_market(60, seed=3)


def _day_cols(daily):
    return [daily[c].to_numpy() for c in ("open", "high", "low", "close", "volume")]


def _session(minute, k=10):
    s = minute.iloc[k * 390:(k + 1) * 390]
    return [s[c].to_numpy().copy() for c in ("open", "high", "low", "close", "volume")]


def test_day_rows_finite_and_order_one(market):
    daily, _ = market
    rows = day_feature_rows(*_day_cols(daily))
    assert rows.shape == (len(daily), 8)
    assert np.isnan(rows[0]).all()  # no previous close for the first bar
    assert np.isfinite(rows[1:]).all()
    assert np.abs(rows[1:]).max() <= CLIP
    assert 0.05 < np.abs(rows[1:]).mean() < 3.0


def test_minute_features_finite_and_order_one(market):
    _, minute = market
    o, h, lo, c, v = _session(minute)
    f = minute_features(o, h, lo, c, v, np.arange(390), np.zeros(390), prev_close=o[0] * 0.99)
    assert f.shape == (390, 11) and np.isfinite(f).all()
    assert np.abs(f).max() <= CLIP
    assert np.abs(f[:, :8]).mean() < 3.0
    np.testing.assert_allclose(f[:, 8] ** 2 + f[:, 9] ** 2, 1.0)  # time of day on the unit circle


@pytest.mark.parametrize("t", [0, 1, 14, 15, 200, 388])
def test_minute_features_do_not_look_ahead(market, t):
    _, minute = market
    o, h, lo, c, v = _session(minute)
    args = dict(minute_of_session=np.arange(390), filled=np.zeros(390), prev_close=float(o[0]))
    base = minute_features(o, h, lo, c, v, **args)
    rng = np.random.default_rng(t)
    o2, h2, lo2, c2, v2 = (a.copy() for a in (o, h, lo, c, v))
    n = 390 - (t + 1)
    for a in (o2, h2, lo2, c2):
        a[t + 1:] *= np.exp(rng.normal(0, 0.05, n))  # violent change of every later bar
    v2[t + 1:] = rng.integers(0, 10**7, n)
    pert = minute_features(o2, h2, lo2, c2, v2, **args)
    assert np.array_equal(base[: t + 1], pert[: t + 1])  # exact: nothing at or before t moved
    assert not np.array_equal(base[t + 1:], pert[t + 1:])  # and the perturbation was real


@pytest.mark.parametrize("j", [1, 5, 20, 40])
def test_day_rows_do_not_look_ahead(market, j):
    daily, _ = market
    cols = _day_cols(daily)
    base = day_feature_rows(*cols)
    rng = np.random.default_rng(j)
    pert_cols = [a.astype(np.float64).copy() for a in cols]
    for a in pert_cols:
        a[j + 1:] *= np.exp(rng.normal(0, 0.3, len(a) - j - 1))
    pert = day_feature_rows(*pert_cols)
    assert np.array_equal(base[1: j + 1], pert[1: j + 1])
    assert not np.array_equal(base[j + 1:], pert[j + 1:])


def test_minute_volume_zscore_uses_only_earlier_minutes():
    T = 30
    o = c = h = lo = np.full(T, 100.0)
    v = np.full(T, 1000.0)
    v[20] = 1e6  # a spike: its own z-score is large, earlier minutes do not see it
    f = minute_features(o, h, lo, c, v, np.arange(T), np.zeros(T), 100.0)
    z = f[:, MINUTE_FEATURES.index("volume_z")]
    assert np.abs(z[:20]).max() < 1e-9 and z[20] > 5.0


def test_vwap_without_volume_is_the_close():
    T = 5
    c = np.array([100.0, 101.0, 102.0, 101.0, 100.0])
    f = minute_features(c, c, c, c, np.zeros(T), np.arange(T), np.zeros(T), 100.0)
    assert np.all(f[:, MINUTE_FEATURES.index("vwap_dev")] == 0.0)
    assert np.all(np.isfinite(f))


def test_time_of_day_is_the_share_of_the_session_elapsed(market):
    _, minute = market
    o, h, lo, c, v = _session(minute)
    args = (o, h, lo, c, v, np.arange(390), np.zeros(390), float(o[0]))
    tod = [MINUTE_FEATURES.index("tod_sin"), MINUTE_FEATURES.index("tod_cos")]
    regular = minute_features(*args)
    assert np.array_equal(regular, minute_features(*args, session_minutes=390))  # the default is a regular XNYS day
    half = minute_features(*(a[:210] for a in args[:7]), float(o[0]), session_minutes=210)  # an XNYS half day
    np.testing.assert_array_equal(half[:, :8], regular[:210, :8])  # only the clock differs
    np.testing.assert_allclose(half[-1, tod], regular[-1, tod], atol=0.02)  # its last minute sits near the close
    np.testing.assert_allclose(half[105, tod], regular[195, tod])  # half-way is half-way
    long = minute_features(*(np.resize(a, 510) for a in args[:5]), np.arange(510), np.zeros(510), float(o[0]),
                           session_minutes=510)  # a London session
    angle = 2 * np.pi * np.arange(510) / 510
    np.testing.assert_allclose(long[:, tod], np.stack([np.sin(angle), np.cos(angle)], axis=1))
