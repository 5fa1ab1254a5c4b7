"""FedProx and FedBN, the hub baselines FedER's paper compares with."""
from __future__ import annotations

import pytest
import torch

from fedsim.errors import ConfigError
from fedsim.policies.fedbn import local_keys
from fedsim.policies.fedprox import FedProxPolicy
from fedsim.runtime.host import WorkerHost

NAMES = [f"node{i}" for i in range(4)]


def _host(small_config, policy, **kw):
    cfg = small_config(topology={"generator": "star", "n": 4}, policy=policy, runtime__transport="inproc", **kw)
    host = WorkerHost(cfg, NAMES, "t")
    host.connect({n: host.address() for n in NAMES})
    return host


def test_fedbn_keeps_every_normalisation_layer_local_and_averages_the_rest(small_config):
    host = _host(small_config, {"name": "fedbn"}, model={"name": "cnn", "norm": "batch"})
    try:
        host.run_round(0, evaluate=False)
        states = [host.nodes[n].model.state_dict() for n in NAMES]
        local = local_keys(host.nodes["node0"].model)
        assert {k.rsplit(".", 1)[0] for k in local} == {"features.1", "features.5"}  # the two BatchNorm layers
        shared = [k for k in states[0] if k not in local]
        assert all(torch.equal(s[k], states[0][k]) for s in states for k in shared)  # one global model
        assert any(not torch.equal(states[1][k], states[2][k]) for k in local if k.endswith("running_mean"))
        ups = [r for r in host.ledger.rows() if r.side == "sent" and r.tag == "update"]
        shared_bytes = sum(v.numel() * v.element_size() for k, v in states[0].items() if k not in local)
        assert len(ups) == 3 and all(r.payload_bytes == shared_bytes for r in ups)  # norm layers never leave
    finally:
        host.close()


def test_fedprox_pulls_local_training_towards_the_global_model(small_config):
    def moved(mu):
        host = _host(small_config, {"name": "fedprox", "mu": mu}, train__lr=0.2, train__epochs=3)
        try:
            node = host.nodes["node1"]
            start = [p.detach().clone() for p in node.model.parameters()]
            node.policy.anchor = start  # as run_round sets it: the global model the round starts from
            node.train()
            return sum(float((p - s).norm() ** 2) for p, s in zip(node.model.parameters(), start))
        finally:
            host.close()
    assert moved(5.0) < 0.5 * moved(0.0)
    with pytest.raises(ConfigError, match="policy.mu"):
        FedProxPolicy({"mu": -1})
