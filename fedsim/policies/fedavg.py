"""FedAvg (McMahan et al.) with a hospital acting as the server: the centralized reference.

Each round
  1. every node (the hub included) trains the global model for E local epochs,
  2. the other nodes send their models to the hub with their training-set size,
  3. the hub averages them weighted by sample count,
  4. the hub sends the new global model back; everyone adopts it.
Needs a hub linked to every node (star or complete topology).
"""
from __future__ import annotations

from fedsim.payload import Kind
from fedsim.policies.averaging import weighted_average
from fedsim.policies.hub import HubPolicy


class FedAvgPolicy(HubPolicy):
    name = "fedavg"

    def run_round(self, node, r):
        loss = node.train()
        if node.name != self.hub:
            node.send(self.hub, node.model_payload(Kind.MODEL, samples=node.data.n_train), "update")
            got = node.recv("global", expect=[self.hub])
            if got.messages:
                node.load_model(got.messages[0].payload)
            return {"train_loss": loss}
        got = node.recv("update", expect=[n for n in node.neighbors])
        states = [node.model.state_dict()] + [m.payload.tensors for m in got]
        weights = [node.data.n_train] + [float(m.payload.meta["samples"]) for m in got]
        node.load_model(weighted_average(states, weights))
        node.broadcast(node.model_payload(Kind.MODEL), "global")
        return {"train_loss": loss, "peers_heard": float(len(got))}
