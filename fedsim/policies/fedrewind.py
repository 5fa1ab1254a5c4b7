"""FedRewind: decentralized model exchange with rewind (arXiv 2411.09842, ICPR 2024).

Every node holds one model, and the models travel. In round r each node
  1. trains the model it holds for E − R local epochs (E = train.epochs, R = ceil(E · rewind_ratio)),
  2. at the rewind point s* sends the model back to the node it came from — a real round trip with
     `node.request(prev, "rewind", model)`: that node's `serve` trains it R epochs on *its* data
     (at LR × rewind_lr_scale) and returns it — so the model trains E epochs in all, as in the
     authors' code;
  3. routes the model onward (`routing.py`) and adopts the model it receives, remembering the
     sender: the next round rewinds to it. Round 0 has no previous node: E local epochs, no rewind.
Rewind points (`rewind_strategy`), in local epochs done before the round trip, clamped to [0, E − R]:
  atend_pre  s* = E − R − ceil(R · rewind_end_ratio): E − 2R local, R rewind, R local (the default)
  halfway    s* = E // 2
  atend      s* = E − R, after local training
  interval   s* = ⌊E / R / 2⌋ (the authors' `interval`: one round trip)
  periodic   s* = k, 2k, ... <= E − R for k = rewind_interval: a round trip every k local epochs —
             fedsim's variant, which trains R more epochs per extra round trip
Rewind targets (`rewind_to`): `previous` (the sender), `last_two` (the last two distinct earlier
holders of the model, oldest first, R epochs each) or `random` (a random neighbour). The model's
trail of holders travels in the payload metadata; targets that are not neighbours (possible with
`last_two` on a non-complete graph) are skipped, and without a target the round is E local epochs.

Optimizer: with `optimizer_travels` (default, as in the authors' code where each model keeps its
optimizer) the optimizer state (momentum / Adam moments) is sent with the model, so the wire
carries it too; otherwise a node resets its optimizer state when it adopts a model.

Metrics: `test_acc` of the model a node holds on the node's own test set is the paper's
Personalized Federation Accuracy (also written as `pfa`), measured after routing, like the
authors' evaluation at the start of the next round; `pfa_before_routing` is the model the node just
trained, on its own test set. The driver's `fed_acc` (each model on all nodes' test sets, pooled)
is its Federation Accuracy (FA).
"""
from __future__ import annotations

import copy
import math
import threading

import numpy as np
import torch

from fedsim import training
from fedsim.errors import ConfigError, TopologyError
from fedsim.policies import routing
from fedsim.policies.base import Policy
from fedsim.policies.travel import pack, unpack

REWIND_STRATEGIES = ("atend_pre", "halfway", "atend", "interval", "periodic")
REWIND_TARGETS = ("previous", "last_two", "random")
TRAIL_KEEP = 8  # holders remembered in a model's trail (enough for last_two)


