"""FedProx (Li et al., MLSys 2020): FedAvg whose local training is pulled towards the global model.

As FedAvg through a hub (fedavg.py), except that each local step minimises
    loss + mu/2 · ||w − w_global||²
where w_global is the model the node started the round from (the last global model). The term's
gradient mu · (w − w_global) is added to every parameter's gradient just before each optimizer
step (a step pre-hook), so it works with any optimizer and, under privacy.dp, after the noise —
it does not depend on the data. One of the baselines FedER's paper compares with; the authors'
`train_prox` adds mu/2 · ||w − w_global|| (the norm, not its square) from the second step on.
"""
from __future__ import annotations

import torch

from fedsim.errors import ConfigError
from fedsim.policies.fedavg import FedAvgPolicy


class FedProxPolicy(FedAvgPolicy):
    name = "fedprox"
    options = {**FedAvgPolicy.options, "mu": 0.01}

    def __init__(self, options=None):
        super().__init__(options)
        mu = self.opts["mu"]
        if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not mu >= 0:
            raise ConfigError("policy.mu", mu, "a number >= 0 (0 = FedAvg)")

    def setup(self, node):
        super().setup(node)
        self.anchor: list[torch.Tensor] | None = None
        self.params = [p for p in node.model.parameters() if p.requires_grad]
        node.optimizer.register_step_pre_hook(self._proximal)

    @torch.no_grad()
    def _proximal(self, optimizer, args, kwargs):
        if self.anchor is None or not self.opts["mu"]:
            return
        for p, w0 in zip(self.params, self.anchor):
            if p.grad is not None:
                p.grad.add_(p - w0, alpha=float(self.opts["mu"]))

    def run_round(self, node, r):
        self.anchor = [p.detach().clone() for p in self.params]  # the global model this round starts from
        try:
            return super().run_round(node, r)
        finally:
            self.anchor = None
