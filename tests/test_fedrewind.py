"""FedRewind and model_exchange end to end on a real (tiny) federation."""
from __future__ import annotations

import csv
from collections import defaultdict

import pytest

from fedsim.errors import ConfigError, TopologyError
from fedsim.policies.fedrewind import FedRewindPolicy, rewind_points
from fedsim.policies.model_exchange import ModelExchangePolicy
from fedsim.runtime.driver import preflight, run_experiment

COMPLETE4 = {"generator": "complete", "n": 4}


def _run(small_config, **kw):
    kw.setdefault("topology", COMPLETE4)
    kw.setdefault("rounds", 3)
    kw.setdefault("train__epochs", 2)
    kw.setdefault("data__num_classes", 3)
    kw.setdefault("data__label_alpha", 0.3)
    res = run_experiment(small_config(**kw), progress=False)
    assert res.summary["ledger_balanced"]
    return res


def _rows(run_dir, name):
    with open(run_dir / name) as f:
        return list(csv.DictReader(f))


def _metrics(run_dir):
    return {(r["round"], r["node"], r["metric"]): r["value"] for r in _rows(run_dir, "metrics.csv")}


def test_rewind_points():
    assert rewind_points("atend_pre", 10, 1, 1.0, 2) == [8]       # 8 local, 1 rewind, 1 local
    assert rewind_points("atend_pre", 10, 2, 0.5, 2) == [7]
    assert rewind_points("atend_pre", 2, 1, 1.0, 2) == [0]
    assert rewind_points("halfway", 10, 1, 1.0, 2) == [5]
    assert rewind_points("atend", 10, 1, 1.0, 2) == [9]           # after the E - R local epochs
    assert rewind_points("interval", 10, 1, 1.0, 3) == [5]        # the authors' interval: one trip at E/R/2
    assert rewind_points("interval", 10, 2, 1.0, 3) == [2]
    assert rewind_points("periodic", 10, 1, 1.0, 3) == [3, 6, 9]  # fedsim's variant
    assert rewind_points("atend_pre", 10, 0, 1.0, 2) == []


@pytest.mark.parametrize("strategy, ratio, local, rewind", [
    ("atend_pre", 0.25, 3, 1), ("atend", 0.5, 2, 2), ("halfway", 0.25, 3, 1), ("interval", 0.25, 3, 1),
])
def test_round_trains_e_epochs_in_all_as_the_authors(small_config, strategy, ratio, local, rewind):
    """E - R local epochs at the holder plus R at the previous node: E optimizer passes, not E + R."""
    res = _run(small_config, rounds=2, train__epochs=4, runtime__transport="inproc",
               policy={"name": "fedrewind", "rewind_ratio": ratio, "rewind_strategy": strategy})
    m = _metrics(res.run_dir)
    for node in ("node0", "node1", "node2", "node3"):
        assert (float(m[("0", node, "local_epochs")]), float(m[("0", node, "rewind_epochs")])) == (4, 0)  # round 0
        assert (float(m[("1", node, "local_epochs")]), float(m[("1", node, "rewind_epochs")])) == (local, rewind)


def test_rewind_is_a_real_round_trip_to_the_previous_node_over_grpc(small_config):
    res = _run(small_config, policy={"name": "fedrewind", "rewind_ratio": 0.5}, runtime__transport="grpc")
    sent = _rows(res.run_dir, "comm.csv")
    received = _rows(res.run_dir, "comm_received.csv")
    came_from = {(int(r["round"]), r["dst"]): r["src"] for r in sent if r["tag"] == "model"}
    reqs = [r for r in sent if r["tag"] == "req:rewind"]
    reps = [r for r in sent if r["tag"] == "rep:rewind"]
    assert reqs and len(reqs) == len(reps) == 4 * 2  # rounds 1 and 2, every node once; none in round 0
    for q in reqs:
        rnd = int(q["round"])
        assert rnd >= 1 and q["dst"] == came_from[(rnd - 1, q["src"])]  # back to the node it came from
        assert q["kind"] == "MODEL" and int(q["wire_bytes"]) > int(q["payload_bytes"]) > 0
        assert any(p["src"] == q["dst"] and p["dst"] == q["src"] and p["round"] == q["round"] for p in reps)
    assert sorted((r["tag"], r["src"], r["dst"]) for r in received if "rewind" in r["tag"]) == \
        sorted((r["tag"], r["src"], r["dst"]) for r in reqs + reps)
    m = _metrics(res.run_dir)
    assert float(m[("0", "node0", "rewinds")]) == 0.0 and float(m[("2", "node0", "rewinds")]) == 1.0
    assert m[("2", "node0", "pfa")] == m[("2", "node0", "test_acc")] and ("2", "node0", "fed_acc") in m


