"""ZeroDFL (arXiv 2509.26462): decentralized CoOp where clients swap rows of their prompt contexts.

Each client holds a frozen CLIP and a CoOp context of M vectors (setup as in coop_local). Each round
  1. one pass over the local few-shot data (cosine learning-rate schedule); the client is scored
     here, after its local step and before the exchange, as the authors evaluate
     (`evaluate: after_exchange` scores the rebuilt context instead),
  2. every client draws S of its neighbours as this round's sources; the draw is repeatable from
     the run seed, so each neighbour knows who drew it and publishes its context (kind PROMPT,
     M x text width floats) to exactly those clients — N·S contexts travel per round,
  3. each client rebuilds its context row by row, M times: pick a source s with probability
     proportional to 1 / (count[s] + 1e-6), take a uniformly random row of s — any of its M rows,
     the last one included (the authors' code never picks the last) — and count it. As in the
     authors' code, count[s] is the rows taken from s over the whole run and the probabilities
     stay fixed within a round (`row_counts: run`); `row_counts: round` is fedsim's earlier variant,
     counting within the round only and updating after every row,
  4. the rebuilt context replaces the client's own; its optimizer state (momentum) is kept.
S = `peers` (an integer or "all"). A client with fewer than S neighbours uses all of them (logged
once); a client with no source this round keeps its own context. Per-client random initial
contexts (the authors' clients each draw their own): `train.same_init: false`.
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


def draw_rows(n_sources: int, n_rows: int, rng: np.random.Generator,
              counts: np.ndarray | None = None) -> list[tuple[int, int]]:
    """(source, row) for each of the n_rows rows of the rebuilt context, by inverse-count sampling.

    counts: rows taken from each source in earlier rounds (the authors' run-long history); the
    probabilities are then fixed for the round. None: counts start at 0 and follow every row.
    """
    if counts is not None:
        p = 1.0 / (np.asarray(counts, dtype=np.float64) + EPS)
        return [(int(rng.choice(n_sources, p=p / p.sum())), int(rng.integers(0, n_rows))) for _ in range(n_rows)]
    count = np.zeros(n_sources)
    picks = []
    for _ in range(n_rows):
        p = 1.0 / (count + EPS)
        s = int(rng.choice(n_sources, p=p / p.sum()))
        picks.append((s, int(rng.integers(0, n_rows))))  # upper bound exclusive: rows 0..M-1, all of them
        count[s] += 1
    return picks


def rebuild_context(sources: list[torch.Tensor], rng: np.random.Generator,
                    counts: np.ndarray | None = None) -> tuple[torch.Tensor, list[int]]:
    """A new (M, W) context assembled from rows of the received (M, W) contexts, and the source of each row."""
    m = sources[0].shape[0]
    if any(tuple(s.shape) != tuple(sources[0].shape) for s in sources):
        raise ValueError(f"contexts of different shapes: {[tuple(s.shape) for s in sources]}")
    picks = draw_rows(len(sources), m, rng, counts)
    return torch.stack([sources[s][row] for s, row in picks]), [s for s, _ in picks]


class ZeroDFLPolicy(CoopLocalPolicy):
    name = "zerodfl"
    options = {**CoopLocalPolicy.options, "peers": 5,
               "row_counts": "run",          # run: the authors' run-long counts | round: counted within a round
               "evaluate": "after_local"}    # after_local: scored before the exchange (authors) | after_exchange
    TAG = "ctx"

    @classmethod
    def _peers(cls, value) -> int | None:
        if value == "all":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError("policy.peers", value, "an integer >= 1 (S, sources per round) or 'all'")
        return value

    def __init__(self, options=None):
        super().__init__(options)
        for key, allowed in (("row_counts", ("run", "round")), ("evaluate", ("after_local", "after_exchange"))):
            if self.opts[key] not in allowed:
                raise ConfigError(f"policy.{key}", self.opts[key], " | ".join(allowed))

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
        self.taken: dict[str, int] = {}   # rows taken from each source so far (row_counts: run)
        self.scored_ctx = None            # the context evaluate() scores

    def sources(self, node, r: int, client: str) -> list[str]:
        """The neighbours `client` takes contexts from in round r — the same answer on every node."""
        nbrs = sorted(node.graph.neighbors(client))
        if self.s is None or self.s >= len(nbrs):
            return nbrs
        rng = np.random.default_rng([node.run_seed, r, self.order.index(client), 0x2E0])
        return sorted(rng.choice(nbrs, self.s, replace=False).tolist())

    def run_round(self, node, r):
        loss = self.local_pass(node, r)                                      # 1. local pass
        if self.opts["evaluate"] == "after_local":
            self.scored_ctx = self.learner.ctx.detach().clone()
        ctx = Payload(Kind.PROMPT, {"ctx": self.learner.ctx.detach().clone()})
        for peer in node.neighbors:                                          # 2. publish to who drew us
            if node.name in self.sources(node, r, peer):
                node.send(peer, ctx, self.TAG)
        got = node.recv(self.TAG, expect=self.sources(node, r, node.name))
        if got.messages:                                                     # 3. rebuild row by row
            received = [torch.as_tensor(m.payload.tensors["ctx"]).to(self.learner.ctx) for m in got]
            names = [m.src for m in got]
            counts = np.array([self.taken.get(n, 0) for n in names]) if self.opts["row_counts"] == "run" else None
            new, picked = rebuild_context(received, node.rng, counts)
            for i in picked:
                self.taken[names[i]] = self.taken.get(names[i], 0) + 1
            with torch.no_grad():                                            # 4. replace; optimizer kept
                self.learner.ctx.copy_(new)
        return {"train_loss": loss, "peers_heard": float(len(got))}

    def evaluate(self, node, r):
        if self.scored_ctx is None:
            return super().evaluate(node, r)
        held = self.learner.ctx.detach().clone()
        with torch.no_grad():
            self.learner.ctx.copy_(self.scored_ctx)
        try:
            return super().evaluate(node, r)
        finally:
            with torch.no_grad():
                self.learner.ctx.copy_(held)
