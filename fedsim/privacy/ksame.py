"""k-same latent averaging: every shared latent is the mean of k latents of the same class.

A generated image then blends k "identities" of the GAN's latent space instead of reproducing one
(k-same de-identification, applied in latent space as in the FedER authors' PLAN pipeline).
"""
from __future__ import annotations

import torch

from fedsim.errors import ConfigError


def k_same(z: torch.Tensor, y: torch.Tensor, k: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (z_out, members): z_out[i] = z[members[i]].mean(0), members[i] = k distinct indices of class y[i].

    Output i keeps the label y[i] and always includes latent i itself; the other k-1 members are
    drawn without replacement from the latents sharing its class.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError("policy.k", k, "an integer >= 1 (1 = no averaging)")
    n = len(y)
    members = torch.empty(n, k, dtype=torch.long)
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).squeeze(1)
        if len(idx) < k:
            raise ConfigError("policy.k", k, f"at most {len(idx)} here",
                              f"class {c} has only {len(idx)} latents to average")
        for i in idx.tolist():
            others = idx[idx != i]
            pick = others[torch.randperm(len(others), generator=generator)[:k - 1]]
            members[i] = torch.cat([torch.tensor([i]), pick])
    return z[members].mean(1), members
