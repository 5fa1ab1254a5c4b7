"""Routing for model-exchange policies: who sends its model to whom in a round.

A route is a set of disjoint directed cycles along topology edges: every node in it sends its
model to exactly one neighbour and receives exactly one model (a swap u <-> v is a 2-cycle).
Every node computes the same route from (run_seed, round) and, for `scored`, from scores that
every node has received, so a receiver knows whom to expect (`node.recv(tag, expect=[sender])`).

Strategies
  random_permutation  a fresh random permutation each round (the paper's default). We draw it as
                      an assignment with random costs over the topology's edges, so it also works
                      on graphs that are not complete.
  ring                static: node i -> node i+1 in the topology's node order when those pairs are
                      edges; otherwise one fixed edge-respecting permutation (drawn from the run
                      seed only) used every round.
  scored              each model goes where it is weakest: the assignment minimising the summed
                      score[i][j] (model i's expected training F1 on node j, see `fedrewind.py`).

When no permutation along edges exists (e.g. a star with more than two leaves: the hub can take
only one model), we take the assignment that uses the most edges (a maximum matching), keep its
cycles, cut each open chain a1 -> a2 -> ... into swaps (a1 <-> a2), (a3 <-> a4), ..., and the nodes
left over *hold*: they keep their model this round and neither send nor receive.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from fedsim.errors import ConfigError

STRATEGIES = ("random_permutation", "ring", "scored")
_FORBIDDEN = 1e9  # cost of a pair that is not an edge (or a self-loop); dominates any real cost


@dataclass(frozen=True)
class Route:
    send_to: dict[str, str]                             # sender -> receiver
    recv_from: dict[str, str]                           # receiver -> sender
    holders: list[str] = field(default_factory=list)    # nodes that keep their model this round

    @property
    def complete(self) -> bool:
        return not self.holders


def check_strategy(strategy) -> None:
    if strategy not in STRATEGIES:
        raise ConfigError("policy.routing", strategy, " | ".join(STRATEGIES))


def route(strategy: str, graph: nx.Graph, run_seed: int, r: int,
          scores: dict[str, dict[str, float]] | None = None) -> Route:
    """The route of round `r`; identical on every node for the same inputs."""
    check_strategy(strategy)
    names = list(graph.nodes)
    if strategy == "ring":
        ring = {a: b for a, b in zip(names, names[1:] + names[:1])}
        if len(names) > 1 and all(graph.has_edge(a, b) for a, b in ring.items()):
            return Route(ring, {b: a for a, b in ring.items()})
        cost = np.random.default_rng([run_seed, 0x21E6]).random((len(names), len(names)))
    elif strategy == "random_permutation":
        cost = np.random.default_rng([run_seed, r, 0x5EED]).random((len(names), len(names)))
    else:
        if scores is None:
            raise ValueError("scored routing needs the score matrix")
        cost = np.array([[scores[a].get(b, 0.0) for b in names] for a in names], dtype=np.float64)
    return assign(graph, names, cost)


def assign(graph: nx.Graph, names: list[str], cost: np.ndarray) -> Route:
    """Minimum-cost permutation along edges; the fallback above when none exists."""
    from scipy.optimize import linear_sum_assignment  # seconds to import: only runs that route pay

    n = len(names)
    allowed = np.array([[i != j and graph.has_edge(a, b) for j, b in enumerate(names)] for i, a in enumerate(names)],
                       dtype=bool).reshape(n, n)
    rows, cols = linear_sum_assignment(np.where(allowed, cost, _FORBIDDEN))
    nxt = {names[i]: names[j] for i, j in zip(rows, cols) if allowed[i, j]}
    if len(nxt) == n:
        return Route(nxt, {b: a for a, b in nxt.items()})
    return _cycles_and_swaps(names, nxt)


def _cycles_and_swaps(names: list[str], nxt: dict[str, str]) -> Route:
    prev = {b: a for a, b in nxt.items()}
    send: dict[str, str] = {}
    seen: set[str] = set()
    for start in names:  # keep the closed cycles as they are
        if start in seen or start not in nxt:
            continue
        path, node = [], start
        while node in nxt and node not in seen and node not in path:
            path.append(node)
            node = nxt[node]
        if node == start:
            send.update({a: nxt[a] for a in path})
            seen.update(path)
    for head in names:  # what is left are open chains; each starts where nobody sends in
        if head in seen or head in prev:
            continue
        chain, node = [head], head
        while node in nxt:
            node = nxt[node]
            chain.append(node)
        seen.update(chain)
        for a, b in zip(chain[0::2], chain[1::2]):  # a chain's consecutive pairs are edges: swap them
            send[a], send[b] = b, a
    holders = [x for x in names if x not in send]
    return Route(send, {b: a for a, b in send.items()}, holders)


def flood(node, tag: str, mine: dict[str, np.ndarray], hops: int) -> dict[str, dict[str, np.ndarray]]:
    """Every node's small vectors on every node: `hops` (the graph's diameter) rounds of broadcasts
    to neighbours, each forwarding all it knows. Tags `<tag>/<hop>`, kind CONTROL, in the ledger."""
    from fedsim.payload import Kind, Payload

    known = {node.name: {k: np.asarray(v) for k, v in mine.items()}}
    for hop in range(hops):
        if not node.neighbors:
            break
        tensors = {f"{k}/{owner}": v for owner, vecs in known.items() for k, v in vecs.items()}
        node.broadcast(Payload(Kind.CONTROL, tensors), f"{tag}/{hop}")
        for msg in node.recv(f"{tag}/{hop}"):
            for key, value in msg.payload.tensors.items():
                k, owner = key.split("/", 1)
                known.setdefault(owner, {})[k] = np.asarray(value)
    return known