def test_rewind_ratio_zero_equals_model_exchange_bit_for_bit(small_config):
    base = dict(runtime__transport="inproc", train__momentum=0.9)
    # run ids (in every header) must have equal length for equal wire bytes: fixed stamps
    a = _run(small_config, policy={"name": "fedrewind", "rewind_ratio": 0.0}, output__stamp="a", **base)
    b = _run(small_config, policy={"name": "model_exchange"}, output__stamp="b", **base)
    c = _run(small_config, policy={"name": "fedrewind", "rewind_ratio": 0.5}, output__stamp="c", **base)
    assert _metrics(a.run_dir) == _metrics(b.run_dir)
    key = lambda rows: [(r["round"], r["tag"], r["src"], r["dst"], r["wire_bytes"]) for r in rows]
    assert key(_rows(a.run_dir, "comm.csv")) == key(_rows(b.run_dir, "comm.csv"))
    assert _metrics(c.run_dir) != _metrics(a.run_dir)  # the rewind does change the models


def test_same_config_same_metrics_with_rewinds_served_concurrently(small_config):
    pol = {"name": "fedrewind", "rewind_ratio": 0.5, "rewind_to": "last_two", "rewind_lr_scale": 0.1}
    a = _run(small_config, policy=pol, runtime__transport="inproc")
    b = _run(small_config, policy=pol, runtime__transport="inproc")
    assert _metrics(a.run_dir) == _metrics(b.run_dir)
    m = _metrics(a.run_dir)
    per_round = defaultdict(float)
    for (rnd, _, metric), v in m.items():
        if metric == "rewinds":
            per_round[int(rnd)] += float(v)
    reqs = defaultdict(int)
    for r in _rows(a.run_dir, "comm.csv"):
        if r["tag"] == "req:rewind":
            reqs[int(r["round"])] += 1
    assert per_round[0] == 0 and per_round[1] == 4 and per_round[2] > 4  # two distinct earlier holders
    assert {k: v for k, v in per_round.items() if v} == {k: float(v) for k, v in reqs.items()}


def test_optimizer_travels_with_the_model_only_when_asked(small_config):
    def model_bytes(travels):
        res = _run(small_config, rounds=1, train__momentum=0.9, runtime__transport="inproc",
                   policy={"name": "model_exchange", "optimizer_travels": travels})
        return sum(int(r["payload_bytes"]) for r in _rows(res.run_dir, "comm.csv") if r["tag"] == "model")
    assert model_bytes(True) == 2 * model_bytes(False)  # momentum buffer: one tensor per parameter


def test_star_nodes_without_a_route_hold_their_model(small_config):
    res = _run(small_config, topology={"generator": "star", "n": 5}, runtime__transport="inproc",
               policy={"name": "fedrewind", "rewind_ratio": 0.5})
    m = _metrics(res.run_dir)
    held = {n for (rnd, n, metric), v in m.items() if metric == "held" and rnd == "1" and float(v) == 1.0}
    assert len(held) == 3
    moved = {(r["src"], r["dst"]) for r in _rows(res.run_dir, "comm.csv") if r["tag"] == "model" and r["round"] == "1"}
    assert len(moved) == 2 and not {n for pair in moved for n in pair} & held
    assert not res.summary["final"]["node0"].get("missing_peers")


def test_scored_routing_on_a_ring_floods_scores_and_agrees(small_config):
    res = _run(small_config, topology={"generator": "ring", "n": 5}, runtime__transport="inproc",
               policy={"name": "fedrewind", "routing": "scored"})
    tags = {r["tag"] for r in _rows(res.run_dir, "comm.csv")}
    assert {"scores/0", "scores/1", "model"} <= tags  # diameter 2: two flooding hops
    assert not any(v.get("missing_peers") for v in res.summary["final"].values())


@pytest.mark.parametrize("opts, key", [
    ({"rewind_ratio": 1.0}, "policy.rewind_ratio"),
    ({"rewind_ratio": -0.1}, "policy.rewind_ratio"),
    ({"rewind_ratio": "half"}, "policy.rewind_ratio"),
    ({"rewind_strategy": "sometimes"}, "policy.rewind_strategy"),
    ({"routing": "shortest"}, "policy.routing"),
    ({"rewind_to": "anyone"}, "policy.rewind_to"),
    ({"rewind_lr_scale": 0}, "policy.rewind_lr_scale"),
    ({"rewind_interval": 0}, "policy.rewind_interval"),
    ({"rewind_speed": 2}, "policy.rewind_speed"),
])
def test_bad_options_name_the_key(opts, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        FedRewindPolicy({"name": "fedrewind", **opts})


def test_model_exchange_has_no_rewind_options():
    with pytest.raises(ConfigError, match="policy.rewind_ratio"):
        ModelExchangePolicy({"rewind_ratio": 0.1})
    assert ModelExchangePolicy({}).opts["rewind_ratio"] == 0.0


def test_scored_routing_needs_a_connected_graph(small_config):
    cfg = small_config(topology={"nodes": ["a", "b", "c", "d"], "edges": [["a", "b"], ["c", "d"]]},
                       policy={"name": "fedrewind", "routing": "scored"})
    with pytest.raises(TopologyError, match="connected"):
        preflight(cfg)


@pytest.mark.parametrize("example", ["fedrewind.yaml", "fedrewind_continual.yaml"])
def test_examples_are_valid(example):
    from pathlib import Path

    from fedsim.config import load_config
    cfg = load_config(Path(__file__).parent.parent / "examples" / example)
    graph, names = preflight(cfg)
    assert cfg["policy"]["name"] == "fedrewind" and len(names) >= 8 and graph.number_of_edges() == len(names) * (len(names) - 1) // 2
