"""Differentially private local training with Opacus DP-SGD, for any policy.

Each node wraps its own model once: Opacus calibrates the noise so that the node's whole training
budget (rounds × local epochs) spends at most the target ε at δ. Policies keep loading merged
weights into the same module object, so the accountant sees every step the node ever took.
"""
from __future__ import annotations

import logging
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fedsim.errors import ConfigError

log = logging.getLogger("fedsim.privacy")


def make_dp_compatible(model: nn.Module, auto_fix: bool) -> nn.Module:
    """Opacus cannot clip per-sample gradients through BatchNorm; replace it by GroupNorm or say why not."""
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model, strict=False)
    if not errors:
        return model
    if not auto_fix:
        details = "; ".join(str(e) for e in errors[:3])
        raise ConfigError("privacy.dp.auto_fix", False, "true (replace BatchNorm by GroupNorm automatically)",
                          f"the model is not DP-compatible: {details}")
    fixed = ModuleValidator.fix(model)
    log.info("privacy.dp: replaced modules Opacus cannot handle (%d issues, e.g. BatchNorm -> GroupNorm)", len(errors))
    return fixed


class DPTrainer:
    """DP-SGD for one node's model on its own training data."""

    def __init__(self, node, dp_cfg: dict, total_epochs: int, seed: int) -> None:
        from opacus import PrivacyEngine

        n = node.data.n_train
        batch = min(node.train_cfg["batch_size"], n)
        gen = torch.Generator().manual_seed(seed)
        loader = DataLoader(TensorDataset(node.data.x_train, node.data.y_train), batch_size=batch,
                            shuffle=True, generator=gen)
        self.delta = dp_cfg["delta"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Opacus warns about secure RNG; simulation does not need it
            self.engine = PrivacyEngine(accountant="rdp", secure_mode=False)
            self.module, self.optimizer, self.loader = self.engine.make_private_with_epsilon(
                module=node.model, optimizer=node.optimizer, data_loader=loader, target_epsilon=dp_cfg["epsilon"],
                target_delta=self.delta, epochs=total_epochs, max_grad_norm=dp_cfg["max_grad_norm"],
                noise_generator=torch.Generator().manual_seed(seed + 1))
        self.device = node.device

    def train(self, epochs: int) -> float:
        self.module.train()
        total, count = 0.0, 0
        for _ in range(epochs):
            for xb, yb in self.loader:
                if len(yb) == 0:  # Poisson sampling can draw an empty batch
                    continue
                xb, yb = xb.to(self.device), yb.to(self.device)
                self.optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(self.module(xb), yb)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # Opacus' hooks fire with no input grads: expected
                    loss.backward()
                self.optimizer.step()
                total += float(loss.detach()) * len(yb)
                count += len(yb)
        return total / max(count, 1)

    def epsilon(self) -> float:
        return float(self.engine.get_epsilon(self.delta))
