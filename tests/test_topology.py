"""Topology loading, validation, generators, file formats, MH weights and views."""
from __future__ import annotations

import math

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsim.errors import ConfigError, TopologyError
from fedsim.topology import (DEFAULT_BANDWIDTH_MBPS, DEFAULT_LATENCY_MS, TOPOLOGY_DIR, draw, link_params,
                             load_topology, metropolis_hastings_weights, neighbors, shipped_topologies,
                             summary, write_graphml)

SHIPPED = sorted(TOPOLOGY_DIR.glob("*.yaml"))


def assert_valid_links(g: nx.Graph) -> None:
    assert g.number_of_edges() > 0
    for a, b, d in g.edges(data=True):
        assert isinstance(a, str) and isinstance(b, str)
        assert type(d["latency_ms"]) is float and d["latency_ms"] >= 0
        assert type(d["bandwidth_mbps"]) is float and d["bandwidth_mbps"] > 0


# ---------------------------------------------------------------- shipped files

def test_expected_files_are_shipped():
    expected = {"ring8", "star8", "full8", "smallworld16", "ring64", "full10", "hospitals-eu", "hospitals-3"}
    assert expected <= set(shipped_topologies())
    assert (TOPOLOGY_DIR / "README.md").is_file()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_topology_loads_connected_with_valid_links(path):
    g = load_topology(str(path))
    assert g.graph["name"] == path.stem
    assert nx.is_connected(g) and not g.is_directed()
    assert all(isinstance(v, str) for v in g)
    assert_valid_links(g)


@pytest.mark.parametrize("name, nodes, edges", [
    ("ring8", 8, 8), ("star8", 8, 7), ("full8", 8, 28), ("full10", 10, 45), ("ring64", 64, 64),
    ("smallworld16", 16, 32), ("hospitals-3", 3, 3), ("hospitals-eu", 8, 11),
])
def test_shipped_sizes(name, nodes, edges):
    g = load_topology(name)
    assert (g.number_of_nodes(), g.number_of_edges()) == (nodes, edges)


def test_description_is_kept():
    assert "Watts-Strogatz" in load_topology("smallworld16").graph["description"]


def test_star8_hub_is_first_node():
    g = load_topology("star8.yaml")
    hub = next(iter(g))
    assert hub == "node0" and g.degree(hub) == 7


def test_hospitals_eu_mixes_metro_and_wan_links():
    g = load_topology("hospitals-eu")
    assert g.number_of_edges() < 8 * 7 // 2  # not complete
    links = [(d["latency_ms"], d["bandwidth_mbps"]) for _, _, d in g.edges(data=True)]
    metro = [lk for lk in links if lk[1] == 1000.0]
    wan = [lk for lk in links if lk[1] < 1000.0]
    assert metro and all(1 <= lat <= 3 for lat, _ in metro)
    assert wan and all(10 <= lat <= 40 and 50 <= bw <= 200 for lat, bw in wan)
    assert g.nodes["st-aldric"]["city"] == "London"


def test_smallworld16_is_reproducible():
    assert sorted(load_topology("smallworld16").edges) == sorted(load_topology("smallworld16").edges)


# ---------------------------------------------------------------- path resolution and overrides

def test_resolution_order_base_dir_then_cwd(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "t.yaml").write_text("nodes: [x, y]\nedges: [[x, y]]\n")
    (tmp_path / "t.yaml").write_text("nodes: [p, q]\nedges: [[p, q]]\n")
    monkeypatch.chdir(tmp_path)
    assert set(load_topology("t.yaml", base_dir=tmp_path / "a")) == {"x", "y"}
    assert set(load_topology("t.yaml")) == {"p", "q"}
    assert set(load_topology({"file": "t.yaml"}, base_dir=tmp_path / "nowhere")) == {"p", "q"}


def test_caller_keys_override_file():
    g = load_topology({"file": "ring8", "latency_ms": 9, "defaults": {"bandwidth_mbps": 42}, "name": "mine"})
    assert g.graph["name"] == "mine"
    assert {link_params(g, a, b) for a, b in g.edges} == {(9.0, 42.0)}


def test_missing_file_lists_tried_paths(tmp_path):
    with pytest.raises(TopologyError) as err:
        load_topology("no-such-net.yaml", base_dir=tmp_path)
    msg = str(err.value)
    assert "no-such-net.yaml" in msg and "tried" in msg and str(tmp_path) in msg and "ring8" in msg


# ---------------------------------------------------------------- generators

