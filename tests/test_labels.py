"""Labels from minute closes: horizon truncated at the close, flat band, no leakage, ACT targets."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from model_src import HRM, tiny_config
from model_src.labels import (
    FLAT,
    LONG,
    SHORT,
    LabelConfig,
    act_targets,
    action_labels,
    forward_returns,
    session_labels,
)
from model_src.train import WindowForward
from model_src.train_data import DayTensors, split_by_date


def random_closes(T=390, seed=0):
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.normal(scale=1e-3, size=T)))


def test_forward_return_is_truncated_at_the_close():
    close = np.array([100.0, 101.0, 99.0, 102.0, 103.0])
    r = forward_returns(close, horizon=2)
    np.testing.assert_allclose(r, np.log([99 / 100, 102 / 101, 103 / 99, 103 / 102, 1.0]))
    assert r[-1] == 0.0  # the last minute can earn nothing: always flat
    assert session_labels(close, LabelConfig(horizon=2))[0][-1] == FLAT


def test_labels_at_t_use_only_closes_t_to_t_plus_h():
    h, T = 15, 390
    close = random_closes(T)
    base_a, base_q = session_labels(close, LabelConfig(horizon=h))
    for j in (0, 100, 200, T - 2):
        bumped = close.copy()
        bumped[j] *= 1.05  # a 5% move: crosses any band
        a, q = session_labels(bumped, LabelConfig(horizon=h))
        changed = np.flatnonzero((a != base_a) | (q != base_q))
        assert set(changed) <= {j, j - h}, f"close {j} changed labels at {changed}"
        assert j in changed  # and it does change the label of its own minute


def test_flat_band_edges():
    band = 5e-4
    r = np.array([-2 * band, -band, -band / 2, 0.0, band / 2, band, 2 * band])
    assert list(action_labels(r, band)) == [SHORT, FLAT, FLAT, FLAT, FLAT, FLAT, LONG]
    assert list(action_labels(r, 0.0)) == [SHORT, SHORT, SHORT, FLAT, LONG, LONG, LONG]


def test_quantity_is_nonnegative_and_clipped():
    cfg = LabelConfig(quantity_scale=1e-3, quantity_clip=2.0)
    _, q = session_labels(random_closes(seed=3) * np.exp(np.linspace(0, 0.05, 390)), cfg)
    assert q.min() >= 0 and q.max() <= 2.0 and q.max() == 2.0


def test_inputs_at_t_do_not_see_later_minutes():
    """The training forward is causal: outputs at minutes ≤ t ignore the minutes (and so the labels) after t."""
    torch.manual_seed(0)
    fwd = WindowForward(HRM(tiny_config()).eval())
    days, minutes = torch.randn(2, 16, 8), torch.randn(2, 40, 11)
    positions = torch.arange(100, 140).expand(2, 40)
    later = minutes.clone()
    later[:, 25:] = torch.randn(2, 15, 11) * 10
    a = fwd(days, minutes, positions)
    b = fwd(days, later, positions)
    for x, y in zip(a[:3], b[:3], strict=True):
        torch.testing.assert_close(x[:, :25], y[:, :25], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(x[:, 25:], y[:, 25:])


def test_act_targets_follow_hrm_q_learning():
    logits = torch.tensor([[[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0], [3.0, 0, 0]]])  # argmax 0,1,2,0
    action = torch.tensor([[0, 2, 2, -100]])  # minute 3 is padding: the session ended at minute 2
    q = torch.tensor([[[0.0, 1.0], [2.0, -1.0], [-3.0, 0.5], [9.0, 9.0]]])
    halt_t, cont_t, cont_m = act_targets(logits, q, action, torch.tensor([True]), discount=1.0)
    assert halt_t[0, :3].tolist() == [1.0, 0.0, 1.0]  # is the decision taken now right?
    sig = torch.sigmoid
    torch.testing.assert_close(cont_t[0, :2], torch.stack([sig(torch.tensor(2.0)), sig(torch.tensor(0.5))]))
    assert cont_t[0, 2] == 0.0 and cont_m[0].tolist() == [1.0, 1.0, 1.0, 0.0]  # close: forced halt; padding off

    # waiting is discounted per minute; halting where the horizon is cut by the close earns nothing
    full = torch.tensor([[True, True, False, False]])
    halt_t, cont_t, _ = act_targets(logits, q, action, torch.tensor([True]), discount=0.5, full_horizon=full)
    assert halt_t[0, :3].tolist() == [1.0, 0.0, 0.0]
    torch.testing.assert_close(cont_t[0, 0], 0.5 * sig(torch.tensor(2.0)))

    # a crop that stops inside the session: its last minute has no next value and is left out
    _, _, cont_m = act_targets(logits[:, :3], q[:, :3], action[:, :3], torch.tensor([False]), discount=1.0)
    assert cont_m[0].tolist() == [1.0, 1.0, 0.0]


def _sample(date, T=50, seed=0):
    rng = np.random.default_rng(seed)
    return SimpleNamespace(symbol="X", date=date, days=rng.normal(size=(4, 8)).astype(np.float32),
                           minutes=rng.normal(size=(T, 11)).astype(np.float32), minute_close=random_closes(T, seed),
                           prev_close=100.0)


def test_split_is_by_date_and_windows_keep_absolute_minutes():
    samples = [_sample(f"2024-01-{d:02d}", T=50 if d != 7 else 30, seed=d) for d in range(1, 21)]
    train, val = split_by_date(samples, 0.25)
    assert max(s.date for s in train) < min(s.date for s in val) and len(val) == 5
    data = DayTensors(train, LabelConfig(horizon=5))
    starts = data.crop_starts(list(range(len(data))), 20, seed=1, epoch=0)
    assert torch.equal(starts, data.crop_starts(list(range(len(data))), 20, seed=1, epoch=0))
    assert (starts >= 0).all() and (starts + 20 <= data.lengths).all()
    w = data.window([2, 6], starts[[2, 6]], 20)
    s = int(starts[2])
    assert w["positions"][0].tolist() == list(range(s, s + 20))
    np.testing.assert_array_equal(w["minutes"][0].numpy(), train[2].minutes[s : s + 20])
    full = data.full([5, 6])  # day 7 (index 6) has 30 minutes: padded, labels ignored past its close
    assert (full["action"][1, 30:] == -100).all() and (full["action"][1, :30] >= 0).all()


def test_bad_label_config_is_refused():
    with pytest.raises(AssertionError, match="horizon"):
        LabelConfig(horizon=0)
