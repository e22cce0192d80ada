"""The model contract: shapes, parameter counts against the plan, streaming == full pass, bf16 islands."""

import pytest
import torch

from model_src import HRM, HRMConfig, parameter_table, tiny_config
from model_src.model import PLAN_PARAMS


def _film(model: HRM, B: int, scale: float = 0.3):
    # Trained FiLM is far from identity; random γ/β make the streaming check meaningful.
    g = torch.Generator().manual_seed(1)
    return (torch.randn(B, model.cfg.l_dim, generator=g) * scale, torch.randn(B, model.cfg.l_dim, generator=g) * scale)


def test_shapes(default_model):
    cfg = default_model.cfg
    days, minutes = torch.randn(2, 64, cfg.n_day_features), torch.randn(2, 390, cfg.n_minute_features)
    with torch.no_grad():
        h_tokens, gamma, beta = default_model.h(days)
        action, qty, q = default_model.l(minutes, gamma, beta)
    assert h_tokens.shape == (2, 64, 384) and gamma.shape == beta.shape == (2, 544)
    assert action.shape == (2, 390, 3) and qty.shape == (2, 390, 1) and q.shape == (2, 390, 2)
    assert (qty >= 0).all(), "quantity head must be non-negative"


@pytest.mark.parametrize("part", ["h", "l", "total"])
def test_parameter_counts_match_plan_within_5pct(default_model, part):
    n = parameter_table(default_model)[part]
    assert abs(n - PLAN_PARAMS[part]) / PLAN_PARAMS[part] <= 0.05, f"{part}: {n:,} vs plan {PLAN_PARAMS[part]:,.0f}"


def test_conditioning_under_1m(default_model):
    assert parameter_table(default_model)["conditioning"] < 1e6  # film_pool "mean_last": 2 × 384 → 2 × 544


def test_fp32_size_near_109mb(default_model):
    assert abs(parameter_table(default_model)["total"] * 4 / 1e6 - 109) / 109 <= 0.05


@pytest.mark.parametrize("chunk", [1, 7, 390])
def test_streaming_equals_full_pass(default_model, chunk):
    torch.manual_seed(2)
    m, T = default_model, 390
    minutes = torch.randn(1, T, m.cfg.n_minute_features)
    gamma, beta = _film(m, 1)
    with torch.no_grad():
        full = m.l(minutes, gamma, beta)
        kv, pieces = m.l.empty_kv(1), []
        for t0 in range(0, T, chunk):
            *out, kv = m.l.step(minutes[:, t0 : t0 + chunk], gamma, beta, kv)
            pieces.append(out)
    assert kv.shape == (m.cfg.l_layers, 2, 1, m.cfg.l_heads, T, m.cfg.l_head_dim)
    for i, name in enumerate(["action_logits", "quantity", "q_values"]):
        stream = torch.cat([p[i] for p in pieces], dim=1)
        err = (stream - full[i]).abs().max().item()
        assert err <= 1e-5, f"{name}: streaming differs from full pass by {err:.2e} (chunk {chunk})"


def test_causal_future_does_not_change_past(tiny_model):
    m = tiny_model
    minutes = torch.randn(1, 50, m.cfg.n_minute_features)
    gamma, beta = _film(m, 1)
    changed = minutes.clone()
    changed[:, 30:] += 5.0
    with torch.no_grad():
        a, b = m.l(minutes, gamma, beta)[0], m.l(changed, gamma, beta)[0]
    assert torch.equal(a[:, :30], b[:, :30]) or (a[:, :30] - b[:, :30]).abs().max() < 1e-6
    assert (a[:, 30:] - b[:, 30:]).abs().max() > 1e-3


def test_cross_attention_flag_adds_params_and_uses_h_tokens():
    torch.manual_seed(0)
    cfg = tiny_config(cross_attention=True)
    m = HRM(cfg).eval()
    assert parameter_table(m)["conditioning"] > parameter_table(HRM(tiny_config()))["conditioning"]
    days, minutes = torch.randn(1, 5, cfg.n_day_features), torch.randn(1, 20, cfg.n_minute_features)
    with torch.no_grad():
        h, g, b = m.h(days)
        out1 = m.l(minutes, g, b, h)[0]
        out2 = m.l(minutes, g, b, h + 1.0)[0]
        *step, _ = m.l.step(minutes, g, b, m.l.empty_kv(1), h)
    assert (out1 - out2).abs().max() > 1e-4, "cross-attention output must depend on h_tokens"
    assert (step[0] - out1).abs().max() < 1e-5


def test_bf16_film_is_an_fp32_island():
    """x·(1+γ)+β is computed in fp32 and rounded once; doing `1 + γ` in bf16 (spacing 2^-7 near 1.0)
    would flatten small γ to 0 or 2^-7."""
    from model_src.layers import film

    torch.manual_seed(0)
    x = torch.randn(1, 64, 32).bfloat16()
    gamma, beta = torch.full((1, 32), 3e-3), torch.zeros(1, 32)
    exact = (x.float() * (1 + gamma.unsqueeze(1))).bfloat16()
    naive = x * (1 + gamma.bfloat16().unsqueeze(1))
    assert torch.equal(film(x, gamma, beta), exact)
    assert not torch.equal(naive, exact), "the naive bf16 FiLM should lose the small γ"


def test_bf16_model_keeps_fp32_outputs():
    torch.manual_seed(0)
    m = HRM(tiny_config()).eval().to(torch.bfloat16)
    with torch.no_grad():
        outs = m(torch.randn(1, 4, m.cfg.n_day_features), torch.randn(1, 10, m.cfg.n_minute_features))
    assert all(o.dtype == torch.float32 for o in outs), "heads and FiLM are fp32 islands: outputs stay fp32"


def test_config_roundtrip_and_unknown_field():
    cfg = HRMConfig(cross_attention=True)
    assert HRMConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown HRMConfig field"):
        HRMConfig.from_dict({"h_dimm": 3})


def test_film_mean_last_reads_the_latest_day():
    """film_pool="mean_last": γ, β read [mean ‖ latest day], so the latest day moves them by a projection of
    its own, not 1/D of the mean; "mean" keeps its shapes (checkpoints trained before the field still load)."""
    torch.manual_seed(0)
    m = HRM(tiny_config()).eval()
    assert m.cfg.film_pool == "mean_last" and m.h.film.proj.in_features == 2 * m.cfg.h_dim
    assert HRM(tiny_config(film_pool="mean")).h.film.proj.in_features == m.cfg.h_dim
    legacy = {k: v for k, v in m.cfg.to_dict().items() if k != "film_pool"}  # written before the field existed
    assert HRMConfig.from_dict(legacy).film_pool == "mean"
    torch.nn.init.normal_(m.h.film.proj.weight, std=0.05)
    last = torch.zeros_like(m.h.film.proj.weight)
    last[:, m.cfg.h_dim:] = m.h.film.proj.weight[:, m.cfg.h_dim:]
    tokens = torch.randn(2, 16, m.cfg.h_dim)
    with torch.no_grad():
        g, b = m.h.film(tokens)
        m.h.film.proj.weight.copy_(last)  # only the latest-day half of the projection left
        g_last, _ = m.h.film(tokens)
        moved = tokens.clone()
        moved[:, :-1] += 1.0  # every day but the latest
        g_moved, _ = m.h.film(moved)
    assert g.shape == b.shape == (2, m.cfg.l_dim)
    assert torch.allclose(g_last, g_moved), "the second half reads the latest day token alone"
    with pytest.raises(ValueError, match="film_pool = 'max'"):
        tiny_config(film_pool="max")
