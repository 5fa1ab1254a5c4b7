"""Pooled-data reference: what training on all hospitals' data in one place would reach.

Round 0: every node ships its training samples to the hub (kind SAMPLES — the ledger shows what
pooling costs, and why hospitals cannot do it). Every round the hub trains on the pooled set for
E epochs and sends the model to every node, so each node's test set scores the central model.
Needs a hub linked to every node (star or complete topology).
"""
from __future__ import annotations

import torch

from fedsim.payload import Kind, Payload
from fedsim.policies.hub import HubPolicy


class CentralizedPolicy(HubPolicy):
    name = "centralized"
    def setup(self, node):
        super().setup(node)
        self.pool = None

    def run_round(self, node, r):
        if node.name != self.hub:
            if r == 0:
                node.send(self.hub, Payload(Kind.SAMPLES, {"x": node.data.x_train, "y": node.data.y_train}), "pool")
            got = node.recv("central", expect=[self.hub])
            if got.messages:
                node.load_model(got.messages[0].payload)
            return {}
        if self.pool is None:
            got = node.recv("pool", expect=node.neighbors)
            xs = [node.data.x_train] + [torch.as_tensor(m.payload.tensors["x"]) for m in got]
            ys = [node.data.y_train] + [torch.as_tensor(m.payload.tensors["y"]) for m in got]
            self.pool = (torch.cat(xs), torch.cat(ys))
        loss = node.train(x=self.pool[0], y=self.pool[1])
        node.broadcast(node.model_payload(Kind.MODEL), "central")
        return {"train_loss": loss, "pooled_samples": float(len(self.pool[1]))}
