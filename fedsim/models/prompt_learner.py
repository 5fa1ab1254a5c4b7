"""CoOp prompt learner (Zhou et al., 2022) on a frozen CLIP backbone, with the optional KgCoOp term.

Prompt of class c:  [SOS] ctx_1 ... ctx_M  classname . [EOS]
The M context vectors (text width each, init N(0, 0.02^2)) are the only trainable parameters, so
`state_dict()` is the context alone — exactly what ZeroDFL puts on the wire. Logits are CLIP's:
    logit_scale.exp() * cos(image feature, text feature of class c's prompt).
KgCoOp (Yao et al., 2023) adds  kg_weight * mean_c ||t_c - t_c^hand||^2  pulling the learned text
features towards those of the hand-written prompt (weight 0 = plain CoOp, the paper's default).

The backbone is shared and frozen: it is held outside the module tree (not a submodule), so moving,
saving or optimising a learner never touches it. A 2-D input to `forward` is taken as precomputed
image features — the image encoder is frozen, so a policy encodes each image once.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

PLACEHOLDER = "X"


class ClassPrompts:
    """Token embeddings of '[SOS] X..X name.' for a list of class names, plus their hand-written features."""

    def __init__(self, backbone, names: list[str], n_ctx: int, handwritten: str) -> None:
        self.names = list(names)
        prefix = " ".join([PLACEHOLDER] * n_ctx)
        with torch.no_grad():
            ids = backbone.tokenize([f"{prefix} {n}." for n in names])
            self.ids = ids
            self.embeds = backbone.embed_tokens(ids)          # (C, L, W); rows 1..M get replaced by ctx
            hand = backbone.tokenize([handwritten.format(n) for n in names])
            self.hand_features = F.normalize(backbone.encode_text(hand), dim=-1)


class PromptLearner(nn.Module):
    def __init__(self, backbone, n_ctx: int = 4, init_std: float = 0.02, kg_weight: float = 0.0,
                 handwritten: str | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if n_ctx < 1:
            raise ValueError(f"n_ctx must be >= 1, got {n_ctx}")
        object.__setattr__(self, "backbone", backbone)  # shared + frozen: deliberately not a submodule
        self.n_ctx, self.kg_weight = n_ctx, float(kg_weight)
        self.handwritten = handwritten or getattr(backbone, "handwritten", "a photo of a {}.")
        self.ctx = nn.Parameter(torch.randn(n_ctx, backbone.text_width, generator=generator) * init_std)
        self._prompts: dict[tuple[str, ...], ClassPrompts] = {}
        self.classes: ClassPrompts | None = None

    def use_classes(self, names: list[str]) -> "PromptLearner":
        """Select the label space: logits column j is names[j]. Tokenization is cached per name list."""
        key = tuple(names)
        if key not in self._prompts:
            self._prompts[key] = ClassPrompts(self.backbone, list(names), self.n_ctx, self.handwritten)
        self.classes = self._prompts[key]
        return self

    def text_features(self, ctx: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised text features (C, D) of the current classes with context `ctx` (default: ours)."""
        ctx = self.ctx if ctx is None else ctx
        p = self.classes
        emb = torch.cat([p.embeds[:, :1], ctx.unsqueeze(0).expand(len(p.names), -1, -1),
                         p.embeds[:, 1 + self.n_ctx:]], dim=1)
        return F.normalize(self.backbone.encode_embedded(emb, p.ids), dim=-1)

    def image_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return F.normalize(x, dim=-1)
        with torch.no_grad():
            return F.normalize(self.backbone.encode_image(x), dim=-1)

    def logits(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return self.backbone.logit_scale.exp() * image_features @ text_features.T

    def forward(self, x: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits(self.image_features(x), self.text_features(ctx))

    def loss(self, x: torch.Tensor, y: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
        text = self.text_features(ctx)
        loss = F.cross_entropy(self.logits(self.image_features(x), text), y)
        if self.kg_weight > 0:
            loss = loss + self.kg_weight * ((text - self.classes.hand_features) ** 2).sum(-1).mean()
        return loss

    @torch.no_grad()
    def zero_shot_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen CLIP with the hand-written prompt: no learned context at all."""
        return self.logits(self.image_features(x), self.classes.hand_features)


def train_pass(loss_fn, params_owner: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, batch_size: int, generator: torch.Generator) -> float:
    """One epoch of minibatch steps on `loss_fn(xb, yb)`; returns the mean loss."""
    params_owner.train()
    order = torch.randperm(len(y), generator=generator)
    total = 0.0
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]
        loss = loss_fn(x[idx], y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(idx)
    return total / max(len(y), 1)


@torch.no_grad()
def accuracy(logits_fn, x: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> float:
    if len(y) == 0:
        return float("nan")
    hits = sum(int((logits_fn(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(y), batch))
    return hits / len(y)