@pytest.mark.parametrize("spec, nodes, edges", [
    ({"generator": "ring", "n": 8}, 8, 8),
    ({"generator": "star", "n": 6}, 6, 5),
    ({"generator": "complete", "n": 6}, 6, 15),
    ({"generator": "full", "n": 5}, 5, 10),
    ({"generator": "line", "n": 5}, 5, 4),
    ({"generator": "watts_strogatz", "n": 16, "k": 4, "p": 0.3, "seed": 1}, 16, 32),
    ({"generator": "random_regular", "n": 10, "d": 3, "seed": 1}, 10, 15),
    ({"generator": "barabasi_albert", "n": 20, "m": 2, "seed": 1}, 20, 36),
    ({"generator": "grid", "rows": 3, "cols": 4}, 12, 17),
    ({"generator": "erdos_renyi", "n": 12, "p": 1.0}, 12, 66),
])
def test_generator_sizes(spec, nodes, edges):
    g = load_topology(spec)
    assert (g.number_of_nodes(), g.number_of_edges()) == (nodes, edges)
    assert sorted(g) == sorted(f"node{i}" for i in range(nodes))
    assert {link_params(g, a, b) for a, b in g.edges} == {(DEFAULT_LATENCY_MS, DEFAULT_BANDWIDTH_MBPS)}


@pytest.mark.parametrize("spec", [
    {"generator": "erdos_renyi", "n": 30, "p": 0.3},
    {"generator": "watts_strogatz", "n": 30, "k": 4, "p": 0.5},
    {"generator": "random_regular", "n": 30, "d": 3},
    {"generator": "barabasi_albert", "n": 30, "m": 2},
])
def test_random_generators_are_deterministic_by_seed(spec):
    def edges(extra: dict) -> list[tuple[str, str]]:
        return sorted(tuple(sorted(e)) for e in load_topology({**spec, **extra}).edges)

    assert edges({"seed": 3}) == edges({"seed": 3})
    assert edges({"seed": 3}) != edges({"seed": 4})
    assert edges({}) == edges({"seed": 0})  # the default seed is 0


def test_generated_names_and_link_defaults():
    g = load_topology({"generator": "star", "n": 4, "names": ["hub", "b", "c", "d"], "latency_ms": 2,
                       "bandwidth_mbps": 10, "name": "mystar"})
    assert neighbors(g, "hub") == ["b", "c", "d"] and g.graph["name"] == "mystar"
    assert link_params(g, "hub", "c") == (2.0, 10.0)
    g = load_topology({"generator": "ring", "n": 3, "name_prefix": "hospital"})
    assert sorted(g) == ["hospital0", "hospital1", "hospital2"] and g.graph["name"] == "ring3"


@pytest.mark.parametrize("spec, key, detail", [
    ({"generator": "random_regular", "n": 7, "d": 3}, "'d'", "n*d even"),
    ({"generator": "random_regular", "n": 8, "d": 8}, "'d'", "d < n"),
    ({"generator": "watts_strogatz", "n": 10, "k": 3, "p": 0.1}, "'k'", "even"),
    ({"generator": "watts_strogatz", "n": 10, "k": 4}, "'p'", "0 <= p <= 1"),
    ({"generator": "erdos_renyi", "n": 10, "p": 0}, "'p'", "0 < p <= 1"),
    ({"generator": "barabasi_albert", "n": 5, "m": 5}, "'m'", "m < n"),
    ({"generator": "ring", "n": 2}, "'n'", ">= 3"),
    ({"generator": "complete"}, "'n'", ">= 2"),
    ({"generator": "line", "n": "8"}, "'n'", "integer"),
    ({"generator": "line", "n": 4, "seed": 1.5}, "'seed'", "integer"),
    ({"generator": "grid", "rows": 0, "cols": 3}, "'rows'", ">= 1"),
    ({"generator": "ring", "n": 8, "p": 0.5}, "'p'", "n, seed"),
    ({"generator": "ring", "n": 3, "names": ["a", "b"]}, "'names'", "exactly 3"),
    ({"generator": "ring", "n": 8, "colour": "red"}, "'colour'", "generator"),
    ({"generator": "ring", "n": 8, "nodes": ["a"]}, "'topology'", "exactly one of"),
    ({"nodes": ["a", "b"], "edges": [["a", "b"]], "n": 3}, "'n'", "only together with 'generator'"),
    ({"nodes": ["a", "b"], "edges": [["a", "b"]], "allow_disconnected": "yes"}, "'allow_disconnected'", "true"),
    ({"nodes": ["a", "b"], "edges": [["a", "b"]], "latency_ms": -1}, "'latency_ms'", ">= 0"),
    ({"nodes": ["a", "b"], "edges": [["a", "b"]], "defaults": {"bandwidth_mbps": 0}}, "'bandwidth_mbps'", "> 0"),
])
def test_bad_spec_keys_raise_config_error(spec, key, detail):
    with pytest.raises(ConfigError) as err:
        load_topology(spec)
    assert key in str(err.value) and detail in str(err.value)


