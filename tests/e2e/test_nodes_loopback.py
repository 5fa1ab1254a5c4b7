"""Four real `fedsim node` processes on loopback ports, mutual TLS, gossip to completion; then a node dies."""
from __future__ import annotations

import signal

import pytest

from _cluster import Cluster, federation, final_metrics, free_ports, run_complete, run_with_a_killed_node

NAMES = ["h0", "h1", "h2", "h3"]  # a ring: h0-h1-h2-h3-h0


def simulated(fed: dict, tmp_path) -> dict:
    """The same experiment as a `fedsim run` simulation."""
    from fedsim.config import load_config
    from fedsim.runtime.driver import run_experiment

    data = {k: v for k, v in fed.items() if k not in ("nodes", "deploy")}
    data["runtime"] = {**data["runtime"], "kind": "local"}
    data["output"] = {"dir": str(tmp_path / "sim"), "progress": False}
    return run_experiment(load_config(data=data)).summary


@pytest.mark.slow
def test_four_nodes_mtls_complete_agree_and_match_simulation(tmp_path):
    fed = federation(NAMES, [f"127.0.0.1:{p}" for p in free_ports(4)], rounds=3)
    cluster = Cluster(tmp_path, fed)
    got = run_complete(cluster, rounds=3)
    # node and policy code are shared with the simulation: the deployed nodes learn exactly the same
    sim = simulated(fed, tmp_path)
    for name in NAMES:
        deployed = final_metrics(cluster, name)
        for metric in ("test_acc", "test_bacc", "train_loss"):
            assert deployed[metric] == pytest.approx(sim["final"][name][metric], abs=1e-6), (name, metric)
    print(f"\nloopback: {got}")


@pytest.mark.slow
def test_stopped_node_is_reported_missing_and_others_finish(tmp_path):
    """SIGTERM here (graceful stop: round finished, logs flushed); the netns test kills with SIGKILL."""
    fed = federation(NAMES, [f"127.0.0.1:{p}" for p in free_ports(4)], rounds=12, recv_timeout=8.0)
    stopped_at = run_with_a_killed_node(Cluster(tmp_path, fed), rounds=12, victim="h2", sig=signal.SIGTERM)
    print(f"\nloopback: h2 stopped by SIGTERM after {stopped_at} of 12 rounds")
