"""WorkerHost: one process's share of a federation — several nodes, one transport, one ledger.

The same class runs inside a Ray actor (`runtime/ray_backend.py`) and directly in the driver
process (`runtime/local_backend.py`). Nodes of a host run their rounds concurrently in threads;
a semaphore lets one of them compute at a time, so torch's threads are not oversubscribed while
the others wait on the network.
"""
from __future__ import annotations

import copy
import logging
import os
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from fedsim import training
from fedsim.assembly import build_node, run_step, seeded_model
from fedsim.data import continual, load_federation
from fedsim.node import Node
from fedsim.registry import activate
from fedsim.topology import load_topology
from fedsim.wire.ledger import Ledger

log = logging.getLogger("fedsim.host")


class NodeFailure(RuntimeError):
    """A node's policy raised; carries the node name and the remote traceback text."""


class WorkerHost:
    def __init__(self, cfg: dict, node_names: list[str], run_id: str, threads: int | None = None,
                 import_paths: bool = True) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.cfg, self.run_id = cfg, run_id
        if import_paths:  # else the user's plugins came with the Ray job (py_modules)
            activate(cfg)
        rt = cfg["runtime"]
        self.graph = load_topology(cfg["topology"], base_dir=cfg["_base_dir"])
        order = list(self.graph.nodes)
        data = load_federation(cfg["data"], order, cfg["seed"], only=node_names, base_dir=cfg["_base_dir"])
        self.transport = _make_transport(rt)
        self.directory: dict[str, str] = {}
        self.ledger = Ledger()
        self._shipped = 0
        compute = threading.Semaphore(1)
        use_cuda = rt["gpus_per_worker"] > 0 and torch.cuda.is_available()
        self.device = torch.device("cuda" if use_cuda else "cpu")
        self.nodes: dict[str, Node] = {
            name: build_node(cfg, name, graph=self.graph, order=order, data=data[name], transport=self.transport,
                             directory=self.directory, ledger=self.ledger, run_id=run_id, device=self.device,
                             compute_lock=compute)
            for name in node_names}
        self.streams = continual.attach(cfg, self.nodes)  # {} unless data.continual is set
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(self.nodes)), thread_name_prefix="node")

    # -------------------------------------------------------------- wiring
    def address(self) -> str:
        return self.transport.address

    def connect(self, directory: dict[str, str]) -> None:
        self.directory.update(directory)
        self._each(lambda node: node.policy.setup(node))

    # -------------------------------------------------------------- rounds
    def run_round(self, r: int, evaluate: bool) -> dict:
        def one(node: Node) -> list[tuple]:
            metrics = run_step(node, r, evaluate=evaluate, stream=self.streams.get(node.name))
            return [(r, node.name, k, v) for k, v in metrics.items()]

        rows = [row for part in self._each(one) for row in part]
        ledger = self.drain()
        return {"metrics": rows, "ledger": ledger, "clock": {n: node.clock.take() for n, node in self.nodes.items()}}

    def drain(self) -> list:
        """Ledger rows recorded since the last call, after in-flight replies have been recorded."""
        for node in self.nodes.values():
            node.join_serving(timeout=self.cfg["runtime"]["send_timeout_s"])
        return self._new_ledger_rows()

    def _new_ledger_rows(self) -> list:
        rows = self.ledger.rows()
        new, self._shipped = rows[self._shipped:], len(rows)
        return new

    def _each(self, fn) -> list:
        futures = {name: self.pool.submit(fn, node) for name, node in self.nodes.items()}
        out = []
        for name, fut in futures.items():
            try:
                out.append(fut.result())
            except Exception as exc:
                raise NodeFailure(f"node {name} failed: {type(exc).__name__}: {exc}\n"
                                  + "".join(traceback.format_exception(exc))) from None
        return out

    # -------------------------------------------------------------- federation accuracy
    def model_states(self) -> dict[str, dict[str, np.ndarray]]:
        """The model each node would be scored with, as numpy (cheap to ship between processes)."""
        return {name: {k: v.detach().cpu().numpy() for k, v in node.policy.eval_model(node).state_dict().items()}
                for name, node in self.nodes.items()}

    def federation_confusions(self, states: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Sum of confusion matrices of each model over this host's test sets: {model_node: cm}."""
        any_node = next(iter(self.nodes.values()))
        if self.cfg["privacy"]["dp"] is not None:  # Opacus hooks do not survive deepcopy: rebuild plainly
            from fedsim.privacy.dp import make_dp_compatible
            scratch = make_dp_compatible(seeded_model(self.cfg, any_node.data, 0), True).to(self.device)
        else:  # the policy may train a model other than cfg.model (e.g. a prompt learner)
            scratch = copy.deepcopy(any_node.policy.eval_model(any_node))
        out = {}
        for owner, state in states.items():
            scratch.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
            out[owner] = sum(training.confusion(scratch, n.data.x_test, n.data.y_test, n.data.num_classes)
                             for n in self.nodes.values())
        return out

    def peak_rss_mb(self) -> float:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def data_summary(self) -> dict[str, dict]:
        return {name: {"train": n.data.n_train, "test": n.data.n_test, "classes": n.data.num_classes,
                       "train_labels": torch.bincount(n.data.y_train, minlength=n.data.num_classes).tolist(),
                       "test_labels": torch.bincount(n.data.y_test, minlength=n.data.num_classes).tolist()}
                for name, n in self.nodes.items()}

    def progress(self) -> dict[str, str]:
        """What each node is busy with before round 0 (e.g. GAN pre-training epochs); polled by the driver."""
        return {name: n.status for name, n in self.nodes.items() if n.status}

    def close(self) -> None:
        for node in self.nodes.values():  # a node of an interrupted round may be waiting in recv
            node.abort()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.transport.close()


def _make_transport(rt: dict):
    max_bytes = int(rt["max_message_mb"] * 2**20)
    if rt["transport"] == "inproc":
        from fedsim.wire.inproc_transport import InprocTransport
        return InprocTransport()
    from fedsim.wire.grpc_transport import GrpcTransport
    return GrpcTransport(rt["host"], 0, max_payload_bytes=max_bytes)


def default_threads(cpus_per_worker: float) -> int:
    return max(1, int(cpus_per_worker)) if cpus_per_worker else max(1, os.cpu_count() or 1)
