"""Differentially private local training with Opacus DP-SGD, for every step a node trains.

With `privacy.dp` on, `Node.train` sends *every* call here — whatever model, tensors, epochs and
replay batches the policy asked for — and each optimisation step is charged to the node's one
privacy accountant. What the accounting means:

- **Records.** The guarantee is for the records of the tensors a step samples from: the node's own
  training set for almost every policy; at the `centralized` hub the pooled records (which other
  hospitals already shipped in the clear — the ledger's SAMPLES rows — so DP protects them only in
  the released model). A FedRewind node serving a rewind trains the visiting model on its own
  records: those steps are charged to *its* accountant, like its local ones.
- **Sampling.** Each step draws a Poisson batch (every record independently with q = B / n, B =
  train.batch_size, n = the records passed), clips every per-sample gradient to max_grad_norm and
  adds N(0, (σ·max_grad_norm)²) noise to the sum, divided by the expected batch size.
- **Replay batches** (`extra_batches`, e.g. FedER's synthetic buffer) are appended to every step,
  extra_batches(B) of them — a count that does not depend on which records were sampled. They are
  not this node's records: each is clipped like any sample, so one record still moves the noisy
  sum by at most max_grad_norm and q and σ are unchanged. (The buffer's own privacy is its
  sender's business: `gan_dp` and the buffer's privacy filters.)
- **Noise.** σ is calibrated once, on the first call, so that the planned number of steps —
  rounds × the policy's `dp_epochs_per_round` passes at that call's q — spends the target ε at δ.
  `dp_epsilon` is what the accountant has really spent so far (RDP), which can differ from the target
  when a run trains other tensors or more epochs than planned.
"""
from __future__ import annotations

import functools
import logging
import threading
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from fedsim.errors import ConfigError

log = logging.getLogger("fedsim.privacy")
# Opacus says so when the best RDP order is at the end of its grid; the bound is still valid (just
# not the tightest), and per-round epsilon reports would repeat it for every node.
warnings.filterwarnings("ignore", message="Optimal order is the (largest|smallest) alpha")


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


def check_policy(policy) -> None:
    """Refuse, with the reason, a policy whose training cannot run under DP-SGD."""
    reason = getattr(policy, "dp_refusal", None)
    if reason:
        raise ConfigError("privacy.dp", "on", f"null (off) with policy {policy.name!r}", reason)


