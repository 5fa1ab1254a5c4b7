"""Simulated wall-clock: the critical path of a round, by hand and from a real run's files."""
from __future__ import annotations

import csv
import json

import pytest

from fedsim.runtime.driver import run_experiment
from fedsim.simclock import SERVE, Sent, simulate_round

MB = 1_000_000
# a-b: 100 ms, 8 Mbit/s (1 MB takes 1 s); b-c: 10 ms, 80 Mbit/s (1 MB takes 0.1 s)
LINKS = {("a", "b"): (100.0, 8.0), ("b", "c"): (10.0, 80.0)}


def test_line_graph_critical_path_by_hand():
    clocks = {"a": {"main": [("compute", 1.0), ("send", "ab"), ("recv", ["ba"])]},
              "b": {"main": [("compute", 0.5), ("send", "ba"), ("send", "bc"), ("recv", ["ab", "cb"])]},
              "c": {"main": [("compute", 0.1), ("send", "cb"), ("recv", ["bc"])]}}
    sent = [Sent("ab", "a", "b", MB), Sent("ba", "b", "a", MB), Sent("bc", "b", "c", MB), Sent("cb", "c", "b", MB)]
    rt = simulate_round(clocks, sent, LINKS, {"c": 0.5})  # c is half as fast: 0.2 s of compute
    assert rt.node_end["a"] == pytest.approx(max(1.0, 0.5 + 1.0 + 0.1))          # b's model arrives at 1.6
    assert rt.node_end["b"] == pytest.approx(max(0.5, 1.0 + 1.1, 0.2 + 0.11))    # a's at 2.1
    assert rt.node_end["c"] == pytest.approx(max(0.2, 0.5 + 0.11))
    assert rt.duration == pytest.approx(2.1)
    assert rt.compute == {"a": 1.0, "b": 0.5, "c": 0.1}  # measured, before compute_speed


def test_messages_queue_on_a_link_and_requests_run_in_their_own_lane():
    # b sends two 1 MB messages to a: the second waits for the first to leave the 8 Mbit/s link
    clocks = {"a": {"main": [("compute", 1.0), ("send", "req"), ("recv", ["rep"]), ("recv", ["m1", "m2"])]},
              "b": {"main": [("compute", 0.5), ("send", "m1"), ("send", "m2")],
                    SERVE + "req": [("compute", 0.3), ("send", "rep")]}}
    sent = [Sent("m1", "b", "a", MB), Sent("m2", "b", "a", MB), Sent("req", "a", "b", MB), Sent("rep", "b", "a", MB)]
    rt = simulate_round(clocks, sent, LINKS, {})
    # m1 leaves at 0.5 (arrives 1.6), m2 at 1.5 (arrives 2.6); the request arrives at b at 2.1, is served
    # 0.3 s, the reply queues behind m2 (the link is free at 2.5) and arrives 2.5 + 1.0 + 0.1 = 3.6
    assert rt.node_end["a"] == pytest.approx(3.6)
    assert rt.node_end["b"] == pytest.approx(2.4)  # its serving lane ends when the reply leaves
    assert rt.duration == pytest.approx(3.6)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_run_on_a_line_graph_matches_the_hand_computed_critical_path(small_config):
    topo = {"nodes": ["a", "b", {"name": "c", "compute_speed": 0.25}],
            "edges": [["a", "b", {"latency_ms": 300, "bandwidth_mbps": 2}], ["b", "c", {"latency_ms": 20, "bandwidth_mbps": 50}]]}
    res = run_experiment(small_config(topology=topo, rounds=2))
    d = res.run_dir
    compute = {(int(r["round"]), r["node"]): float(r["value"]) for r in _rows(d / "timing.csv") if r["metric"] == "compute_s"}
    ends = {(int(r["round"]), r["node"]): float(r["value"]) for r in _rows(d / "timing.csv") if r["metric"] == "sim_round_s"}
    edges = {frozenset(("a", "b")): (300, 2), frozenset(("b", "c")): (20, 50)}
    speed = {"a": 1.0, "b": 1.0, "c": 0.25}
    expected = []
    for r in range(2):
        arrive: dict[str, list[float]] = {n: [] for n in "abc"}
        for m in _rows(d / "comm.csv"):
            if int(m["round"]) == r:
                lat, bw = edges[frozenset((m["src"], m["dst"]))]
                arrive[m["dst"]].append(compute[(r, m["src"])] / speed[m["src"]] + lat / 1000 + int(m["wire_bytes"]) * 8 / (bw * 1e6))
        end = {n: max([compute[(r, n)] / speed[n]] + arrive[n]) for n in "abc"}
        for n in "abc":
            assert ends[(r, n)] == pytest.approx(end[n], abs=1e-7)
        expected.append(max(end.values()))
    summary = json.loads((d / "summary.json").read_text())
    assert summary["sim_round_s"] == pytest.approx(expected, abs=1e-7)
    assert summary["sim_time_s"] == pytest.approx(sum(expected), abs=1e-6)
    # the slow 2 Mbit/s, 300 ms link is on the critical path: each round lasts longer than that link alone
    model_bytes = int(_rows(d / "comm.csv")[0]["wire_bytes"])
    assert min(expected) > 0.3 + model_bytes * 8 / 2e6
