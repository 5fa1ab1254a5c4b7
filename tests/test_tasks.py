"""Nodes as tasks (runtime.scheduler: tasks): same results as thread-per-node, no thread per waiting node."""
from __future__ import annotations

import csv
import os
import threading
import time

import pytest

from fedsim import tasks
from fedsim.payload import Kind, Payload
from fedsim.policies.base import Policy
from fedsim.runtime.driver import run_experiment
from fedsim.runtime.host import WorkerHost


def _metrics(run_dir) -> list[tuple]:
    with open(run_dir / "metrics.csv") as f:
        return sorted((r["round"], r["node"], r["metric"], r["value"]) for r in csv.DictReader(f))


def _comm(run_dir) -> list[tuple]:
    with open(run_dir / "comm.csv") as f:
        return sorted((r["round"], r["src"], r["dst"], r["payload_bytes"], r["wire_bytes"], r["frames"])
                      for r in csv.DictReader(f))


def test_scale_mode_gives_the_metrics_and_bytes_of_thread_per_node(ray_session, small_config, tmp_path):
    """16 nodes: threads + gRPC for every message in one process vs the 10,000-node mode (2 Ray
    workers, nodes as tasks, in-process delivery inside a worker and gRPC between them)."""
    base = dict(rounds=3, topology={"generator": "watts_strogatz", "n": 16, "k": 4, "p": 0.3, "seed": 2},
                data={"dataset": "synthmed", "samples_per_node": 40, "num_classes": 2},
                model={"name": "mlp", "hidden": [16]}, eval={"every": 1, "federation_every": 2},
                name="same", output__stamp="s")  # same run id (it is in every header), other folders
    threads = run_experiment(small_config(runtime__scheduler="threads", runtime__transport="grpc",
                                          output__dir=str(tmp_path / "a"), **base))
    scale = run_experiment(small_config(runtime__kind="ray", runtime__workers=2, runtime__scheduler="tasks",
                                        runtime__transport="inproc", output__dir=str(tmp_path / "b"), **base))
    assert _metrics(threads.run_dir) == _metrics(scale.run_dir)
    assert _comm(threads.run_dir) == _comm(scale.run_dir)
    assert scale.summary["ledger_balanced"]
    assert any(m[2] == "fed_acc" for m in _metrics(scale.run_dir))


class WaitsForGo(Policy):
    """Every node waits (up to two minutes) for a 'go' message from its first neighbour."""

    name = "waits_for_go"

    def run_round(self, node, r):
        got = node.recv("go", expect=node.neighbors[:1], timeout=120)
        return {"heard": float(len(got))}


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_two_thousand_waiting_nodes_hold_fewer_than_100_threads(small_config):
    cfg = small_config(topology={"generator": "ring", "n": 2000},
                       data={"dataset": "synthmed", "samples_per_node": 4, "num_classes": 2, "image_size": 16},
                       model={"name": "mlp", "hidden": [4]}, policy={"name": f"{__name__}:WaitsForGo"},
                       runtime__scheduler="tasks", runtime__transport="inproc")
    names = [f"node{i}" for i in range(2000)]
    host = WorkerHost(cfg, names, "t/run")
    try:
        host.connect({n: host.address() for n in names})
        result_box: list = []
        waiting = threading.Thread(target=lambda: result_box.append(host.run_round(0, False)), daemon=True)
        waiting.start()
        deadline = time.monotonic() + 120
        while host.pool.parked < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert host.pool.parked == 2000, "not every node reached its wait"
        assert _threads() < 100
        go = Payload(Kind.CONTROL, {}, {})
        for name, node in host.nodes.items():  # real messages wake them
            host.nodes[node.neighbors[0]].send(name, go, "go")
        waiting.join(60)
        assert not waiting.is_alive()
        heard = [v for (_, _, k, v) in result_box[0]["metrics"] if k == "heard"]
        assert heard == [1.0] * 2000
    finally:
        host.close()


def test_condition_wakes_a_parked_task_from_another_thread_and_times_out():
    sched = tasks.Scheduler()
    cv, box = tasks.Condition(), []

    def wait_for_item(timeout):
        t0 = time.monotonic()
        with cv:
            while not box and time.monotonic() - t0 < timeout:
                cv.wait(timeout - (time.monotonic() - t0))
            return list(box), tasks.current_task() is not None

    try:
        timed_out = sched.submit(wait_for_item, 0.2).result(5)
        assert timed_out == ([], True)
        fut = sched.submit(wait_for_item, 30)
        time.sleep(0.1)
        with cv:
            box.append("x")
            cv.notify_all()
        assert fut.result(5) == (["x"], True)
        assert sched.blocking(lambda: 7) == 7  # outside a task: a plain call
        assert sched.submit(lambda: sched.blocking(threading.get_ident)).result(5) != sched._thread.ident
    finally:
        sched.shutdown()


def test_a_failing_task_reports_its_node(small_config):
    from fedsim.runtime.host import NodeFailure

    cfg = small_config(policy={"name": f"{__name__}:Raises"}, runtime__scheduler="tasks")
    with pytest.raises(NodeFailure, match="node1 failed: RuntimeError: boom"):
        run_experiment(cfg)


class Raises(Policy):
    name = "raises"

    def run_round(self, node, r):
        if node.name == "node1":
            raise RuntimeError("boom")
        node.recv("x", timeout=0.5)
        return {}