def test_unknown_generator_lists_allowed():
    with pytest.raises(TopologyError, match="unknown generator 'torus'.*ring.*watts_strogatz"):
        load_topology({"generator": "torus", "n": 8})


def test_duplicate_generated_names():
    with pytest.raises(TopologyError, match="duplicate node name 'a'"):
        load_topology({"generator": "ring", "n": 3, "names": ["a", "b", "a"]})


# ---------------------------------------------------------------- other file formats

def test_graphml_round_trip_keeps_attributes(tmp_path):
    g = load_topology("hospitals-eu")
    g.nodes["st-aldric"]["departments"] = ["icu", "oncology"]  # non-scalar: must be stringified
    path = write_graphml(g, tmp_path / "eu.graphml")
    back = load_topology(str(path))
    assert back.graph["name"] == "hospitals-eu"
    assert {frozenset(e) for e in back.edges} == {frozenset(e) for e in g.edges}
    assert link_params(back, "st-aldric", "thameside-royal") == (2.0, 1000.0)
    assert back.nodes["lavalliere"]["city"] == "Paris" and back.nodes["lavalliere"]["beds"] == 480
    assert back.nodes["st-aldric"]["departments"] == '["icu", "oncology"]'


def test_directed_graphml_becomes_undirected_with_slowest_link(tmp_path):
    d = nx.DiGraph()
    d.add_edge("a", "b", latency_ms=2.0, bandwidth_mbps=500.0)
    d.add_edge("b", "a", latency_ms=7.0, bandwidth_mbps=900.0)
    d.add_edge("b", "c")
    nx.write_graphml(d, tmp_path / "d.xml")
    g = load_topology(tmp_path / "d.xml")
    assert not g.is_directed() and g.number_of_edges() == 2
    assert link_params(g, "a", "b") == (7.0, 500.0)
    assert link_params(g, "c", "b") == (DEFAULT_LATENCY_MS, DEFAULT_BANDWIDTH_MBPS)


def test_gml_loads_with_attributes_and_str_names(tmp_path):
    g = nx.Graph(name="gmlnet")
    g.add_edge("x", "y", latency_ms=4, bandwidth_mbps=250)
    g.add_edge("y", "z", latency_ms=1.5)
    nx.write_gml(g, tmp_path / "n.gml")
    back = load_topology(str(tmp_path / "n.gml"))
    assert back.graph["name"] == "gmlnet"
    assert link_params(back, "x", "y") == (4.0, 250.0)
    assert link_params(back, "z", "y") == (1.5, DEFAULT_BANDWIDTH_MBPS)
    (tmp_path / "ids.gml").write_text("graph [\n node [ id 0 ]\n node [ id 1 ]\n edge [ source 0 target 1 ]\n]\n")
    assert sorted(load_topology(tmp_path / "ids.gml")) == ["0", "1"]


def test_edge_lists_in_all_dialects(tmp_path):
    (tmp_path / "w.edgelist").write_text("# hospitals\n1 2 3.5 400\n2 3   # defaults\n3 1 8\n")
    g = load_topology(str(tmp_path / "w.edgelist"))
    assert sorted(g) == ["1", "2", "3"] and g.graph["name"] == "w"
    (tmp_path / "uv.txt").write_text("u v\nv w\n")  # a first row of node names is data, not a header
    assert load_topology(tmp_path / "uv.txt").number_of_edges() == 2
    assert link_params(g, "1", "2") == (3.5, 400.0)
    assert link_params(g, "2", "3") == (DEFAULT_LATENCY_MS, DEFAULT_BANDWIDTH_MBPS)
    assert link_params(g, "1", "3") == (8.0, DEFAULT_BANDWIDTH_MBPS)

    (tmp_path / "c.csv").write_text("source,target,bandwidth_mbps,latency_ms\na,b,1000,2\nb,c,50,30\n")
    g = load_topology(tmp_path / "c.csv")
    assert link_params(g, "a", "b") == (2.0, 1000.0) and link_params(g, "c", "b") == (30.0, 50.0)

    nx_written = nx.Graph()
    nx_written.add_edge("p", "q", latency_ms=6.0, bandwidth_mbps=70.0)
    nx_written.add_edge("q", "r", latency_ms=1.0, bandwidth_mbps=10.0)
    nx.write_edgelist(nx_written, tmp_path / "n.txt")  # "p q {'latency_ms': 6.0, ...}"
    g = load_topology(tmp_path / "n.txt")
    assert link_params(g, "q", "p") == (6.0, 70.0) and link_params(g, "r", "q") == (1.0, 10.0)


