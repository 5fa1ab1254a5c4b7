"""Push gossip: every round each hospital pushes its model to ONE random neighbour.

Each round node v
  1. trains its model for E local epochs,
  2. draws its target t_v among its neighbours (seeded by run seed, round and v, so every node can
     tell who pushes to whom without a control message),
  3. sends its model to t_v,
  4. receives the models of the neighbours u with t_u = v (maybe none, maybe several),
  5. replaces its model by the plain average of its own and the received ones.
It sends one model per node per round: 1/deg of what full gossip sends.
"""
from __future__ import annotations

import numpy as np
import torch

import fedsim


class PushGossip(fedsim.Policy):
    name = "push_gossip"
    options = {
        "fanout": fedsim.Option.integer(1, "neighbours each node pushes to per round", min=1),
    }
    TAG = "push"

    def targets(self, node: fedsim.Node, v: str, r: int) -> list[str]:
        """Whom node v pushes to in round r: the same answer on every node."""
        order = list(node.graph.nodes)
        peers = sorted(node.graph.neighbors(v))
        rng = np.random.default_rng([node.run_seed, r, order.index(v)])
        k = min(self.opts["fanout"], len(peers))
        return sorted(rng.choice(peers, size=k, replace=False).tolist())

    def run_round(self, node: fedsim.Node, r: int) -> dict[str, float]:
        loss = node.train()
        for peer in self.targets(node, node.name, r):
            node.send(peer, node.model_payload(fedsim.Kind.MODEL), self.TAG)
        senders = [u for u in node.neighbors if node.name in self.targets(node, u, r)]
        got = node.recv(self.TAG, expect=senders)  # messages sorted by sender; late ones in got.missing
        states = [node.model.state_dict()] + [m.payload.tensors for m in got]
        average = {}
        for key, mine in states[0].items():
            if mine.is_floating_point():
                average[key] = torch.stack([torch.as_tensor(s[key]).float() for s in states]).mean(0).to(mine.dtype)
            else:  # integer buffers (e.g. a BatchNorm step count): keep ours
                average[key] = mine.clone()
        node.load_model(average)
        return {"train_loss": loss, "peers_heard": float(len(got))}
