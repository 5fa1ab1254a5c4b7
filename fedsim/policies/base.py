"""Policy: the algorithm a node runs each round, written against the Node primitives only.

Lifecycle (called by the runtime, the same in simulation and in deployment):
    setup(node)              once, after the node and its model exist
    run_round(node, r)       train, send, receive, merge; returns metrics for this round
    evaluate(node, r)        local test metrics of the model this node holds
    eval_model(node)         the model scored for federation accuracy (defaults to node.model)
    serve(node, tag, p)      answers a peer's `node.request(...)` (e.g. FedRewind's rewind)
    state_dict()/load_state_dict()   policy state beyond the model, for checkpoints
Policies never touch sockets or Ray.

A user policy is a subclass anywhere (named in the config as 'package.module:Class' or by an entry
point in group `fedsim.policies`); it declares its options like the built-ins, as a class dict of
`fedsim.Option`s (or plain defaults), and unknown options are errors naming the allowed ones.
"""
from __future__ import annotations

from typing import Any, ClassVar

import networkx as nx
import torch.nn as nn

from fedsim.errors import WireError
from fedsim.options import options_of
from fedsim.payload import Payload


class Policy:
    name: ClassVar[str] = "base"
    # Option name -> fedsim.Option (or a plain default). Anything else under `policy:` is rejected
    # with the allowed list; values an Option checks are validated here, before any node exists.
    options: ClassVar[dict[str, Any]] = {}
    # True when the policy may address nodes that are not graph neighbours (multi-hop relay).
    relay: ClassVar[bool] = False
    # False when scoring every model on every node's test set makes no sense or costs too much
    # (the driver then skips fed_acc for this policy).
    federation_eval: ClassVar[bool] = True
    # Why this policy cannot train under privacy.dp (the run is refused before it starts), or None.
    dp_refusal: ClassVar[str | None] = None

    def __init__(self, options: dict | None = None) -> None:
        label = self.name if self.name != "base" else type(self).__qualname__
        self.opts: dict[str, Any] = options_of(type(self)).resolve(dict(options or {}), "policy.", f"policy {label!r}")

    @classmethod
    def check_topology(cls, graph: nx.Graph, options: dict) -> None:
        """Raise TopologyError/ConfigError when the policy cannot run on `graph`."""

    def setup(self, node) -> None:
        """Prepare per-node state; the baselines need none."""

    def run_round(self, node, r: int) -> dict[str, float]:
        raise NotImplementedError(f"policy {self.name} does not implement run_round")

    def evaluate(self, node, r: int) -> dict[str, float]:
        return node.evaluate(self.eval_model(node))

    def eval_model(self, node) -> nn.Module:
        return node.model

    def serve(self, node, tag: str, payload: Payload) -> Payload:
        raise WireError(f"policy {self.name!r} offers no {tag!r} service")

    def dp_epochs_per_round(self, epochs: int) -> float:
        """Passes over this node's records per round with train.epochs = `epochs`; privacy.dp
        calibrates its noise for rounds x this many passes (fedsim/privacy/dp.py)."""
        return float(epochs)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict() returned; stateless policies have nothing to restore."""
