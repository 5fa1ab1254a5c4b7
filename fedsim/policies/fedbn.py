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

from fedsim.payload import Kind, Payload
from fedsim.policies.averaging import weighted_average
from fedsim.policies.hub import HubPolicy

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

    def shared(self, node, **meta) -> Payload:
        state = {k: v for k, v in node.model.state_dict().items() if k not in self.local}
        return Payload(Kind.MODEL, state, {k: str(v) for k, v in meta.items()})

    def adopt(self, node, tensors) -> None:
        merged = dict(node.model.state_dict())
        merged.update({k: v for k, v in tensors.items() if k not in self.local})
        node.load_model(merged)

    def run_round(self, node, r):
        loss = node.train()
        if node.name != self.hub:
            node.send(self.hub, self.shared(node, samples=node.data.n_train), "update")
            got = node.recv("global", expect=[self.hub])
            if got.messages:
                self.adopt(node, got.messages[0].payload.tensors)
            return {"train_loss": loss}
        got = node.recv("update", expect=list(node.neighbors))
        states = [self.shared(node).tensors] + [m.payload.tensors for m in got]
        weights = [node.data.n_train] + [float(m.payload.meta["samples"]) for m in got]
        avg = weighted_average(states, weights)
        self.adopt(node, avg)
        node.broadcast(Payload(Kind.MODEL, avg), "global")
        return {"train_loss": loss, "peers_heard": float(len(got))}
