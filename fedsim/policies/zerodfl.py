"""ZeroDFL (arXiv 2509.26462): decentralized CoOp where clients swap rows of their prompt contexts.

Each client holds a frozen CLIP and a CoOp context of M vectors (setup as in coop_local). Each round
  1. one pass over the local few-shot data (cosine learning-rate schedule),
  2. every client draws S of its neighbours as this round's sources; the draw is repeatable from
     the run seed, so each neighbour knows who drew it and publishes its context (kind PROMPT,
     M x text width floats) to exactly those clients — N·S contexts travel per round,
  3. each client rebuilds its context row by row, M times: pick a source s with probability
     proportional to 1 / (count[s] + 1e-6), where count[s] is how many rows were already taken
     from s (so sources not used yet dominate), take a uniformly random row of s — any of its M
     rows, the last one included — and count it,
  4. the rebuilt context replaces the client's own; its optimizer state (momentum) is kept.
S = `peers` (an integer or "all"). A client with fewer than S neighbours uses all of them (logged
once); a client with no source this round keeps its own context.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from fedsim.errors import ConfigError
from fedsim.payload import Kind, Payload
from fedsim.policies.coop_local import CoopLocalPolicy

log = logging.getLogger("fedsim.zerodfl")
EPS = 1e-6


def draw_rows(n_sources: int, n_rows: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(source, row) for each of the n_rows rows of the rebuilt context, by inverse-count sampling."""
    count = np.zeros(n_sources)
    picks = []
    for _ in range(n_rows):
        p = 1.0 / (count + EPS)
        s = int(rng.choice(n_sources, p=p / p.sum()))
        picks.append((s, int(rng.integers(0, n_rows))))  # upper bound exclusive: rows 0..M-1, all of them
        count[s] += 1
    return picks


def rebuild_context(sources: list[torch.Tensor], rng: np.random.Generator) -> torch.Tensor:
    """A new (M, W) context assembled from rows of the received (M, W) contexts."""
    m = sources[0].shape[0]
    if any(tuple(s.shape) != tuple(sources[0].shape) for s in sources):
        raise ValueError(f"contexts of different shapes: {[tuple(s.shape) for s in sources]}")
    return torch.stack([sources[s][row] for s, row in draw_rows(len(sources), m, rng)])


class ZeroDFLPolicy(CoopLocalPolicy):
    name = "zerodfl"
    options = {**CoopLocalPolicy.options, "peers": 5}
    TAG = "ctx"

    @classmethod
    def _peers(cls, value) -> int | None:
        if value == "all":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError("policy.peers", value, "an integer >= 1 (S, sources per round) or 'all'")
        return value

    @classmethod
    def check_topology(cls, graph, options):
        s = cls._peers(options.get("peers", cls.options["peers"]))
        short = sorted(n for n in graph if s is not None and graph.degree(n) < s)
        if short:
            log.warning("zerodfl: peers=%d but %d node(s) have fewer neighbours (e.g. %s); they use all of theirs",
                        s, len(short), ", ".join(short[:3]))

    def setup(self, node):
        super().setup(node)
        self.s = self._peers(self.opts["peers"])
        self.order = sorted(node.graph.nodes)

    def sources(self, node, r: int, client: str) -> list[str]:
        """The neighbours `client` takes contexts from in round r — the same answer on every node."""
        nbrs = sorted(node.graph.neighbors(client))
        if self.s is None or self.s >= len(nbrs):
            return nbrs
        rng = np.random.default_rng([node.run_seed, r, self.order.index(client), 0x2E0])
        return sorted(rng.choice(nbrs, self.s, replace=False).tolist())

    def run_round(self, node, r):
        loss = self.local_pass(node, r)                                      # 1. local pass
        ctx = Payload(Kind.PROMPT, {"ctx": self.learner.ctx.detach().clone()})
        for peer in node.neighbors:                                          # 2. publish to who drew us
            if node.name in self.sources(node, r, peer):
                node.send(peer, ctx, self.TAG)
        got = node.recv(self.TAG, expect=self.sources(node, r, node.name))
        if got.messages:                                                     # 3. rebuild row by row
            received = [torch.as_tensor(m.payload.tensors["ctx"]).to(self.learner.ctx) for m in got]
            with torch.no_grad():                                            # 4. replace; optimizer kept
                self.learner.ctx.copy_(rebuild_context(received, node.rng))
        return {"train_loss": loss, "peers_heard": float(len(got))}
