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
from fedsim.policies.hub import HubPolicy, average_through_hub


class FedAvgPolicy(HubPolicy):
    name = "fedavg"

    def run_round(self, node, r):
        loss = node.train()
        state = {k: v.detach() for k, v in node.model.state_dict().items()}
        average, heard = average_through_hub(node, self.hub, state, node.data.n_train, kind=Kind.MODEL,
                                             up="update", down="global")
        if average is not None:
            node.load_model(average)
        return {"train_loss": loss} if node.name != self.hub else {"train_loss": loss, "peers_heard": float(heard)}
