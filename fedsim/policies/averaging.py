"""Weighted averaging of model states — the merge step shared by gossip and FedAvg."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch


def weighted_average(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Σ w_k · state_k for floating tensors; integer buffers (e.g. BatchNorm's step count) come from states[0]."""
    if len(states) != len(weights) or not states:
        raise ValueError("need one weight per state and at least one state")
    total = float(sum(weights))
    out: dict[str, torch.Tensor] = {}
    for key, first in states[0].items():
        first = torch.as_tensor(first)
        if not first.is_floating_point():
            out[key] = first.clone()
            continue
        stacked = torch.stack([torch.as_tensor(s[key]).to(first.device, torch.float32) for s in states])
        w = torch.tensor(weights, dtype=torch.float32, device=first.device).view(-1, *([1] * first.dim())) / total
        out[key] = (stacked * w).sum(0).to(first.dtype)
    return out
