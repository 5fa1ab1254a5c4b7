"""CoOp + FedAvg (PromptFL-style): the contexts are averaged through a hub every round.

Each round
  1. every client (the hub included) does one pass over its few-shot data (as coop_local),
  2. the other clients send their context (kind PROMPT, M x text width) and sample count to the hub,
  3. the hub replaces its context by the sample-weighted average and sends it back; all adopt it.
Needs a hub linked to every node (star or complete topology). Optimizer state stays local.
"""
from __future__ import annotations

import torch

from fedsim.payload import Kind, Payload
from fedsim.policies.averaging import weighted_average
from fedsim.policies.coop_local import CoopLocalPolicy
from fedsim.policies.hub import choose_hub


class CoopFedAvgPolicy(CoopLocalPolicy):
    name = "coop_fedavg"
    options = {**CoopLocalPolicy.options, "hub": None}

    @classmethod
    def check_topology(cls, graph, options):
        choose_hub(graph, options.get("hub"), cls.name)

    def setup(self, node):
        super().setup(node)
        self.hub = choose_hub(node.graph, self.opts["hub"], self.name)

    def run_round(self, node, r):
        loss = self.local_pass(node, r)
        mine = {"ctx": self.learner.ctx.detach().clone()}
        n = len(self.task.y_train)
        if node.name != self.hub:
            node.send(self.hub, Payload(Kind.PROMPT, mine, {"samples": str(n)}), "ctx_update")
            got = node.recv("ctx_global", expect=[self.hub])
            if got.messages:
                self._adopt(got.messages[0].payload.tensors)
            return {"train_loss": loss}
        got = node.recv("ctx_update", expect=node.neighbors)
        states = [mine] + [m.payload.tensors for m in got]
        weights = [n] + [float(m.payload.meta["samples"]) for m in got]
        avg = weighted_average(states, weights)
        self._adopt(avg)
        node.broadcast(Payload(Kind.PROMPT, {"ctx": self.learner.ctx.detach().clone()}), "ctx_global")
        return {"train_loss": loss, "peers_heard": float(len(got))}

    def _adopt(self, tensors):
        with torch.no_grad():
            self.learner.ctx.copy_(torch.as_tensor(tensors["ctx"]))
