"""FedBN (Li et al., ICLR 2021): FedAvg that keeps every normalisation layer local.

As FedAvg through a hub (fedavg.py), except that the parameters and running statistics of the
model's normalisation layers (BatchNorm, GroupNorm, LayerNorm, InstanceNorm) never leave the node:
nodes send only the other tensors, the hub averages those, and each node puts the average under
its own normalisation layers — the per-hospital feature statistics that absorb acquisition shift.
A model without normalisation layers makes this FedAvg (logged). One of the baselines FedER's
paper compares with; the authors' `communication(setting="fedbn")` averages every key without 'bn'.
"""
from __future__ import annotations

import logging

from torch import nn

from fedsim.payload import Kind
from fedsim.policies.hub import HubPolicy, average_through_hub

log = logging.getLogger("fedsim.fedbn")
NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def local_keys(model: nn.Module) -> set[str]:
    """state_dict keys of the model's normalisation layers (weights, biases, running statistics)."""
    keys = set()
    for name, module in model.named_modules():
        if isinstance(module, NORMS):
            prefix = f"{name}." if name else ""
            keys.update(prefix + k for k in module.state_dict())
    return keys


class FedBNPolicy(HubPolicy):
    name = "fedbn"

    def setup(self, node):
        super().setup(node)
        self.local = local_keys(node.model)
        if not self.local:
            log.warning("%s: fedbn on a model without normalisation layers is FedAvg", node.name)

    def run_round(self, node, r):
        loss = node.train()
        shared = {k: v.detach() for k, v in node.model.state_dict().items() if k not in self.local}
        average, heard = average_through_hub(node, self.hub, shared, node.data.n_train, kind=Kind.MODEL,
                                             up="update", down="global")
        if average is not None:  # the average goes under this node's own normalisation layers
            merged = dict(node.model.state_dict())
            merged.update(average)
            node.load_model(merged)
        return {"train_loss": loss} if node.name != self.hub else {"train_loss": loss, "peers_heard": float(heard)}
