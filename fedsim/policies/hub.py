"""The hub of a star: shared by the centralized references (FedAvg, pooled training)."""
from __future__ import annotations

import networkx as nx

from fedsim.errors import ConfigError
from fedsim.policies.base import Policy


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
