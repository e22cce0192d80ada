"""Building blocks of the HRM: RMSNorm, self-/cross-attention, MLP, pre-norm block, FiLM, heads.

Numerics that must survive bf16 are computed in fp32 here (norm statistics, the FiLM `1 + γ` term,
the heads); attention uses scaled_dot_product_attention, whose CPU and CUDA kernels accumulate the
softmax in fp32 for bf16 inputs. Everything is tensor-in/tensor-out with no data-dependent Python
branches, so each module exports to ONNX as it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:  # (..., C) -> (..., C)
        x32 = x.float()  # statistics in fp32 even when x is bf16
        y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


class MLP(nn.Module):
    def __init__(self, dim: int, ratio: float):
        super().__init__()
        hidden = int(round(dim * ratio))
        self.fc = nn.Linear(dim, hidden)
        self.proj = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, C)
        return self.proj(F.gelu(self.fc(x)))


def causal_mask(n_new: int | Tensor, n_past: int | Tensor, device: torch.device) -> Tensor:
    """Boolean mask (n_new, n_past + n_new): new query i (absolute position n_past + i) sees keys ≤ it.

    Built from aranges of the (possibly symbolic) sizes, so it exports with dynamic axes.
    """
    q_pos = torch.arange(n_new, device=device).unsqueeze(1) + n_past  # (T, 1)
    k_pos = torch.arange(n_past + n_new, device=device).unsqueeze(0)  # (1, P+T)
    return k_pos <= q_pos  # (T, P+T)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, causal: bool):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # (B, T, C) -> 3 × (B, H, T, hd)
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)
        return tuple(t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))

    def _merge(self, y: Tensor) -> Tensor:  # (B, H, T, hd) -> (B, T, C)
        B, H, T, hd = y.shape
        return self.proj(y.transpose(1, 2).reshape(B, T, H * hd))

    def forward(self, x: Tensor) -> Tensor:  # (B, T, C)
        q, k, v = self._split(x)
        return self._merge(F.scaled_dot_product_attention(q, k, v, is_causal=self.causal))

    def step(self, x: Tensor, past_kv: Tensor) -> tuple[Tensor, Tensor]:
        """Incremental causal attention. x (B, T, C) new minutes, past_kv (2, B, H, P, hd).

        Returns y (B, T, C) and present_kv (2, B, H, P+T, hd).
        """
        assert self.causal, "only a causal attention can run incrementally"
        q, k, v = self._split(x)
        k = torch.cat([past_kv[0], k], dim=2)  # (B, H, P+T, hd)
        v = torch.cat([past_kv[1], v], dim=2)
        mask = causal_mask(q.shape[2], past_kv.shape[3], x.device)  # (T, P+T)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self._merge(y), torch.stack([k, v])

    def step_static(self, x: Tensor, cache_k: Tensor, cache_v: Tensor, position: Tensor) -> tuple[Tensor, Tensor]:
        """As step, over a fixed-capacity cache (B, H, M, hd) filled up to `position`; returns y (B, T, C) and only
        the new minutes' new_kv (2, B, H, T, hd), which the caller writes into slots position..position+T-1."""
        assert self.causal, "only a causal attention can run incrementally"
        q, k, v = self._split(x)
        y = static_step_attention(q, k, v, cache_k.to(q.dtype), cache_v.to(q.dtype), position)
        return self._merge(y), torch.stack([k, v])


def static_step_attention(q: Tensor, k: Tensor, v: Tensor, cache_k: Tensor, cache_v: Tensor,
                          position: Tensor) -> Tensor:
    """Causal attention of T new minutes over a fixed-capacity cache, without copying the cache.

    q, k, v (B, H, T, hd): the new minutes; cache_k, cache_v (B, H, M, hd): M slots of which the first `position`
    (int64, shape (1,)) hold the minutes before. Slot j is seen iff j < position, new key i by new query i' ≥ i.
    The scores of the cache and of the new keys are concatenated (B, H, T, M + T: small), never the keys
    themselves, so the cost is the same at every minute and nothing of the past is copied.
    """
    scale = q.shape[-1] ** -0.5
    T, M = q.shape[2], cache_k.shape[2]
    seen = torch.arange(M, device=q.device) < position  # (M,)
    causal = causal_mask(T, 0, q.device)  # (T, T)
    neg = torch.finfo(torch.float32).min
    s_cache = torch.matmul(q, cache_k.transpose(-1, -2)).float() * scale  # (B, H, T, M)
    s_new = torch.matmul(q, k.transpose(-1, -2)).float() * scale  # (B, H, T, T)
    s_cache = s_cache.masked_fill(~seen, neg)
    s_new = s_new.masked_fill(~causal, neg)
    p = torch.softmax(torch.cat([s_cache, s_new], dim=-1), dim=-1).to(q.dtype)  # fp32 softmax, as SDPA
    return torch.matmul(p[..., :M], cache_v) + torch.matmul(p[..., M:], v)  # (B, H, T, hd)


