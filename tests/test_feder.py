"""FedER end to end: buffers over real gRPC, replay mix, ring routing, DP GAN, option errors."""
from __future__ import annotations

import networkx as nx
import pytest
import torch

from fedsim import training
from fedsim.errors import ConfigError, TopologyError
from fedsim.models import build_model
from fedsim.policies.feder import FedERPolicy
from fedsim.policies.feder_buffer import ReplaySampler, draw_ring
from fedsim.runtime.driver import preflight, run_experiment
from fedsim.runtime.host import WorkerHost

TINY = {"buffer_size": 24, "gan_epochs": 1, "gan_width": 4, "gan_latent": 8, "walk_steps": 4, "walk_iters": 2,
        "k": 2}
TRIANGLE = {"generator": "complete", "n": 3}


def _cfg(small_config, **policy):
    return small_config(topology=TRIANGLE, rounds=2, policy={"name": "feder", **TINY, **policy},
                        data__samples_per_node=60, data__num_classes=3, data__label_alpha=1.0,
                        model={"name": "cnn", "channels": [4]}, runtime__transport="grpc")


@pytest.mark.parametrize("share", ["generator", "samples"])
def test_buffer_round_trips_over_grpc_and_regenerates_identically(small_config, share):
    cfg = _cfg(small_config, share=share)
    names = [f"node{i}" for i in range(3)]
    host = WorkerHost(cfg, names, "t")
    try:
        host.connect({n: host.address() for n in names})
        host.run_round(0, evaluate=False)
        ring = draw_ring(host.graph, cfg["seed"], 0)
        kinds = {row.kind for row in host.ledger.rows() if row.tag == "buffer"}
        assert kinds == {"GENERATOR" if share == "generator" else "SAMPLES"}
        for src, dst in ring.items():
            sent_x, sent_y = host.nodes[src].policy.own_samples
            got_x, got_y = host.nodes[dst].policy.replay[src]
            assert torch.equal(got_y, sent_y)
            assert torch.equal(got_x, sent_x)  # bit-identical, even when rebuilt from weights + latents
            # the receiver holds the sender's classifier now (replaced, not averaged)
        host.run_round(1, evaluate=False)  # round 1 trains with replay
    finally:
        host.close()


def test_generator_payload_is_smaller_than_samples_and_run_is_reproducible(small_config):
    a = run_experiment(_cfg(small_config, share="generator", buffer_size=200, walk_iters=0), progress=False)
    b = run_experiment(_cfg(small_config, share="generator", buffer_size=200, walk_iters=0), progress=False)
    c = run_experiment(_cfg(small_config, share="samples", buffer_size=200, walk_iters=0), progress=False)
    assert a.summary["ledger_balanced"] and c.summary["ledger_balanced"]
    assert a.summary["final"] == b.summary["final"]
    kinds_a, kinds_c = a.summary["bytes"]["per_kind"], c.summary["bytes"]["per_kind"]
    assert set(kinds_a) == {"MODEL", "GENERATOR"} and set(kinds_c) == {"MODEL", "SAMPLES"}
    assert abs(kinds_a["MODEL"] - kinds_c["MODEL"]) < 0.01 * kinds_a["MODEL"]  # headers carry the run id
    assert kinds_a["GENERATOR"] < kinds_c["SAMPLES"]  # 200 images of 32x32 outweigh a tiny generator
    for m in ("shared_mia_acc", "raw_mia_acc", "shared_nn_dist", "buffer_size"):
        assert m in a.summary["mean_final"]


@pytest.mark.parametrize("ratio,batch,expect", [(1.0, 8, 8), (0.5, 8, 4), (0.25, 6, 2)])
def test_replay_batches_have_the_configured_mix(ratio, batch, expect):
    # real samples are all 0, buffer samples all 1: each batch the model sees shows the mix
    x_real, y_real = torch.zeros(20, 1, 4, 4), torch.zeros(20, dtype=torch.long)
    x_buf, y_buf = torch.ones(50, 1, 4, 4), torch.ones(50, dtype=torch.long)
    model = build_model({"name": "mlp", "hidden": []}, (1, 4, 4), 2)
    seen = []
    model.register_forward_pre_hook(lambda m, inp: seen.append((int((inp[0].flatten(1)[:, 0] == 0).sum()),
                                                                int((inp[0].flatten(1)[:, 0] == 1).sum()))))
    sampler = ReplaySampler(x_buf, y_buf, ratio, torch.Generator().manual_seed(0))
    training.train_epochs(model, torch.optim.SGD(model.parameters(), lr=0.1), x_real, y_real, epochs=1,
                          batch_size=batch, generator=torch.Generator().manual_seed(0), extra_batches=sampler)
    full = [s for s in seen if s[0] == batch]
    assert full and all(s[1] == expect for s in full)
    assert all(s[1] == round(ratio * s[0]) for s in seen)  # the last, short batch too