class DPTrainer:
    """DP-SGD for everything one node trains: one noise level, one accountant."""

    def __init__(self, node, dp_cfg: dict, total_epochs: int, seed: int) -> None:
        check_policy(node.policy)
        self.cfg, self.delta = dp_cfg, dp_cfg["delta"]
        epochs = node.train_cfg["epochs"]
        per_round = node.policy.dp_epochs_per_round(epochs) if node.policy is not None else epochs
        rounds = node.total_rounds or max(1, total_epochs // max(epochs, 1))
        self.planned_epochs = float(rounds * per_round)
        self.noise_multiplier: float | None = None  # calibrated on the first call
        self.steps: dict[float, int] = {}           # sample rate -> steps taken at it
        self.extra_samples = 0                      # replay samples mixed into DP steps so far
        self.device = node.device
        self._lock = threading.Lock()               # serve() threads share the node's accountant
        self._warned = False

    # ------------------------------------------------------------------ accounting
    def _calibrate(self, q: float) -> float:
        steps = max(1, round(self.planned_epochs * _steps_per_epoch(q)))
        self.noise_multiplier = _noise_multiplier(float(self.cfg["epsilon"]), float(self.delta), q, steps)
        log.info("privacy.dp: sigma %.3f for %d planned steps at q = %.4f (target epsilon %g, delta %g)",
                 self.noise_multiplier, steps, q, self.cfg["epsilon"], self.delta)
        return self.noise_multiplier

    def epsilon(self) -> float:
        """ε spent so far at δ (RDP accountant over every step this node charged)."""
        from opacus.accountants import RDPAccountant

        acc = RDPAccountant()
        with self._lock:  # sorted: the same steps give the same float whatever thread took them first
            acc.history = [(self.noise_multiplier, q, n) for q, n in sorted(self.steps.items())]
        if not acc.history:
            return 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "optimal order is the largest alpha": the bound is still valid
            return float(acc.get_epsilon(self.delta))

    @property
    def total_steps(self) -> int:
        return sum(self.steps.values())

    # ------------------------------------------------------------------ training
    def train(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
              epochs: int, batch_size: int, generator: torch.Generator, extra_batches=None,
              loss_fn=F.cross_entropy) -> float:
        """`epochs` passes of DP-SGD over (x, y), each step topped up with extra_batches(batch_size)."""
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        n = int(x.shape[0])
        if n == 0:
            raise ConfigError("privacy.dp", "on", "training data with at least one record", "no records to train on")
        q = min(1.0, batch_size / n)
        with self._lock:
            sigma = self.noise_multiplier if self.noise_multiplier is not None else self._calibrate(q)
        # the noise follows the caller's generator, so a run is repeatable whatever thread trains first
        noise = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Opacus warns about secure RNG; simulation does not need it
            gsm = GradSampleModule(model, loss_reduction="sum", strict=False)
            dp_opt = DPOptimizer(optimizer, noise_multiplier=sigma, max_grad_norm=self.cfg["max_grad_norm"],
                                 expected_batch_size=max(1, round(q * n)), loss_reduction="mean", generator=noise)
        model.train()
        total, count, steps, extra = 0.0, 0, 0, 0
        try:
            for _ in range(epochs):
                for _ in range(_steps_per_epoch(q)):
                    idx = torch.nonzero(torch.rand(n, generator=generator) < q).flatten()
                    xb, yb = x[idx], y[idx]
                    if extra_batches is not None:
                        ex, ey = extra_batches(batch_size)  # a fixed count: it must not depend on the sample
                        xb, yb = torch.cat([xb, ex]), torch.cat([yb, ey])
                        extra += len(ey)
                        dp_opt.expected_batch_size = max(1, round(q * n) + len(ey))
                    steps += 1
                    if len(yb) == 0:  # an empty Poisson batch: no update (the step is still charged)
                        continue
                    xb, yb = xb.to(self.device), yb.to(self.device)
                    dp_opt.zero_grad(set_to_none=True)
                    # summed over the batch (per-sample gradients); a user loss is a batch mean
                    loss = (F.cross_entropy(gsm(xb), yb, reduction="sum") if loss_fn is F.cross_entropy
                            else loss_fn(gsm(xb), yb) * len(yb))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # Opacus' hooks fire with no input grads: expected
                        loss.backward()
                    dp_opt.step()
                    total += float(loss.detach())
                    count += len(yb)
        finally:
            dp_opt.zero_grad(set_to_none=True)
            gsm.remove_hooks()  # the module goes back to plain torch: copies, evaluation and payloads see no hooks
            with self._lock:
                self.steps[q] = self.steps.get(q, 0) + steps
                self.extra_samples += extra
        spent = self.epsilon()
        if spent > 1.01 * self.cfg["epsilon"] and not self._warned:
            self._warned = True
            log.warning("privacy.dp: epsilon spent %.3g is above the target %g: this node trained more steps, or at "
                        "a higher sampling rate (fewer records), than the noise was calibrated for", spent,
                        self.cfg["epsilon"])
        return total / max(count, 1)


@functools.lru_cache(maxsize=64)
def _noise_multiplier(epsilon: float, delta: float, q: float, steps: int) -> float:
    """Opacus' binary search (seconds on a busy core), shared by the nodes of a worker with equal data sizes."""
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=q, steps=steps,
                                          accountant="rdp"))


def _steps_per_epoch(q: float) -> int:
    """Poisson steps that make one expected pass over the records."""
    return max(1, round(1.0 / q))
