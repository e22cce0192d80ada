"""The dual-book HRM: an H-module over daily tokens, an L-module over the session's minutes.

    days (B, D, F_day) ──HModule──► h_tokens (B, D, Ch), film_gamma (B, Cl), film_beta (B, Cl)
    minutes (B, T, F_min), γ, β ──LModule──► action_logits (B, T, 3), quantity (B, T, 1), q_values (B, T, 2)

The L-module is causal over minutes and γ, β are fixed for the day, so minute t+1 follows from the
cached keys/values of minutes ≤ t: `LModule.step` (new minutes + past_kv → outputs + present_kv)
equals the full pass at every minute. Each module's `forward` is tensor-in/tensor-out and exports alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from model_src.config import HRMConfig
from model_src.layers import Block, CrossAttention, FiLMGenerator, RMSNorm, TradingHeads, film


class HModule(nn.Module):
    def __init__(self, cfg: HRMConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.n_day_features, cfg.h_dim)
        self.pos = nn.Embedding(cfg.max_days, cfg.h_dim)  # position counted back from the latest day
        self.blocks = nn.ModuleList(
            Block(cfg.h_dim, cfg.h_heads, cfg.h_mlp_ratio, causal=False, eps=cfg.norm_eps) for _ in range(cfg.h_layers)
        )
        self.norm = RMSNorm(cfg.h_dim, cfg.norm_eps)
        self.film = FiLMGenerator(cfg.h_dim, cfg.l_dim, cfg.film_pool)

    def forward(self, days: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # (B, D, F_day)
        D = days.shape[1]
        pos = torch.arange(self.cfg.max_days - D, self.cfg.max_days, device=days.device)  # latest day = last slot
        x = self.embed(days.to(self.embed.weight.dtype)) + self.pos(pos)  # (B, D, Ch)
        for block in self.blocks:
            x = block(x)
        h_tokens = self.norm(x)
        gamma, beta = self.film(h_tokens)  # (B, Cl) each, fp32
        return h_tokens.float(), gamma, beta


class LModule(nn.Module):
    def __init__(self, cfg: HRMConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.n_minute_features, cfg.l_dim)
        self.pos = nn.Embedding(cfg.max_minutes, cfg.l_dim)  # minute of the session
        self.blocks = nn.ModuleList(
            Block(cfg.l_dim, cfg.l_heads, cfg.l_mlp_ratio, causal=True, eps=cfg.norm_eps) for _ in range(cfg.l_layers)
        )
        self.norm = RMSNorm(cfg.l_dim, cfg.norm_eps)
        self.cross_attn = CrossAttention(cfg.l_dim, cfg.h_dim, cfg.l_heads) if cfg.cross_attention else None
        self.heads = TradingHeads(cfg.l_dim, cfg.n_actions)
        self.gradient_checkpointing = False  # training-only memory saver; see model_src.train

    def _embed(self, minutes: Tensor, n_past: int | Tensor) -> Tensor:  # (B, T, F_min) -> (B, T, Cl)
        pos = torch.arange(minutes.shape[1], device=minutes.device) + n_past
        return self.embed(minutes.to(self.embed.weight.dtype)) + self.pos(pos)

    def _heads(self, x: Tensor, h_tokens: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        x = self.norm(x)
        if self.cross_attn is not None:
            assert h_tokens is not None, "cross_attention=True: pass h_tokens from the H-module"
            x = x + self.cross_attn(x, h_tokens)
        return self.heads(x)

    def forward(
        self, minutes: Tensor, film_gamma: Tensor, film_beta: Tensor, h_tokens: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:  # (B, T, F_min), (B, Cl), (B, Cl)
        x = self._embed(minutes, 0)
        for block in self.blocks:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
            x = film(x, film_gamma, film_beta)  # FiLM after every block
        return self._heads(x, h_tokens)

    def empty_kv(self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> Tensor:
        """The past_kv of a session with no minutes yet: (L, 2, B, H, 0, hd)."""
        c = self.cfg
        dtype = dtype or self.embed.weight.dtype
        return torch.zeros(c.l_layers, 2, batch, c.l_heads, 0, c.l_head_dim, device=device, dtype=dtype)

    def step(
        self, minutes: Tensor, film_gamma: Tensor, film_beta: Tensor, past_kv: Tensor, h_tokens: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """New minutes (B, T, F_min) after P cached ones, past_kv (L, 2, B, H, P, hd).

        Returns the heads for the T new minutes and present_kv (L, 2, B, H, P+T, hd).
        """
        x = self._embed(minutes, past_kv.shape[4])
        presents = []
        for i, block in enumerate(self.blocks):
            x, kv = block.step(x, past_kv[i].to(x.dtype))
            presents.append(kv)
            x = film(x, film_gamma, film_beta)
        action_logits, quantity, q_values = self._heads(x, h_tokens)
        return action_logits, quantity, q_values, torch.stack(presents)

    def step_static(
        self, minutes: Tensor, film_gamma: Tensor, film_beta: Tensor, position: Tensor, caches: list[Tensor],
        h_tokens: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """New minutes (B, T, F_min) at session minute `position` (int64, shape (1,)), over a fixed-capacity cache:
        `caches` = [k_0, v_0, k_1, v_1, ...], each (B, H, M, hd), slots < position filled (M ≥ position + T).

        Returns the heads for the T new minutes and new_kv (L, 2, B, H, T, hd): only the new minutes' keys/values,
        which the caller writes into slots position..position+T-1. Equals `step` with the filled slots as past_kv.
        """
        pos = torch.arange(minutes.shape[1], device=minutes.device) + position
        x = self.embed(minutes.to(self.embed.weight.dtype)) + self.pos(pos)
        news = []
        for i, block in enumerate(self.blocks):
            x, kv = block.step_static(x, caches[2 * i], caches[2 * i + 1], position)
            news.append(kv)
            x = film(x, film_gamma, film_beta)
        action_logits, quantity, q_values = self._heads(x, h_tokens)
        return action_logits, quantity, q_values, torch.stack(news)


class LStepStatic(nn.Module):
    """`LModule.step_static` as a module (what l_step_static.onnx exports). The cache comes as one (B, H, M, hd)
    tensor per layer and keys/values, `caches` = [k_0, v_0, k_1, v_1, ...]: slices of one (L, 2, B, H, M, hd)
    buffer on the host, bound one by one, so that no graph node has to slice (copy) the whole cache."""

    def __init__(self, l_module: LModule):
        super().__init__()
        self.l = l_module

    def forward(self, minutes, film_gamma, film_beta, position, caches: list[Tensor], h_tokens=None):
        return self.l.step_static(minutes, film_gamma, film_beta, position, caches, h_tokens)


class LStep(nn.Module):
    """`LModule.step` as a module whose forward is the step (what l_step.onnx exports)."""

    def __init__(self, l_module: LModule):
        super().__init__()
        self.l = l_module

    def forward(self, minutes, film_gamma, film_beta, past_kv, h_tokens=None):
        return self.l.step(minutes, film_gamma, film_beta, past_kv, h_tokens)


class HRM(nn.Module):
    def __init__(self, cfg: HRMConfig | None = None):
        super().__init__()
        self.cfg = cfg or HRMConfig()
        self.h = HModule(self.cfg)
        self.l = LModule(self.cfg)

    def forward(self, days: Tensor, minutes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """days (B, D, F_day), minutes (B, T, F_min) → action_logits, quantity, q_values, film_gamma, film_beta."""
        h_tokens, gamma, beta = self.h(days)
        action_logits, quantity, q_values = self.l(minutes, gamma, beta, h_tokens if self.cfg.cross_attention else None)
        return action_logits, quantity, q_values, gamma, beta


# Which parameters belong to which part of the plan's table. FiLM, cross-attention and heads are
# "conditioning + heads" even though FiLM sits in the H-module's forward.
_CONDITIONING_PREFIXES = ("h.film.", "l.cross_attn.", "l.heads.")
PLAN_PARAMS = {"h": 3.5e6, "l": 23.8e6, "conditioning": 1.0e6, "total": 27.3e6}  # conditioning is an upper bound


def parameter_table(model: HRM) -> dict[str, int]:
    """Parameter counts by part: h, l, conditioning (FiLM + cross-attention + heads), total."""
    counts = {"h": 0, "l": 0, "conditioning": 0}
    for name, p in model.named_parameters():
        part = "conditioning" if name.startswith(_CONDITIONING_PREFIXES) else name.split(".")[0]
        counts[part] += p.numel()
    counts["total"] = sum(counts.values())
    return counts
