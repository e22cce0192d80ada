"""The one decision rule (model_src.decisions): actions, confidence, quantity, ACT halting, non-finite refusal."""

import numpy as np
import pytest

from model_src.decisions import NOT_HALTED, actions, halted, halting_minutes, quantities
from model_src.errors import NonFiniteOutputError


def _q(halts_at: list[int | None], T: int) -> np.ndarray:
    """(B, T, 2) Q-values whose q_halt beats q_continue exactly at the given minute (None: never)."""
    q = np.zeros((len(halts_at), T, 2), np.float32)
    q[..., 1] = 1.0
    for b, t in enumerate(halts_at):
        if t is not None:
            q[b, t, 0] = 2.0
    return q


def test_halting_minute_is_the_first_halt_or_the_close():
    q = _q([0, 7, 9, None], T=10)
    assert halting_minutes(q, session_minutes=10).tolist() == [0, 7, 9, 9]  # never → the close, minute 9


def test_a_window_before_the_close_without_a_halt_is_not_halted():
    q = _q([None, 3], T=6)
    assert halting_minutes(q, session_minutes=10).tolist() == [NOT_HALTED, 3]


def test_streaming_in_pieces_equals_the_whole_session():
    q = _q([0, 4, 9, None, 5], T=10)
    whole = halting_minutes(q, session_minutes=10)
    state = None
    for t0, t1 in ((0, 1), (1, 4), (4, 5), (5, 9), (9, 10)):
        state = halting_minutes(q[:, t0:t1], session_minutes=10, first_minute=t0, halted_at=state)
    assert state.tolist() == whole.tolist()


def test_the_halt_is_sticky():
    q = _q([2], T=10)
    first = halting_minutes(q[:, :5], session_minutes=10)
    later = halting_minutes(np.flip(q[:, 5:], -1).copy(), session_minutes=10, first_minute=5, halted_at=first)
    assert first.tolist() == later.tolist() == [2]
    assert halted(later, 0, 5).tolist() == [[False, False, True, True, True]]


def test_per_instrument_session_lengths_ignore_padding():
    q = _q([None, None, 8], T=10)
    q[0, 8, 0] = 5.0  # after instrument 0's close (session of 6): padding, not a halt
    assert halting_minutes(q, session_minutes=np.array([6, 10, 10])).tolist() == [5, 9, 8]


def test_actions_confidence_and_an_exact_tie():
    logits = np.array([[[0.0, 1.0, 0.0], [2.0, 2.0, 0.0]]], np.float32)
    a, conf = actions(logits)
    assert a.tolist() == [[1, 0]]  # the lowest index wins an exact tie
    e = np.exp(1.0)
    assert conf[0, 0] == pytest.approx(e / (e + 2)) and conf[0, 1] == pytest.approx(np.exp(2) / (2 * np.exp(2) + 1))


@pytest.mark.parametrize("fn,name", [(lambda x: actions(x, 100), "action_logits"),
                                     (lambda x: quantities(x[..., :1], 100), "quantity"),
                                     (lambda x: halting_minutes(x[..., :2], 390, 100), "q_values")])
def test_a_non_finite_output_never_becomes_a_decision(fn, name):
    x = np.zeros((3, 5, 3), np.float32)
    x[2, 4, 0] = np.nan
    with pytest.raises(NonFiniteOutputError, match=f"{name}: non-finite value nan at instrument 2, minute 104"):
        fn(x)
