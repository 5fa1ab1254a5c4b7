"""FedTPG's text-conditioned prompt generator (Qiu et al., ICLR 2024), sized by options.

Given the frozen text features of a task's class names (C, D), M learnable queries cross-attend to
them and an FFN refines them into M context vectors of the text width; the CoOp prompt learner
then uses that context. Because the context is a function of the class names, it transfers to
classes never trained on. Defaults (hidden 512, 1 layer, FFN x5, at text width 512 with CLIP
ViT-B/16's 512-d features) give 4,205,568 parameters: the published ~4.2 M.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class GeneratorLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, ffn_mult: int) -> None:
        super().__init__()
        self.ln_q, self.ln_kv, self.ln_ff = nn.LayerNorm(hidden), nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(hidden, ffn_mult * hidden), nn.GELU(), nn.Linear(ffn_mult * hidden, hidden))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        kv = self.ln_kv(kv)
        q = q + self.attn(self.ln_q(q), kv, kv, need_weights=False)[0]
        return q + self.ffn(self.ln_ff(q))


class PromptGenerator(nn.Module):
    def __init__(self, feature_dim: int, text_width: int, n_ctx: int = 4, hidden: int = 512, layers: int = 1,
                 heads: int = 8, ffn_mult: int = 5) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"prompt generator: hidden {hidden} is not divisible by heads {heads}")
        self.inp = nn.Linear(feature_dim, hidden)
        self.queries = nn.Parameter(torch.randn(n_ctx, hidden) * 0.02)
        self.layers = nn.ModuleList(GeneratorLayer(hidden, heads, ffn_mult) for _ in range(layers))
        self.out = nn.Linear(hidden, text_width)
        nn.init.normal_(self.out.weight, std=0.02)  # start near CoOp's N(0, 0.02^2) context
        nn.init.zeros_(self.out.bias)

    def forward(self, name_features: torch.Tensor) -> torch.Tensor:
        """(C, D) class-name features -> (M, text_width) context."""
        kv = self.inp(name_features).unsqueeze(0)
        q = self.queries.unsqueeze(0)
        for layer in self.layers:
            q = layer(q, kv)
        return self.out(q).squeeze(0)
