"""CoOp + FedAvg (PromptFL-style): the contexts are averaged through a hub every round.

Each round
  1. every client (the hub included) does one pass over its few-shot data (as coop_local),
  2. the other clients send their context (kind PROMPT, M x text width) and sample count to the hub,
  3. the hub replaces its context by the sample-weighted average and sends it back; all adopt it.
Needs a hub linked to every node (star or complete topology). Optimizer state stays local.
"""
from __future__ import annotations

import torch

from fedsim.payload import Kind
from fedsim.policies.coop_local import CoopLocalPolicy
from fedsim.policies.hub import average_through_hub, choose_hub


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
        average, heard = average_through_hub(node, self.hub, mine, len(self.task.y_train), kind=Kind.PROMPT,
                                             up="ctx_update", down="ctx_global")
        if average is not None:
            with torch.no_grad():
                self.learner.ctx.copy_(torch.as_tensor(average["ctx"]))
        return {"train_loss": loss} if node.name != self.hub else {"train_loss": loss, "peers_heard": float(heard)}
