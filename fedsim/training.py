"""Local training and evaluation on tensors already in memory.

Batches are drawn by index from a seeded permutation (no DataLoader): the data of a node is a
few MB at most, and skipping the loader keeps the per-step overhead close to the bare math.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fedsim.errors import ConfigError


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _sgd(params, *, lr: float, weight_decay: float, momentum: float = 0.0, **kw) -> torch.optim.Optimizer:
    """SGD with optional momentum."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **kw)


def _adam(params, *, lr: float, weight_decay: float, momentum: float = 0.0, **kw) -> torch.optim.Optimizer:
    """Adam."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **kw)


def _adamw(params, *, lr: float, weight_decay: float, momentum: float = 0.0, **kw) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **kw)


# train.optimizer: built-ins get `momentum` (used by sgd only); a user optimizer (an Optimizer
# subclass or a callable, 'package.module:attr') is called as attr(params, lr=, weight_decay=,
# **train.optimizer_options).
BUILTIN_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"sgd": _sgd, "adam": _adam, "adamw": _adamw}
# train.loss: loss(logits, targets) -> scalar. A user loss may be a function or an nn.Module class
# (instantiated with train.loss_options).
BUILTIN_LOSSES: dict[str, Loss] = {"cross_entropy": F.cross_entropy}


def make_optimizer(model: nn.Module, train_cfg: dict, lr: float | None = None) -> torch.optim.Optimizer:
    from fedsim.registry import resolve

    lr = train_cfg["lr"] if lr is None else lr
    name = train_cfg.get("optimizer", "sgd")
    make = resolve("optimizers", name)
    kwargs = dict(train_cfg.get("optimizer_options") or {})
    if name in BUILTIN_OPTIMIZERS:
        kwargs["momentum"] = train_cfg.get("momentum", 0.0)
    try:
        optimizer = make(model.parameters(), lr=lr, weight_decay=train_cfg.get("weight_decay", 0.0), **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError("train.optimizer", name, "an optimizer accepting (params, lr=, weight_decay=, "
                          "**train.optimizer_options)", f"{type(exc).__name__}: {exc}") from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError("train.optimizer", name, "a callable returning a torch.optim.Optimizer",
                          f"it returned {type(optimizer).__name__}")
    return optimizer


def make_loss(train_cfg: dict) -> Loss:
    from fedsim.registry import resolve

    name = train_cfg.get("loss", "cross_entropy")
    loss = resolve("losses", name)
    options = dict(train_cfg.get("loss_options") or {})
    if isinstance(loss, type):  # an nn.Module class such as torch.nn:CrossEntropyLoss
        try:
            return loss(**options)
        except Exception as exc:
            raise ConfigError("train.loss_options", options, f"keyword arguments of {loss.__qualname__}",
                              f"{type(exc).__name__}: {exc}") from None
    if options:
        return functools.partial(loss, **options)
    return loss


def check_loss(loss: Loss, num_classes: int) -> None:
    """The loss must turn (logits, labels) of a batch into a scalar: say so before a run starts."""
    try:
        value = loss(torch.zeros(2, num_classes, requires_grad=True), torch.zeros(2, dtype=torch.int64))
        ok = isinstance(value, torch.Tensor) and value.dim() == 0
    except Exception as exc:
        raise ConfigError("train.loss", getattr(loss, "__name__", type(loss).__name__),
                          "a loss(logits, labels) -> scalar tensor", f"{type(exc).__name__}: {exc}") from None
    if not ok:
        raise ConfigError("train.loss", getattr(loss, "__name__", type(loss).__name__),
                          "a loss(logits, labels) -> scalar tensor", f"it returned {type(value).__name__}")


def train_epochs(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
                 epochs: int, batch_size: int, generator: torch.Generator,
                 extra_batches=None, loss_fn: Loss = F.cross_entropy, shuffle: bool = True) -> float:
    """Run `epochs` passes of minibatch SGD; return the mean training loss.

    Batches come from a fresh permutation per epoch (`generator`), or in data order with
    `shuffle=False` (slices, no gather: another framework's unshuffled run, step for step).

    `extra_batches(n)` (optional) returns (x, y) of n samples to concatenate to each real batch —
    how experience-replay policies mix synthetic data into local training.
    """
    device = next(model.parameters()).device
    model.train()
    n = x.shape[0]
    total, count = torch.zeros((), device=device), 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator) if shuffle else None
        for start in range(0, n, batch_size):
            if order is None:
                xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                xb, yb = x[idx], y[idx]
            if extra_batches is not None:
                ex, ey = extra_batches(len(yb))
                xb, yb = torch.cat([xb, ex]), torch.cat([yb, ey])
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
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
