"""PLAN-style private latent walks: shared samples that lie *between* patients, not on them.

Between two latents of the same class we place `steps` intermediate points, start them on the
straight line and optimise them (the generator stays frozen) with three terms, as the FedER
authors' PLAN method does:
  identity  KL(p(identity | G(z)) || uniform): an auxiliary identity classifier must not be able
            to tell which real patient a point resembles. Here every real training record of the
            class is one identity and the classifier is a soft nearest-neighbour one,
            p_i(x) ∝ exp(-||x - r_i|| / τ), with τ the typical real-to-real gap; pushing it to
            uniform moves a point away from any single record.
  spacing   Var(|z_{t+1} - z_t|) / mean² over the path (endpoints included): points stay equidistant,
            so the walk does not collapse onto one spot.
  class     softplus(-D(G(z), c)) with the node's conditional discriminator (optional): the point must
            still look like a real scan of class c (the label itself is fixed by conditioning).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def identity_kl(x: torch.Tensor, identities: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-sample KL(p || uniform) of the soft nearest-neighbour identity classifier."""
    d = torch.cdist(x.reshape(len(x), -1), identities.reshape(len(identities), -1))
    logp = F.log_softmax(-d / tau, dim=1)
    return (logp.exp() * logp).sum(1) + math.log(identities.shape[0])


def spacing_loss(path: torch.Tensor) -> torch.Tensor:
    """path (W, m+2, d) with endpoints: variance of consecutive step lengths over their mean squared."""
    steps = (path[:, 1:] - path[:, :-1]).norm(dim=2)
    return (steps.var(dim=1, unbiased=False) / steps.mean(dim=1).pow(2).clamp_min(1e-12)).mean()


def linear_walk(z_a: torch.Tensor, z_b: torch.Tensor, steps: int) -> torch.Tensor:
    """(W, steps, d): points evenly spaced strictly between each z_a[w] and z_b[w]."""
    t = torch.arange(1, steps + 1, dtype=z_a.dtype).div(steps + 1).view(1, steps, 1)
    return z_a[:, None] + t * (z_b - z_a)[:, None]


def plan_walk(G: nn.Module, z_a: torch.Tensor, z_b: torch.Tensor, label: int, identities: torch.Tensor, *,
              steps: int, iters: int, tau: float, lr: float = 0.05, w_spacing: float = 1.0, w_class: float = 0.1,
              D: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Optimised intermediate latents (W*steps, d) of walks from z_a[w] to z_b[w], all of class `label`."""
    device = next(G.parameters()).device
    z_a, z_b = z_a.to(device), z_b.to(device)
    ids = identities.to(device).float()
    inner = linear_walk(z_a, z_b, steps).clone().requires_grad_(True)
    y = torch.full((inner.shape[0] * steps,), int(label), dtype=torch.long, device=device)
    frozen = [p for m in (G, D) if m is not None for p in m.parameters()]
    was = [p.requires_grad for p in frozen]
    for p in frozen:
        p.requires_grad_(False)
    G.eval()
    opt = torch.optim.Adam([inner], lr=lr)
    stats = {}
    try:
        for it in range(iters + 1):
            x = G(inner.reshape(-1, inner.shape[2]), y)
            ident = identity_kl(x, ids, tau).mean()
            space = spacing_loss(torch.cat([z_a[:, None], inner, z_b[:, None]], 1))
            cls = F.softplus(-D(x, y)).mean() if D is not None else torch.zeros((), device=device)
            loss = ident + w_spacing * space + w_class * cls
            if it == 0:
                stats["walk_identity_kl_start"] = float(ident.detach())
            if it == iters:  # the last pass only measures
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        stats.update(walk_identity_kl=float(ident.detach()), walk_spacing=float(space.detach()),
                     walk_class=float(cls.detach()))
    finally:
        for p, w in zip(frozen, was):
            p.requires_grad_(w)
    return inner.detach().reshape(-1, inner.shape[2]).cpu(), stats