# ---------------------------------------------------------------- bad input

def write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


@pytest.mark.parametrize("name, text, fragments", [
    ("bad.yaml", "nodes: [a, b\nedges: [[a, b]]\n", ["bad.yaml", "line"]),
    ("empty.yaml", "", ["empty.yaml", "mapping"]),
    ("bad.graphml", "<graphml><graph>\n<node id='a'\n</graph>", ["bad.graphml", "line 3"]),
    ("bad.gml", "graph [\n node [ id 0 label \"a\" ]\n", ["bad.gml", "expected"]),
    ("dupe.gml", "graph [\n node [ id 0 label \"a\" ]\n node [ id 1 label \"a\" ]\n]\n", ["dupe.gml", "'a'"]),
    ("net.json", "{}", ["net.json", "unsupported", ".graphml"]),
    ("one.yaml", "nodes: [solo]\n", ["one.yaml", "at least 2 nodes"]),
    ("loop.yaml", "nodes: [a, b]\nedges: [[a, b], [b, b]]\n", ["loop.yaml", "self loop", "'b'"]),
    ("undecl.yaml", "nodes: [a, b]\nedges: [[a, b], [b, zed]]\n", ["undecl.yaml", "undeclared node 'zed'"]),
    ("dupnode.yaml", "nodes: [a, b, {name: a}]\nedges: [[a, b]]\n", ["dupnode.yaml", "duplicate node name 'a'"]),
    ("dupedge.yaml", "nodes: [a, b]\nedges: [[a, b], [b, a]]\n", ["dupedge.yaml", "duplicate edge [b, a]"]),
    ("shape.yaml", "nodes: [a, b]\nedges: [[a, b, c, d]]\n", ["shape.yaml", "edge #1"]),
    ("noname.yaml", "nodes: [{city: Rome}, b]\nedges: []\n", ["noname.yaml", "node #1"]),
    ("boolname.yaml", "nodes: [yes, b]\nedges: []\n", ["boolname.yaml", "quote"]),
    ("loop.edgelist", "a b\nc c 3\n", ["loop.edgelist:2", "self loop on node 'c'"]),
    ("dup.csv", "a,b\nx,y\nb,a\n", ["dup.csv:3", "duplicate edge (b, a)", "line 1"]),
    ("cols.txt", "a b 1 2 3\n", ["cols.txt:1", "5 columns"]),
    ("short.txt", "a\n", ["short.txt:1", "expected"]),
])
def test_bad_files_name_the_problem(tmp_path, name, text, fragments):
    with pytest.raises(TopologyError) as err:
        load_topology(write(tmp_path, name, text))
    for fragment in fragments:
        assert fragment in str(err.value)


@pytest.mark.parametrize("attrs, attr, shown", [
    ("{latency_ms: fast}", "latency_ms", "'fast'"),
    ("{latency_ms: -1}", "latency_ms", "-1"),
    ("{latency_ms: .nan}", "latency_ms", "nan"),
    ("{latency_ms: true}", "latency_ms", "True"),
    ("{bandwidth_mbps: 0}", "bandwidth_mbps", "0"),
    ("{bandwidth_mbps: .inf}", "bandwidth_mbps", "inf"),
    ("{bandwidth_mbps: [1]}", "bandwidth_mbps", "[1]"),
])
def test_bad_link_values_name_edge_and_attribute(tmp_path, attrs, attr, shown):
    path = write(tmp_path, "links.yaml", f"nodes: [a, b, c]\nedges: [[a, b], [b, c, {attrs}]]\n")
    with pytest.raises(TopologyError) as err:
        load_topology(path)
    msg = str(err.value)
    assert "links.yaml" in msg and "(b, c)" in msg and attr in msg and shown in msg


def test_edge_list_bad_value_names_edge(tmp_path):
    with pytest.raises(TopologyError, match=r"edge \(a, b\): bandwidth_mbps .* got '-5'"):
        load_topology(write(tmp_path, "e.txt", "a b 1 -5\n"))


