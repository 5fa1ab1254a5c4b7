"""The hub of a star: shared by the centralized references (FedAvg, pooled training)."""
from __future__ import annotations

from typing import Callable, Mapping

import networkx as nx
import torch

from fedsim.errors import ConfigError
from fedsim.payload import Kind, Payload
from fedsim.policies.averaging import weighted_average
from fedsim.policies.base import Policy

Tensors = Mapping[str, torch.Tensor]


def choose_hub(graph: nx.Graph, requested: str | None, policy: str) -> str:
    """The requested hub, or the highest-degree node (ties: first name). It must reach every node directly."""
    if requested is not None:
        if requested not in graph:
            raise ConfigError("policy.hub", requested, "a node of the topology: " + ", ".join(sorted(graph)[:8]))
        hub = requested
    else:
        hub = sorted(graph, key=lambda n: (-graph.degree(n), n))[0]
    if graph.degree(hub) != graph.number_of_nodes() - 1:
        far = sorted(set(graph) - set(graph.neighbors(hub)) - {hub})
        raise ConfigError("topology", graph.graph.get("name", "graph"),
                          f"a star or complete graph for policy {policy!r}",
                          f"hub {hub!r} is not linked to {', '.join(far[:5])}")
    return hub


class HubPolicy(Policy):
    """Base of the policies where one hospital is the server: option `hub` (default: best-connected node)."""

    options = {"hub": None}

    @classmethod
    def check_topology(cls, graph, options):
        choose_hub(graph, options.get("hub"), cls.name)

    def setup(self, node):
        self.hub = choose_hub(node.graph, self.opts["hub"], self.name)


def average_through_hub(node, hub: str, mine: Tensors, samples: int, *, kind: Kind, up: str, down: str,
                        wire: Callable[[Tensors], dict] = dict) -> tuple[dict | None, int]:
    """One FedAvg exchange through `hub`: the others send (`mine`, samples) on tag `up`; the hub
    averages its own and what arrived, weighted by samples, and sends `wire(average)` back on tag
    `down`. Returns what this node adopts — the very tensors the hub sent, so every node (the hub
    included) holds the same — or None when the hub's reply never came; and, at the hub, how many
    updates it heard (0 elsewhere). `wire` is how tensors travel (e.g. cast to fp16)."""
    if node.name != hub:
        node.send(hub, Payload(kind, wire(mine), {"samples": str(samples)}), up)
        got = node.recv(down, expect=[hub])
        return (dict(got.messages[0].payload.tensors) if got.messages else None), 0
    got = node.recv(up, expect=node.neighbors)
    states = [wire(mine)] + [m.payload.tensors for m in got]
    weights = [float(samples)] + [float(m.payload.meta["samples"]) for m in got]
    average = wire(weighted_average(states, weights))
    node.broadcast(Payload(kind, average), down)
    return average, len(got)
