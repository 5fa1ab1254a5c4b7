"""WorkerHost: one process's share of a federation — several nodes, one transport, one ledger.

The same class runs inside a Ray actor and directly in the driver process (`runtime/backends.py`).
Nodes of a host run their rounds concurrently: in threads (one per node), or as tasks on one hub
thread (`runtime.scheduler: tasks`, fedsim/tasks.py), where a waiting node holds no thread at all.
A semaphore lets one of them compute at a time, so torch's threads are not oversubscribed while
the others wait on the network.
"""
from __future__ import annotations

import logging
import os
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from fedsim import tasks, training
from fedsim.assembly import build_node, run_step
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
                 import_paths: bool = True, single_host: bool = True) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.cfg, self.run_id = cfg, run_id
        if import_paths:  # else the user's plugins came with the Ray job (py_modules)
            activate(cfg)
        rt = cfg["runtime"]
        self.graph = load_topology(cfg["topology"], base_dir=cfg["_base_dir"])
        order = list(self.graph.nodes)
        data = load_federation(cfg["data"], order, cfg["seed"], only=node_names, base_dir=cfg["_base_dir"])
        self.tasks = use_tasks(rt, len(node_names))
        self.pool = tasks.Scheduler() if self.tasks else ThreadPoolExecutor(max_workers=max(1, len(node_names)),
                                                                            thread_name_prefix="node")
        self.transport = _make_transport(rt, single_host, self.pool.blocking if self.tasks else None)
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
        if self.tasks:
            for node in self.nodes.values():
                node.scheduler = self.pool
        self.streams = continual.attach(cfg, self.nodes)  # {} unless data.continual is set

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
        return {"metrics": rows, "ledger": self.drain()}

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

    def test_sets(self, names: list[str] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Test inputs and labels of this host's nodes (those in `names`, default all), as numpy."""
        return {name: (n.data.x_test.contiguous().cpu().numpy(), n.data.y_test.cpu().numpy())
                for name, n in self.nodes.items() if names is None or name in names}

    def federation_confusions(self, tests: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
        """Each of this host's models (its policy's eval_model) on the given test sets, pooled:
        {model node: confusion matrix}. Test sets travel to the models, not models to the test sets."""
        if not tests:
            return {}
        x = torch.from_numpy(np.concatenate([t[0] for t in tests.values()])).to(self.device)
        y = torch.from_numpy(np.concatenate([t[1] for t in tests.values()]))
        if x.dim() == 4 and self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)  # the nodes' models are (see Node)
        return {name: training.confusion(n.policy.eval_model(n), x, y, n.data.num_classes)
                for name, n in self.nodes.items()}

    def peak_rss_mb(self) -> float:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def data_summary(self) -> dict[str, dict]:
        return {name: {"train": n.data.n_train, "test": n.data.n_test, "classes": n.data.num_classes}
                for name, n in self.nodes.items()}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.transport.close()


TASKS_ABOVE = 64  # runtime.scheduler auto: more nodes than this on one host run as tasks


def use_tasks(rt: dict, nodes: int) -> bool:
    """Whether a host of `nodes` nodes runs them as tasks (runtime.scheduler)."""
    mode = rt.get("scheduler", "auto")
    return mode == "tasks" or (mode == "auto" and nodes > TASKS_ABOVE)


def _make_transport(rt: dict, single_host: bool, blocking=None):
    """inproc on one worker: in-process only; inproc on several: in-process between a worker's own
    nodes, gRPC between workers; grpc: real sockets for every message."""
    max_bytes = int(rt["max_message_mb"] * 2**20)
    if rt["transport"] == "inproc" and single_host:
        from fedsim.wire.inproc_transport import InprocTransport
        return InprocTransport(max_payload_bytes=max_bytes)
    from fedsim.runtime.colocated import HostTransport
    from fedsim.wire.grpc_transport import GrpcTransport
    inner = GrpcTransport(rt["host"], 0, max_payload_bytes=max_bytes)
    if rt["transport"] == "grpc" and blocking is None:
        return inner
    return HostTransport(inner, colocated=rt["transport"] == "inproc", max_payload_bytes=max_bytes,
                         blocking=blocking or (lambda fn, *a, **kw: fn(*a, **kw)))


def default_threads(cpus_per_worker: float) -> int:
    return max(1, int(cpus_per_worker)) if cpus_per_worker else max(1, os.cpu_count() or 1)
