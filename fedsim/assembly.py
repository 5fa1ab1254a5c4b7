"""How a node is built and how one of its rounds runs — once, for simulation and deployment alike.

`build_node` gives a node its seeded initial model, optimizer, loss, DP trainer and policy from the
validated config; `run_step` runs one round of it (policy round, evaluation on schedule, DP budget,
who was missing). The simulation's WorkerHost and the deployed `fedsim node` both call these, so a
deployed federation computes exactly what its simulation computes. `preflight` is the check both
run before anything starts: every component named in the config resolves and fits the data.
"""
from __future__ import annotations

import threading
from typing import Any

import networkx as nx
import torch

from fedsim import training
from fedsim.data.node_data import NodeData
from fedsim.models import build_model, check_output
from fedsim.node import Node
from fedsim.policies import make_policy, policy_class
from fedsim.registry import activate

_INIT_LOCK = threading.Lock()  # torch.manual_seed is process-global: seed model init one at a time


def init_seed(cfg: dict, index: int) -> int:
    """Seed of node `index`'s initial model: one shared init (same_init) or one per node."""
    return cfg["seed"] if cfg["train"]["same_init"] else cfg["seed"] * 7919 + index


def node_seed(cfg: dict, index: int) -> int:
    """Seed of node `index`'s batch order and policy choices."""
    return cfg["seed"] * 1_000_003 + index


def seeded_model(cfg: dict, data: NodeData, seed: int) -> torch.nn.Module:
    with _INIT_LOCK:
        # Models are built on the CPU, so the CPU generator is the one to seed: torch.manual_seed
        # would also queue a CUDA seeding call (and a stack trace) on every CPU-only worker.
        torch.default_generator.manual_seed(seed)
        return build_model(cfg["model"], data.input_shape, data.num_classes)


def preflight(cfg: dict, graph: nx.Graph, sample: NodeData) -> None:
    """Fail fast, with the user's key names, before any worker starts: policy (options, topology),
    model (builds, gives num_classes logits for this data), optimizer and loss."""
    activate(cfg)
    cls = policy_class(cfg["policy"]["name"])
    policy = cls(cfg["policy"])  # option validation (and a user policy's own __init__ checks)
    if cfg["privacy"]["dp"] is not None:
        from fedsim.privacy.dp import check_policy
        check_policy(policy)
    cls.check_topology(graph, cfg["policy"])
    model = seeded_model(cfg, sample, 0)
    check_output(model, cfg["model"], sample.input_shape, sample.num_classes)
    training.make_optimizer(model, cfg["train"])
    training.check_loss(training.make_loss(cfg["train"]), sample.num_classes)


def build_node(cfg: dict, name: str, *, graph: nx.Graph, order: list[str], data: NodeData, transport: Any,
               directory: dict[str, str], ledger: Any, run_id: str, device: torch.device | str = "cpu",
               compute_lock: threading.Semaphore | None = None, node_cls: type[Node] = Node) -> Node:
    """One node with its seeded model, optimizer, DP trainer (privacy.dp) and policy attached."""
    index = order.index(name)
    model = seeded_model(cfg, data, init_seed(cfg, index))
    dp = cfg["privacy"]["dp"]
    if dp is not None:
        from fedsim.privacy.dp import make_dp_compatible
        model = make_dp_compatible(model, dp["auto_fix"])
    policy = make_policy(cfg["policy"])
    rt = cfg["runtime"]
    node = node_cls(name, graph=graph, data=data, model=model, transport=transport, directory=directory,
                    ledger=ledger, run_id=run_id, train_cfg=cfg["train"], seed=node_seed(cfg, index), device=device,
                    recv_timeout=rt["recv_timeout_s"], send_timeout=rt["send_timeout_s"],
                    compute_lock=compute_lock, relay=policy.relay, config=cfg)
    node.policy = policy
    if dp is not None:
        from fedsim.privacy.dp import DPTrainer
        node.dp = DPTrainer(node, dp, cfg["rounds"] * cfg["train"]["epochs"], seed=cfg["seed"] * 31 + index)
    return node


def evaluates(cfg: dict, r: int) -> bool:
    """Whether round r ends with local test metrics: every eval.every rounds, and the last round."""
    every = cfg["eval"]["every"]
    return r == cfg["rounds"] - 1 or (every > 0 and (r + 1) % every == 0)


def run_step(node: Node, r: int, *, evaluate: bool, stream: Any = None) -> dict[str, float]:
    """Round r of one node: its policy's round, then (when `evaluate`) its test metrics."""
    node.round = r
    node.drop_stale(r - 1)
    if stream is not None:  # continual learning: this round's task data, before the policy runs
        stream.switch(node, r)
    metrics = dict(node.policy.run_round(node, r) or {})
    if evaluate:
        metrics.update(node.policy.evaluate(node, r))
        if stream is not None:
            metrics.update(stream.evaluate(node, node.policy.eval_model(node)))
    if node.dp is not None:
        metrics["dp_epsilon"] = node.dp.epsilon()
    missing = node.missing_peers(r)
    if missing:
        metrics["missing_peers"] = float(len(missing))
    return {k: float(v) for k, v in metrics.items()}
