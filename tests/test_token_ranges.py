"""Every feature's valid range: model_src.features' tokens stay inside it on any bars, the bundle records it, and
the runtime holds tokens to what the bundle records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from runtime_bundle import copy_bundle, tiny_bundle, tokens

from hrm_export.core.errors import ManifestError
from hrm_export.runtime import HRMRuntime, InputError
from model_src.features import day_feature_rows, minute_features, token_ranges


def inside(x: np.ndarray, book: str) -> bool:
    low, high = (np.array(v) for v in zip(*token_ranges()[book].values(), strict=True))
    return bool(((x >= low) & (x <= high)).all())


def test_synthetic_market_tokens_are_inside_the_ranges():
    from model_src.data import synthetic_samples

    samples = synthetic_samples(40, seed=3, lookback=16)
    assert all(inside(s.days, "days") and inside(s.minutes, "minutes") for s in samples)


@pytest.mark.parametrize("seed", range(5))
def test_wild_bars_still_give_tokens_inside_the_ranges(seed):
    """Jumps of ±60 %, flat bars, zero and huge volumes, half days: the formulas clip and bound every feature."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 510))
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.2, n)))
    open_ = close * np.exp(rng.normal(0, 0.2, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.3, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.3, n)))
    volume = np.where(rng.random(n) < 0.3, 0.0, rng.lognormal(10, 4, n))
    filled = (rng.random(n) < 0.2).astype(float)
    minutes = minute_features(open_, high, low, close, volume, np.arange(n), filled, prev_close=close[0] * 3,
                              session_minutes=int(rng.integers(n, 600)))
    days = day_feature_rows(open_, high, low, close, volume)[1:]  # row 0 has no previous close and is never used
    assert inside(minutes.astype(np.float32), "minutes") and inside(days.astype(np.float32), "days")


def test_the_bundle_records_the_ranges_and_the_runtime_enforces_them():
    manifest = json.loads((tiny_bundle() / "manifest.json").read_text())
    assert manifest["token_ranges"] == token_ranges()
    assert manifest["token_ranges"]["minutes"]["filled"] == [0.0, 1.0]
    rt = HRMRuntime.open(tiny_bundle(), backend="ort-cpu")
    days, minutes = tokens(1, 8, 5)
    minutes[0, 2, 8] = 1.0001  # tod_sin past 1
    with pytest.raises(InputError, match=r"session minute 2, feature 8 \(tod_sin\) is outside .* \[-1, 1\]"):
        rt.run_day(days, minutes)
    rt.close()


def test_narrower_recorded_ranges_are_the_ones_held(tmp_path):
    bundle = copy_bundle(tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["token_ranges"]["minutes"]["ret_1m"] = [-2.0, 2.0]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    rt = HRMRuntime.open(bundle, backend="torch")
    days, minutes = tokens(1, 8, 5)
    minutes[0, :, 0] = 0.5
    rt.run_day(days, minutes)
    minutes[0, 4, 0] = 2.5
    with pytest.raises(InputError, match=r"feature 0 \(ret_1m\) is outside the feature's valid range \[-2, 2\]"):
        rt.run_day(days, minutes)
    rt.close()


@pytest.mark.parametrize("broken", [{"days": {}}, {"days": "all", "minutes": {}},
                                    {"days": {f: [1, -1] for f in token_ranges()["days"]}, "minutes": {}}])
def test_a_malformed_record_is_refused_at_open(tmp_path, broken):
    bundle = copy_bundle(tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["token_ranges"] = broken
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="token_ranges.days is not 8 .low, high. pairs"):
        HRMRuntime.open(bundle, backend="torch")
