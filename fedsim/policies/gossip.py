"""Decentralized FedAvg / D-PSGD gossip.

Each round every node
  1. trains its model for E local epochs,
  2. sends the model to all its neighbours,
  3. receives its neighbours' models,
  4. replaces its model by the Metropolis–Hastings weighted average
         x_i <- w_ii x_i + Σ_j w_ij x_j,   w_ij = 1 / (1 + max(deg_i, deg_j)),  w_ii = 1 - Σ_j w_ij
     (a doubly stochastic mixing matrix, so the federation converges to the plain average).
A neighbour that does not arrive in time is left out and its weight stays with the node itself.
On a complete graph every node gets the exact mean every round: this *is* FedAvg, at N − 1 models
sent per node per round.

`peers: k` (an integer) is randomized pairwise gossip instead: k times per round the nodes draw a
random matching along the topology's edges (the same on every node, from the run seed and round)
and each matched pair swaps models and keeps the 50/50 average — k models sent per node per round,
the byte budget of model exchange (k = 1) or of FedRewind's model plus rewind round trip (k = 3).
A node left out of a matching keeps its model for that step.
"""
from __future__ import annotations

import numpy as np

from fedsim.errors import ConfigError
from fedsim.payload import Kind
from fedsim.policies.averaging import weighted_average
from fedsim.policies.base import Policy
from fedsim.topology import metropolis_hastings_weights


def random_matching(graph, seed: int, r: int, step: int) -> dict[str, str]:
    """partner[node] for one gossip step: a random maximal matching along edges, identical on every node."""
    edges = sorted(tuple(sorted(e)) for e in graph.edges if e[0] != e[1])
    rng = np.random.default_rng([int(seed), int(r), int(step), 0x6055])
    partner: dict[str, str] = {}
    for i in rng.permutation(len(edges)):
        a, b = edges[i]
        if a not in partner and b not in partner:
            partner[a], partner[b] = b, a
    return partner


class GossipPolicy(Policy):
    name = "gossip"
    options = {"peers": "all"}  # all: Metropolis–Hastings over every neighbour | k: k random pairwise steps
    TAG = "model"

    def __init__(self, options=None):
        super().__init__(options)
        k = self.opts["peers"]
        if k != "all" and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ConfigError("policy.peers", k, "all (average with every neighbour) or an integer >= 1 "
                              "(random pairwise gossip steps per round)")

    def setup(self, node):
        self.weights = metropolis_hastings_weights(node.graph)[node.name]

    def run_round(self, node, r):
        loss = node.train()
        if self.opts["peers"] == "all":
            heard = self.average_all(node)
        else:
            heard = sum(self.pair_step(node, r, step) for step in range(self.opts["peers"]))
        return {"train_loss": loss, "peers_heard": float(heard)}

    def average_all(self, node) -> int:
        node.broadcast(node.model_payload(Kind.MODEL), self.TAG)
        got = node.recv(self.TAG)
        states = [node.model.state_dict()] + [m.payload.tensors for m in got]
        mix = [self.weights[m.src] for m in got]
        weights = [1.0 - sum(mix)] + mix
        node.load_model(weighted_average(states, weights))
        return len(got)

    def pair_step(self, node, r: int, step: int) -> int:
        partner = random_matching(node.graph, node.run_seed, r, step).get(node.name)
        if partner is None:
            return 0
        tag = f"{self.TAG}/{step}"
        node.send(partner, node.model_payload(Kind.MODEL), tag)
        got = node.recv(tag, expect=[partner])
        if not got.messages:
            return 0
        node.load_model(weighted_average([node.model.state_dict(), got.messages[0].payload.tensors], [0.5, 0.5]))
        return 1
