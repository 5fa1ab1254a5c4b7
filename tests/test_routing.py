"""Routing strategies: permutations along topology edges, identical on every node, and the
documented fallback (cycles + swaps, the rest hold) when no permutation along edges exists."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fedsim.errors import ConfigError
from fedsim.policies.routing import route


def _names(g):
    return nx.relabel_nodes(g, {n: f"h{n}" for n in g})


def _check_valid(g, plan):
    assert set(plan.send_to) == set(plan.recv_from), "a node sends iff it receives"
    assert sorted(plan.send_to.values()) == sorted(plan.send_to), "each node receives exactly one model"
    assert {b: a for a, b in plan.send_to.items()} == plan.recv_from
    for a, b in plan.send_to.items():
        assert a != b and g.has_edge(a, b), f"{a}->{b} is not a topology edge"
    assert set(plan.holders) == set(g) - set(plan.send_to)


def _permutation_exists(g) -> bool:
    # a permutation along edges is a perfect matching of "sender copy" -> "receiver copy"
    b = nx.Graph()
    b.add_nodes_from((("s", n) for n in g), bipartite=0)
    b.add_nodes_from((("r", n) for n in g), bipartite=1)
    b.add_edges_from((("s", u), ("r", v)) for u, v in g.edges)
    b.add_edges_from((("s", v), ("r", u)) for u, v in g.edges)
    m = nx.bipartite.maximum_matching(b, top_nodes=[("s", n) for n in g])
    return len(m) == 2 * len(g)


def test_random_permutation_on_complete_graph_is_a_fresh_derangement_each_round():
    g = _names(nx.complete_graph(10))
    plans = [route("random_permutation", g, 7, r) for r in range(6)]
    for p in plans:
        _check_valid(g, p)
        assert p.complete
    assert len({tuple(sorted(p.send_to.items())) for p in plans}) > 1
    # every node derives the same plan from (seed, round) alone
    assert route("random_permutation", g, 7, 3) == plans[3]
    assert route("random_permutation", g, 8, 3) != plans[3]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 9), p=st.floats(0.1, 1.0), seed=st.integers(0, 10_000), r=st.integers(0, 50),
       strategy=st.sampled_from(["random_permutation", "ring"]))
def test_routes_use_only_edges_and_are_complete_when_possible(n, p, seed, r, strategy):
    g = _names(nx.gnp_random_graph(n, p, seed=seed))
    plan = route(strategy, g, seed, r)
    _check_valid(g, plan)
    assert plan.complete == _permutation_exists(g)


def test_star_has_no_permutation_one_swap_and_the_rest_hold():
    g = _names(nx.star_graph(4))  # hub h0 can take only one of four leaves' models
    assert not _permutation_exists(g)
    for r in range(5):
        plan = route("random_permutation", g, 0, r)
        _check_valid(g, plan)
        assert len(plan.send_to) == 2 and "h0" in plan.send_to and len(plan.holders) == 3


def test_path_breaks_into_swaps():
    g = _names(nx.path_graph(5))
    plan = route("random_permutation", g, 0, 0)
    _check_valid(g, plan)
    assert len(plan.holders) == 1 and all(plan.send_to[plan.send_to[a]] == a for a in plan.send_to)


def test_ring_is_static_and_follows_node_order_when_edges_allow():
    g = _names(nx.cycle_graph(6))
    plans = [route("ring", g, 0, r) for r in range(3)]
    assert plans[0].send_to == {f"h{i}": f"h{(i + 1) % 6}" for i in range(6)}
    assert plans[0] == plans[1] == plans[2]
    tree = _names(nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]))
    nx.relabel_nodes(tree, {"h1": "hx"}, copy=False)  # node order no longer walks the cycle
    fixed = [route("ring", tree, 5, r) for r in range(3)]
    _check_valid(tree, fixed[0])
    assert fixed[0] == fixed[1] == fixed[2]


def test_scored_sends_each_model_where_it_scores_lowest():
    g = _names(nx.complete_graph(4))
    names = list(g)
    worst = {"h0": "h2", "h1": "h3", "h2": "h1", "h3": "h0"}  # a permutation, so it is the optimum
    scores = {a: {b: (0.0 if worst[a] == b else 1.0) for b in names} for a in names}
    assert route("scored", g, 0, 0, scores).send_to == worst


def test_unknown_strategy_names_the_key_and_choices():
    with pytest.raises(ConfigError, match="policy.routing.*random_permutation"):
        route("shortest", _names(nx.complete_graph(3)), 0, 0)


def test_route_is_a_pure_function_of_seed_round_and_graph():
    g = _names(nx.watts_strogatz_graph(8, 4, 0.3, seed=1))
    a = [route("random_permutation", g, 3, r) for r in range(4)]
    b = [route("random_permutation", g.copy(), 3, r) for r in range(4)]
    assert a == b and np.all([p.complete for p in a])