def rewind_points(strategy: str, epochs: int, r_epochs: int, end_ratio: float, interval: int) -> list[int]:
    """Local epochs done before each round trip; the round trains epochs − r_epochs local epochs in all."""
    if r_epochs <= 0:
        return []
    local = max(epochs - r_epochs, 0)
    if strategy == "periodic":
        return list(range(interval, local + 1, interval)) or [local]
    s = {"atend_pre": epochs - r_epochs - math.ceil(r_epochs * end_ratio), "halfway": epochs // 2,
         "atend": local, "interval": epochs // r_epochs // 2}[strategy]
    return [min(max(s, 0), local)]


class FedRewindPolicy(Policy):
    name = "fedrewind"
    options = {
        "rewind_ratio": 0.1,              # R = ceil(E * rewind_ratio); 0 turns rewind off
        "rewind_strategy": "atend_pre",
        "rewind_end_ratio": 1.0,          # atend_pre: s* = E - R - ceil(R * rewind_end_ratio)
        "rewind_interval": 2,             # periodic: a rewind every k local epochs
        "rewind_lr_scale": 1.0,           # 0.1 = the paper's "LR x0.1 during rewind"
        "rewind_to": "previous",
        "routing": "random_permutation",
        "optimizer_travels": True,
    }
    fixed: dict = {}  # options a subclass pins (model_exchange: no rewind)
    MODEL_TAG, REWIND_TAG, SCORE_TAG = "model", "rewind", "scores"

    def __init__(self, options: dict | None = None) -> None:
        super().__init__(options)
        self.opts = {**FedRewindPolicy.options, **self.opts, **self.fixed}
        o = self.opts
        ratio = o["rewind_ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
            raise ConfigError("policy.rewind_ratio", ratio, "a number in [0, 1)")
        if o["rewind_strategy"] not in REWIND_STRATEGIES:
            raise ConfigError("policy.rewind_strategy", o["rewind_strategy"], " | ".join(REWIND_STRATEGIES))
        if o["rewind_to"] not in REWIND_TARGETS:
            raise ConfigError("policy.rewind_to", o["rewind_to"], " | ".join(REWIND_TARGETS))
        routing.check_strategy(o["routing"])
        for key in ("rewind_end_ratio", "rewind_lr_scale"):
            v = o[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or (key == "rewind_lr_scale" and v == 0):
                raise ConfigError(f"policy.{key}", v, "a number > 0" if key == "rewind_lr_scale" else "a number >= 0")
        k = o["rewind_interval"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError("policy.rewind_interval", k, "an integer >= 1")
        if not isinstance(o["optimizer_travels"], bool):
            raise ConfigError("policy.optimizer_travels", o["optimizer_travels"], "true or false")

    @classmethod
    def check_topology(cls, graph, options):
        if options.get("routing") == "scored" and graph.number_of_nodes() > 1:
            import networkx as nx
            if not nx.is_connected(graph):
                raise TopologyError("scored routing needs a connected topology: every node must learn every "
                                    "model's scores to compute the same route")

    # ------------------------------------------------------------------ lifecycle
    def setup(self, node):
        self.trail: list[str] = []          # earlier holders of the model this node holds, oldest first
        self.order = list(node.graph.nodes)
        self._scratch = copy.deepcopy(node.model)  # serve() trains visiting models here, never node.model
        self._serve_lock = threading.Lock()
        if self.opts["routing"] == "scored":
            import networkx as nx
            self.hops = nx.diameter(node.graph) if node.graph.number_of_nodes() > 1 else 0

    def run_round(self, node, r):
        E = node.train_cfg["epochs"]
        R = self.rewind_epochs(E)
        targets = self.rewind_targets(node, r) if R else []
        points = self.points(E) if targets else []
        local = E - R if points else E
        losses, done = [], 0
        for s in points:                       # local epochs up to the rewind point ...
            losses.append((node.train(epochs=s - done), s - done))
            done = s
            for target in targets:             # ... the round trip to the previous node ...
                self.rewind(node, target, R, r)
        losses.append((node.train(epochs=local - done), local - done))  # ... and the rest of the local epochs
        seen = [(l, n) for l, n in losses if n > 0]
        metrics = {"train_loss": sum(l * n for l, n in seen) / max(1, sum(n for _, n in seen)),
                   "rewinds": float(len(points) * len(targets)),
                   "local_epochs": float(local), "rewind_epochs": float(R * len(points) * len(targets)),
                   "pfa_before_routing": node.evaluate(node.model)["test_acc"]}
        metrics.update(self.exchange(node, r))
        return metrics

    def rewind_epochs(self, epochs: int) -> int:
        return math.ceil(epochs * self.opts["rewind_ratio"])

    def points(self, epochs: int) -> list[int]:
        return rewind_points(self.opts["rewind_strategy"], epochs, self.rewind_epochs(epochs),
                             self.opts["rewind_end_ratio"], self.opts["rewind_interval"])

    def dp_epochs_per_round(self, epochs):
        """Local epochs plus the rewinds this node serves (as many as it sends, under a permutation)."""
        R = self.rewind_epochs(epochs)
        if not R:
            return float(epochs)
        per_target = 2 if self.opts["rewind_to"] == "last_two" else 1
        return float(epochs - R + R * len(self.points(epochs)) * per_target)

    def evaluate(self, node, r):
        out = node.evaluate(self.eval_model(node))
        out["pfa"] = out["test_acc"]  # Personalized Federation Accuracy: the held model on this node's test set
        return out

    # ------------------------------------------------------------------ rewind
    def rewind_targets(self, node, r) -> list[str]:
        if r == 0:
            return []
        nbrs = set(node.neighbors)
        how = self.opts["rewind_to"]
        if how == "random":
            return [str(node.rng.choice(node.neighbors))] if node.neighbors else []
        distinct: list[str] = []
        for holder in reversed(self.trail):   # most recent first
            if holder != node.name and holder not in distinct:
                distinct.append(holder)
        wanted = distinct[:1] if how == "previous" else distinct[:2][::-1]
        return [t for t in wanted if t in nbrs]

    def rewind(self, node, target: str, epochs: int, r: int) -> None:
        payload = pack(node.model, node.optimizer, self.opts["optimizer_travels"],
                       epochs=epochs, lr_scale=self.opts["rewind_lr_scale"], round=r, origin=node.name)
        reply = node.request(target, self.REWIND_TAG, payload)
        unpack(node, node.model, node.optimizer, reply, self.opts["optimizer_travels"])

    def serve(self, node, tag, payload):
        """A model that passed through here comes back for R epochs on this node's data."""
        if tag != self.REWIND_TAG:
            return super().serve(node, tag, payload)
        m = payload.meta
        epochs, r, origin = int(m["epochs"]), int(m["round"]), m["origin"]
        with self._serve_lock:
            model = self._scratch
            opt = training.make_optimizer(model, node.train_cfg, lr=node.train_cfg["lr"] * float(m["lr_scale"]))
            unpack(node, model, opt, payload, self.opts["optimizer_travels"])
            # own generator: batch order must not depend on when this thread gets the compute slot
            seed = np.random.SeedSequence([node.run_seed, r, self.order.index(origin), self.order.index(node.name)])
            gen = torch.Generator().manual_seed(int(seed.generate_state(1)[0]))
            node.train(epochs=epochs, model=model, optimizer=opt, generator=gen)  # under privacy.dp: charged here
            return pack(model, opt, self.opts["optimizer_travels"])

    # ------------------------------------------------------------------ routing
    def exchange(self, node, r) -> dict[str, float]:
        scores = self.share_scores(node, r) if self.opts["routing"] == "scored" else None
        plan = routing.route(self.opts["routing"], node.graph, node.run_seed, r, scores)
        if node.name in plan.holders:
            return {"held": 1.0}
        trail = (self.trail + [node.name])[-TRAIL_KEEP:]
        node.send(plan.send_to[node.name], pack(node.model, node.optimizer, self.opts["optimizer_travels"],
                                                 trail=",".join(trail)), self.MODEL_TAG)
        sender = plan.recv_from[node.name]
        got = node.recv(self.MODEL_TAG, expect=[sender])
        if got.missing:  # keep training the model we have; the host reports missing_peers
            return {"held": 1.0}
        payload = got.messages[0].payload
        unpack(node, node.model, node.optimizer, payload, self.opts["optimizer_travels"])
        self.trail = [t for t in payload.meta.get("trail", "").split(",") if t]
        return {"held": 0.0}

    def share_scores(self, node, r) -> dict[str, dict[str, float]]:
        """score[i][j] = Σ_c p_j(c) · F1_i(c): model i's training F1 per class, weighted by node j's labels.

        An estimate of model i's F1 on node j's data that needs no extra model transfer: each node
        publishes two C-vectors, flooded over `diameter` hops so every node holds the same matrix.
        """
        cm = node.confusion(node.model, node.data.x_train, node.data.y_train)
        tp = np.diag(cm).astype(np.float64)
        denom = cm.sum(0) + cm.sum(1)
        f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
        labels = node.data.class_counts("train").astype(np.float64)
        known = routing.flood(node, f"{self.SCORE_TAG}", {"f1": f1, "labels": labels / labels.sum()}, self.hops)
        return {i: {j: float(known[i]["f1"] @ known[j]["labels"]) for j in known} for i in known}
