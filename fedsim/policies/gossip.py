"""Decentralized FedAvg / D-PSGD gossip.

Each round every node
  1. trains its model for E local epochs,
  2. sends the model to all its neighbours,
  3. receives its neighbours' models,
  4. replaces its model by the Metropolis–Hastings weighted average
         x_i <- w_ii x_i + Σ_j w_ij x_j,   w_ij = 1 / (1 + max(deg_i, deg_j)),  w_ii = 1 - Σ_j w_ij
     (a doubly stochastic mixing matrix, so the federation converges to the plain average).
A neighbour that does not arrive in time is left out and its weight stays with the node itself.
"""
from __future__ import annotations

from fedsim.payload import Kind
from fedsim.policies.averaging import weighted_average
from fedsim.policies.base import Policy
from fedsim.topology import metropolis_hastings_row


class GossipPolicy(Policy):
    name = "gossip"
    TAG = "model"

    def setup(self, node):
        self.weights = metropolis_hastings_row(node.graph, node.name)

    def run_round(self, node, r):
        loss = node.train()
        node.broadcast(node.model_payload(Kind.MODEL), self.TAG)
        got = node.recv(self.TAG)
        states = [node.model.state_dict()] + [m.payload.tensors for m in got]
        mix = [self.weights[m.src] for m in got]
        weights = [1.0 - sum(mix)] + mix
        node.load_model(weighted_average(states, weights))
        return {"train_loss": loss, "peers_heard": float(len(got))}