class CrossAttention(nn.Module):
    """Minute tokens (queries, d_l) attend to the day tokens of the H-module (keys/values, d_h)."""

    def __init__(self, dim: int, context_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:  # x (B, T, C), context (B, D, Ch)
        B, T, C = x.shape
        hd = C // self.heads
        q = self.q(x).view(B, T, self.heads, hd).transpose(1, 2)  # (B, H, T, hd)
        k, v = self.kv(context.to(x.dtype)).split(C, dim=-1)
        k = k.view(B, -1, self.heads, hd).transpose(1, 2)  # (B, H, D, hd)
        v = v.view(B, -1, self.heads, hd).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, hd)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, causal: bool, eps: float):
        super().__init__()
        self.norm1 = RMSNorm(dim, eps)
        self.attn = SelfAttention(dim, heads, causal)
        self.norm2 = RMSNorm(dim, eps)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, C)
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    def step(self, x: Tensor, past_kv: Tensor) -> tuple[Tensor, Tensor]:  # (B, T, C), (2, B, H, P, hd)
        a, present_kv = self.attn.step(self.norm1(x), past_kv)
        x = x + a
        return x + self.mlp(self.norm2(x)), present_kv

    def step_static(self, x: Tensor, cache_k: Tensor, cache_v: Tensor, position: Tensor) -> tuple[Tensor, Tensor]:
        a, new_kv = self.attn.step_static(self.norm1(x), cache_k, cache_v, position)
        x = x + a
        return x + self.mlp(self.norm2(x)), new_kv


def film(x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    """x·(1+γ) + β with x (B, T, C), γ/β (B, C); in fp32, since bf16 spacing near 1.0 (2^-7) would
    swallow small γ."""
    y = x.float() * (1.0 + gamma.float().unsqueeze(1)) + beta.float().unsqueeze(1)
    return y.to(x.dtype)


class FiLMGenerator(nn.Module):
    """Day tokens → (γ, β) for the L-module. Zero-initialised, so an untrained model starts at identity.

    `pool` "mean" reads the mean of the day tokens; "mean_last" reads [mean ‖ latest day]. With a 64-day
    look-back the latest day is 1/64 of the mean, and a zero-initialised projection of the mean learns the
    modulation every day shares long before it learns what differs from day to day (docs/training.md).
    """

    def __init__(self, h_dim: int, l_dim: int, pool: str = "mean"):
        super().__init__()
        self.pool = pool
        self.proj = nn.Linear(h_dim * (2 if pool == "mean_last" else 1), 2 * l_dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h_tokens: Tensor) -> tuple[Tensor, Tensor]:  # (B, D, Ch) -> 2 × (B, C)
        h = h_tokens.float()
        pooled = h.mean(dim=1)  # (B, Ch), mean over however many days were given
        if self.pool == "mean_last":
            pooled = torch.cat([pooled, h[:, -1]], dim=-1)  # (B, 2·Ch): the latest day is the last token
        gamma, beta = fp32_linear(pooled, self.proj).chunk(2, dim=-1)
        return gamma, beta


def fp32_linear(x: Tensor, layer: nn.Linear) -> Tensor:
    """A Linear evaluated in fp32 whatever the weights' storage dtype (the FiLM and head islands)."""
    return F.linear(x.float(), layer.weight.float(), layer.bias.float())


class TradingHeads(nn.Module):
    """Per-minute heads: action logits (short/flat/long), quantity ≥ 0, ACT Q-values (halt/continue)."""

    def __init__(self, dim: int, n_actions: int):
        super().__init__()
        self.action = nn.Linear(dim, n_actions)
        self.quantity = nn.Linear(dim, 1)
        self.q = nn.Linear(dim, 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # (B, T, C) -> (B,T,3), (B,T,1), (B,T,2)
        return fp32_linear(x, self.action), F.softplus(fp32_linear(x, self.quantity)), fp32_linear(x, self.q)