def test_round_zero_trains_on_real_data_only(small_config):
    cfg = _cfg(small_config)
    names = [f"node{i}" for i in range(3)]
    host = WorkerHost(cfg, names, "t")
    try:
        host.connect({n: host.address() for n in names})
        pol = host.nodes["node0"].policy
        assert pol._sampler() is None  # nothing to replay before the first exchange
        host.run_round(0, evaluate=False)
        assert pol._sampler() is not None and len(pol.replay) == 1
    finally:
        host.close()


@pytest.mark.parametrize("travels", [False, True])
def test_adopted_classifier_gets_a_fresh_optimizer_unless_it_travels(small_config, travels):
    """The authors build a new Adam every round: an adopted model must not inherit the old model's moments."""
    names = [f"node{i}" for i in range(3)]
    cfg = _cfg(small_config, optimizer_travels=travels, replay_ratio=0.0)
    cfg["train"].update(optimizer="adam", lr=1e-3)
    cfg["runtime"]["transport"] = "inproc"
    host = WorkerHost(cfg, names, "t")
    try:
        host.connect({n: host.address() for n in names})
        ring = draw_ring(host.graph, cfg["seed"], 0)
        # each node's optimizer state at the end of its round-0 training, just before it is sent
        trained = {}
        for name, node in host.nodes.items():
            node.optimizer.register_step_post_hook(
                lambda opt, args, kw, name=name: trained.__setitem__(
                    name, {i: {k: v.clone() for k, v in st.items()} for i, st in opt.state_dict()["state"].items()}))
        host.run_round(0, evaluate=False)
        for src, dst in ring.items():
            state = host.nodes[dst].optimizer.state_dict()["state"]
            if not travels:
                assert state == {}  # reset on adoption: no moments, step count 0
            else:
                sent = trained[src]
                assert state.keys() == sent.keys()
                assert all(torch.equal(state[i][k], sent[i][k]) for i in sent for k in sent[i])
        host.run_round(1, evaluate=False)  # the adopted model trains with its (fresh or carried) optimizer
    finally:
        host.close()


def test_ring_uses_edges_is_shared_and_redrawn():
    g = nx.random_regular_graph(4, 10, seed=1)
    g = nx.relabel_nodes(g, {i: f"h{i}" for i in g})
    rings = [draw_ring(g, 7, r) for r in range(6)]
    for ring in rings:
        assert sorted(ring) == sorted(g) and sorted(ring.values()) == sorted(g)
        assert all(g.has_edge(a, b) for a, b in ring.items())
        node, seen = "h0", set()
        while node not in seen:  # one cycle through every node
            seen.add(node)
            node = ring[node]
        assert len(seen) == 10
    assert rings[0] == draw_ring(g, 7, 0)
    assert len({tuple(sorted(r.items())) for r in rings}) > 1


def test_ring_falls_back_to_cycle_cover_and_refuses_a_star():
    two_triangles = nx.Graph([("a", "b"), ("b", "c"), ("c", "a"), ("d", "e"), ("e", "f"), ("f", "d"), ("c", "d")])
    ring = draw_ring(two_triangles, 0, 0)  # no Hamiltonian cycle: two 3-cycles
    assert all(two_triangles.has_edge(a, b) for a, b in ring.items())
    assert sorted(ring.values()) == sorted(two_triangles)
    with pytest.raises(TopologyError, match="no ring or cycle cover"):
        FedERPolicy.check_topology(nx.star_graph(3), {})


def test_dp_discriminator_reports_epsilon(small_config):
    cfg = small_config(topology=TRIANGLE, rounds=1, data={"dataset": "breast_cancer", "test_fraction": 0.3},
                       model={"name": "mlp", "hidden": [16]},
                       policy={"name": "feder", **TINY, "gan_epochs": 2, "gan_dp": {"epsilon": 3.0}})
    res = run_experiment(cfg, progress=False)
    eps = [res.summary["final"][n]["gan_dp_epsilon"] for n in res.summary["final"]]
    assert all(0 < e <= 3.0 * 1.01 for e in eps)


@pytest.mark.parametrize("options,key", [
    ({"share": "images"}, "policy.share"),
    ({"privacy": "blur"}, "policy.privacy"),
    ({"replay_from": "everyone"}, "policy.replay_from"),
    ({"replay_ratio": -1}, "policy.replay_ratio"),
    ({"k": 0}, "policy.k"),
    ({"buffer_size": 2.5}, "policy.buffer_size"),
    ({"gan_dp": {"eps": 1}}, "policy.gan_dp"),
    ({"gan_dp": {"delta": 2}}, "policy.gan_dp.delta"),
    ({"gan_lr": 0}, "policy.gan_lr"),
    ({"gan_class_weight": -0.5}, "policy.gan_class_weight"),
    ({"buffer": 3}, "policy.buffer"),
])
def test_bad_options_name_the_key(options, key):
    with pytest.raises(ConfigError) as err:
        FedERPolicy(options)
    assert err.value.key == key


def test_star_topology_fails_before_anything_starts(small_config):
    cfg = small_config(topology={"generator": "star", "n": 4}, policy={"name": "feder"})
    with pytest.raises(TopologyError):
        preflight(cfg)
