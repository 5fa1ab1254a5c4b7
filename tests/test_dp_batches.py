"""privacy.dp trains what each policy asked for: the tensors, epochs, models and replay batches.

Each test runs real nodes (WorkerHost, inproc transport, Opacus DP-SGD) and reads the node's DP
accountant: which sampling rates it charged (q = batch / records trained on), how many steps, how
many replay samples rode along. A near-infinite epsilon makes the noise negligible, so the
behaviour checks (what a model learned) are deterministic.
"""
from __future__ import annotations

import math

import pytest
import torch

from fedsim.errors import ConfigError
from fedsim.runtime.driver import preflight
from fedsim.runtime.host import WorkerHost

LOOSE = {"epsilon": 1e6, "delta": 1e-5, "max_grad_norm": 10.0}
N4 = [f"node{i}" for i in range(4)]


def _host(cfg, names):
    host = WorkerHost(cfg, names, "t")
    host.connect({n: host.address() for n in names})
    return host


def _rounds(host, k):
    for r in range(k):
        host.run_round(r, evaluate=False)


def _cfg(small_config, **kw):
    kw.setdefault("privacy__dp", LOOSE)
    kw.setdefault("runtime__transport", "inproc")
    return small_config(**kw)


def _per_epoch(n_records, batch):
    return max(1, round(n_records / batch))


@pytest.mark.parametrize("policy", ["local", "gossip", "fedavg", "model_exchange"])
def test_own_model_on_own_records(small_config, policy):
    topo = {"generator": "complete", "n": 4} if policy == "fedavg" else {"generator": "ring", "n": 4}
    cfg = _cfg(small_config, policy={"name": policy}, topology=topo, train__epochs=2)
    host = _host(cfg, N4)
    try:
        _rounds(host, 2)
        for node in host.nodes.values():
            q = 16 / node.data.n_train
            assert node.dp.steps == {q: 2 * 2 * _per_epoch(node.data.n_train, 16)}
            assert node.dp.extra_samples == 0 and node.dp.epsilon() > 0
    finally:
        host.close()


def test_centralized_hub_trains_on_the_pool_under_dp(small_config):
    cfg = _cfg(small_config, policy={"name": "centralized"}, topology={"generator": "star", "n": 4})
    host = _host(cfg, N4)
    try:
        _rounds(host, 2)
        hub = host.nodes["node0"]
        pool = sum(n.data.n_train for n in host.nodes.values())
        assert hub.policy.hub == "node0" and len(hub.policy.pool[1]) == pool
        assert hub.dp.steps == {16 / pool: 2 * _per_epoch(pool, 16)}  # sampled from the pool, not its own 64
        assert all(not host.nodes[n].dp.steps for n in N4[1:])      # the others train nothing
    finally:
        host.close()


def test_feder_replay_batches_are_mixed_into_dp_steps(small_config):
    tiny = {"buffer_size": 24, "gan_epochs": 1, "gan_width": 4, "gan_latent": 8, "privacy": "none", "dup_ratio": 0}
    names = [f"node{i}" for i in range(3)]
    cfg = _cfg(small_config, topology={"generator": "complete", "n": 3}, policy={"name": "feder", **tiny},
               data__samples_per_node=60, model={"name": "cnn", "channels": [4]})
    host = _host(cfg, names)
    try:
        host.run_round(0, evaluate=False)
        assert all(n.dp.extra_samples == 0 for n in host.nodes.values())  # round 0: real data only
        host.run_round(1, evaluate=False)
        for node in host.nodes.values():
            steps = _per_epoch(node.data.n_train, 16)
            assert node.dp.steps == {16 / node.data.n_train: 2 * steps}
            assert node.dp.extra_samples == steps * 16  # replay_ratio 1: B buffer samples per DP step
    finally:
        host.close()


def test_fedrewind_rewind_epochs_train_under_the_serving_nodes_dp(small_config):
    cfg = _cfg(small_config, topology={"generator": "complete", "n": 4}, train__epochs=2,
               policy={"name": "fedrewind", "rewind_ratio": 0.5})
    host = _host(cfg, N4)
    try:
        _rounds(host, 2)
        for node in host.nodes.values():
            per_epoch = _per_epoch(node.data.n_train, 16)
            # round 0: 2 local epochs; round 1: 1 local + 1 rewind epoch served for the model that left it
            assert node.dp.steps == {16 / node.data.n_train: (2 + 1 + 1) * per_epoch}
            assert node.policy.dp_epochs_per_round(2) == 2.0
    finally:
        host.close()


@pytest.mark.parametrize("policy", ["coop_local", "zerodfl", "coop_fedavg", "fedtpg"])
def test_prompt_policies_are_refused_before_the_run(small_config, policy):
    cfg = _cfg(small_config, policy={"name": policy}, topology={"generator": "complete", "n": 4},
               model={"name": "tiny_clip"})
    with pytest.raises(ConfigError, match=r"privacy\.dp.*per-sample gradients"):
        preflight(cfg)


def test_node_train_honours_tensors_model_and_epochs_under_dp(small_config):
    cfg = _cfg(small_config, policy={"name": "local"}, train__lr=0.5)
    host = _host(cfg, ["node0", "node1", "node2", "node3"])
    try:
        node = host.nodes["node0"]
        x = node.data.x_train[:40].clone()
        y = torch.ones(40, dtype=torch.long)  # every given sample labelled 1, whatever the node's own labels
        other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].numel(), 2))
        before = {k: v.clone() for k, v in node.model.state_dict().items()}
        node.train(model=other, optimizer=torch.optim.SGD(other.parameters(), lr=0.5), x=x, y=y, epochs=5)
        assert all(torch.equal(v, node.model.state_dict()[k]) for k, v in before.items())  # node.model untouched
        assert (other(x).argmax(1) == 1).all()  # it learned the tensors it was given
        assert node.dp.steps == {16 / 40: 5 * _per_epoch(40, 16)}
        calls = []

        def extra(n):
            calls.append(n)
            return x[:3], torch.ones(3, dtype=torch.long)
        node.train(epochs=1, extra_batches=extra)
        per_epoch = _per_epoch(node.data.n_train, 16)
        assert calls == [16] * per_epoch and node.dp.extra_samples == 3 * per_epoch
        assert not any(hasattr(p, "grad_sample") and p.grad_sample is not None for p in node.model.parameters())
        assert not node.model._forward_hooks and not math.isnan(node.dp.epsilon())
    finally:
        host.close()
