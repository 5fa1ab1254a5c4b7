"""Nearest-real-sample distances and the near-duplicate filter for synthetic data.

A synthetic sample closer to some real training sample than `threshold` (Euclidean, on the raw
pixels/features) is treated as a copy of that patient and is never shared.
"""
from __future__ import annotations

import torch


def nearest_distances(samples: torch.Tensor, reference: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """For each sample, the Euclidean distance to its nearest reference sample (flattened)."""
    if len(samples) == 0 or len(reference) == 0:
        return torch.full((len(samples),), float("inf"))
    ref = reference.reshape(len(reference), -1).float()
    out = [torch.cdist(samples[i:i + batch_size].reshape(-1, ref.shape[1]).float(), ref).min(1).values
           for i in range(0, len(samples), batch_size)]
    return torch.cat(out)


def typical_gap(real: torch.Tensor) -> float:
    """Median distance from a real sample to its nearest *other* real sample: the scale of 'close'."""
    flat = real.reshape(len(real), -1).float()
    d = torch.cdist(flat, flat)
    d.fill_diagonal_(float("inf"))
    return float(d.min(1).values.median())


def filter_near_duplicates(samples: torch.Tensor, real: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean mask of the samples to keep: nearest real sample at least `threshold` away."""
    return nearest_distances(samples, real) >= threshold