def test_disconnected_graph_reports_components(tmp_path):
    text = "nodes: [a, b, c, d, e]\nedges: [[a, b], [b, c], [d, e]]\n"
    with pytest.raises(TopologyError) as err:
        load_topology(write(tmp_path, "split.yaml", text))
    msg = str(err.value)
    assert "split.yaml" in msg and "2 components" in msg and "{a, b, c}" in msg and "{d, e}" in msg
    g = load_topology({"file": str(tmp_path / "split.yaml"), "allow_disconnected": True})
    assert nx.number_connected_components(g) == 2
    assert "disconnected (2 components)" in summary(g) and "diameter: n/a" in summary(g)


def test_disconnected_random_graph_suggests_fix():
    with pytest.raises(TopologyError, match="components.*allow_disconnected"):
        load_topology({"generator": "erdos_renyi", "n": 20, "p": 0.02, "seed": 1})


def test_graph_file_rejects_generator_keys_and_yaml_rejects_nested_file(tmp_path):
    nx.write_graphml(nx.path_graph(3), tmp_path / "p.graphml")
    with pytest.raises(ConfigError, match="'names'.*not combinable with a .graphml"):
        load_topology({"file": str(tmp_path / "p.graphml"), "names": ["a", "b", "c"]})
    with pytest.raises(ConfigError, match="'file'.*not allowed inside a topology file"):
        load_topology(write(tmp_path, "nested.yaml", "file: ring8.yaml\n"))


def test_spec_shape_errors():
    with pytest.raises(ConfigError, match="'topology'"):
        load_topology(42)
    with pytest.raises(ConfigError, match="'nodes'"):
        load_topology({"edges": [["a", "b"]]})
    with pytest.raises(ConfigError, match="exactly one of 'file', 'generator'"):
        load_topology({"file": str(TOPOLOGY_DIR / "ring8.yaml"), "generator": "ring"})


# ---------------------------------------------------------------- queries

def test_neighbors_link_params_and_errors():
    g = load_topology("hospitals-eu")
    assert neighbors(g, "amstelzicht") == ["charlottenhof", "lavalliere", "thameside-royal"]
    assert link_params(g, "san-vitale", "spreeufer") == (28.0, 50.0)
    with pytest.raises(TopologyError, match="unknown node 'nowhere'"):
        neighbors(g, "nowhere")
    with pytest.raises(TopologyError, match="no link between 'st-aldric' and 'san-vitale'"):
        link_params(g, "st-aldric", "san-vitale")


def test_mh_weights_on_ring_and_star():
    w = metropolis_hastings_weights(load_topology("ring8"))
    assert w["node0"] == pytest.approx({"node1": 1 / 3, "node7": 1 / 3, "node0": 1 / 3})
    w = metropolis_hastings_weights(load_topology("star8"))
    assert w["node3"] == pytest.approx({"node0": 1 / 8, "node3": 7 / 8})
    assert w["node0"]["node0"] == pytest.approx(1 / 8)


@st.composite
def connected_specs(draw_):
    n = draw_(st.integers(2, 14))
    edges = {(draw_(st.integers(0, i - 1)), i) for i in range(1, n)}  # random spanning tree
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    edges |= set(draw_(st.lists(st.sampled_from(pairs), max_size=2 * n)))
    return {"nodes": [f"h{i}" for i in range(n)], "edges": [[f"h{a}", f"h{b}"] for a, b in sorted(edges)]}


@settings(max_examples=60, deadline=None)
@given(connected_specs())
def test_mh_weights_rows_sum_to_one_and_symmetric(spec):
    g = load_topology(spec)
    w = metropolis_hastings_weights(g)
    assert set(w) == set(g)
    for i, row in w.items():
        assert set(row) == set(g[i]) | {i}
        assert math.isclose(sum(row.values()), 1.0, abs_tol=1e-12)
        assert all(0 < v <= 1 for j, v in row.items() if j != i) and row[i] >= 0
        for j in g[i]:
            assert w[j][i] == row[j]


# ---------------------------------------------------------------- views

def test_summary_mentions_key_facts():
    text = summary(load_topology("ring8"))
    assert "'ring8'" in text and "8 nodes, 8 edges, connected" in text and "diameter: 4" in text
    text = summary(load_topology("hospitals-eu"))
    assert "latency_ms: 1.5..40 ms" in text and "bandwidth_mbps: 50..1000" in text and "amstelzicht (3)" in text


@pytest.mark.parametrize("name", ["ring8", "hospitals-eu", "star8"])
def test_draw_writes_png(tmp_path, name):
    out = draw(load_topology(name), tmp_path / "sub" / f"{name}.png")
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
