"""Local training and evaluation on tensors already in memory.

Batches are drawn by index from a seeded permutation (no DataLoader): the data of a node is a
few MB at most, and skipping the loader keeps the per-step overhead close to the bare math.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_optimizer(model: nn.Module, train_cfg: dict, lr: float | None = None) -> torch.optim.Optimizer:
    lr = train_cfg["lr"] if lr is None else lr
    if train_cfg["optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=train_cfg["weight_decay"])
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=train_cfg["momentum"],
                           weight_decay=train_cfg["weight_decay"])


def train_epochs(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
                 epochs: int, batch_size: int, generator: torch.Generator,
                 extra_batches=None) -> float:
    """Run `epochs` passes of minibatch SGD; return the mean training loss.

    `extra_batches(n)` (optional) returns (x, y) of n samples to concatenate to each real batch —
    how experience-replay policies mix synthetic data into local training.
    """
    device = next(model.parameters()).device
    model.train()
    n = x.shape[0]
    total, count = torch.zeros((), device=device), 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            if extra_batches is not None:
                ex, ey = extra_batches(len(idx))
                xb, yb = torch.cat([xb, ex]), torch.cat([yb, ey])
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(yb)
            count += len(yb)
    return float(total) / max(count, 1)


@torch.no_grad()
def confusion(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
              batch_size: int = 512) -> np.ndarray:
    """Confusion matrix (rows = true class, cols = predicted) of `model` on (x, y)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    cm = torch.zeros(num_classes * num_classes, dtype=torch.int64)
    for start in range(0, x.shape[0], batch_size):
        pred = model(x[start:start + batch_size].to(device)).argmax(1).cpu()
        cm += torch.bincount(y[start:start + batch_size] * num_classes + pred, minlength=num_classes ** 2)
    model.train(was_training)
    return cm.view(num_classes, num_classes).numpy()


def accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes present in the test set."""
    support = cm.sum(1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float((np.diag(cm)[present] / support[present]).mean())
