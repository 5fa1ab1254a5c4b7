"""Load, validate and query the hospital network graph that decentralized training runs on.

Nodes exchange models only with their graph neighbours; every edge carries ``latency_ms``
and ``bandwidth_mbps`` which the runtime uses to simulate link time.

``load_topology(spec)`` accepts a path (YAML, GraphML ``.graphml``/``.xml``, GML ``.gml``,
edge list ``.edgelist``/``.txt``/``.csv``) or a mapping ``{file: PATH}`` |
``{generator: NAME, n: INT, seed: INT, ...}`` | ``{nodes: [...], edges: [...]}``.
Relative paths are tried against ``base_dir``, the CWD, then the repo's ``topologies/``
directory, where a bare name such as ``"ring8"`` also finds ``ring8.yaml``.

YAML topology file format::

    name: hospital-north               # graph name (default: file stem)
    description: free text
    defaults: {latency_ms: 8, bandwidth_mbps: 200}   # for edges that give none
    allow_disconnected: false          # default false: a disconnected graph is an error
    nodes:                             # names, or {name: ..., any attrs e.g. city, beds}
      - {name: st-mary, city: London}
      - kings
    edges:                             # [a, b] or [a, b, {latency_ms: .., bandwidth_mbps: ..}]
      - [st-mary, kings, {latency_ms: 3, bandwidth_mbps: 1000}]
    # or, instead of nodes/edges:  generator: ring, n: 8   (plus names / name_prefix)

Generators: ring, star (hub = first node), complete (alias full), line, erdos_renyi (p),
watts_strogatz (k, p; connected variant), random_regular (d), barabasi_albert (m),
grid (rows, cols). Random ones take ``seed`` (default 0, so runs are reproducible).

Normalisation: node names become ``str``; directed or multi-edge input (GraphML/GML) is
made undirected, and when one pair is linked several times the slowest values win
(a link is as slow as its slowest direction). Every returned edge has float
``latency_ms`` >= 0 and ``bandwidth_mbps`` > 0; ``graph.graph["name"]`` is set.
"""
from __future__ import annotations

import math
import numbers
import os
import sys
from pathlib import Path
from typing import Any

import networkx as nx

from fedsim.errors import ConfigError, TopologyError
from fedsim.topology_draw import draw, summary, write_graphml
from fedsim.topology_io import LINK_ATTRS, read_graph_file, read_yaml

__all__ = ["DEFAULT_LATENCY_MS", "DEFAULT_BANDWIDTH_MBPS", "TOPOLOGY_DIR", "GENERATORS", "load_topology",
           "shipped_topologies", "neighbors", "metropolis_hastings_weights", "link_params", "summary", "draw",
           "write_graphml"]

# Hospital WAN defaults used when an edge (and the spec's defaults) give no value:
# a few ms of metro/regional latency over a 100 Mbit/s leased line.
DEFAULT_LATENCY_MS = 5.0
DEFAULT_BANDWIDTH_MBPS = 100.0

# Repo checkout layout (editable installs). A non-editable wheel does not ship this folder;
# pass an explicit path or base_dir there.
def _topology_dir() -> Path:
    """The shipped topologies: the checkout's topologies/, or the copy a wheel installs under share/."""
    checkout = Path(__file__).resolve().parent.parent / "topologies"
    installed = Path(sys.prefix) / "share" / "fedsim" / "topologies"
    return checkout if checkout.is_dir() or not installed.is_dir() else installed


TOPOLOGY_DIR = _topology_dir()

# generator name -> its parameters besides ``seed`` (accepted by every generator)
GENERATORS: dict[str, tuple[str, ...]] = {
    "ring": ("n",), "star": ("n",), "complete": ("n",), "line": ("n",),
    "erdos_renyi": ("n", "p"), "watts_strogatz": ("n", "k", "p"),
    "random_regular": ("n", "d"), "barabasi_albert": ("n", "m"), "grid": ("rows", "cols"),
}
_ALIASES = {"full": "complete", "cycle": "ring", "path": "line"}
_SHAPE_KEYS = ("file", "generator", "nodes", "edges")
_COMMON_KEYS = ("name", "description", "defaults", "allow_disconnected", "latency_ms",
                "bandwidth_mbps", "names", "name_prefix")
_GEN_PARAM_KEYS = sorted({p for ps in GENERATORS.values() for p in ps} | {"seed"})
_LINK_ATTRS = LINK_ATTRS


def load_topology(spec: str | os.PathLike | dict, *, base_dir: str | Path | None = None) -> nx.Graph:
    """Build a validated undirected graph from a path or a spec mapping (see module doc)."""
    if isinstance(spec, (str, os.PathLike)):
        spec = {"file": spec}
    if not isinstance(spec, dict):
        raise ConfigError("topology", spec, "a file path or a mapping with 'file', 'generator' or 'nodes'/'edges'")
    spec = dict(spec)
    _check_keys(spec, "topology spec")
    if "file" not in spec:
        return _from_mapping(spec, "inline topology")
    path = _resolve(spec.pop("file"), base_dir)
    if path.suffix.lower() in (".yaml", ".yml"):
        content = read_yaml(path)
        if "file" in content:
            raise ConfigError("file", content["file"], "not allowed inside a topology file", str(path))
        merged = {"name": path.stem, **content, **spec}  # the caller's keys override the file's
        ours, theirs = content.get("defaults") or {}, spec.get("defaults") or {}
        if isinstance(ours, dict) and isinstance(theirs, dict):  # else _defaults reports the bad one
            merged["defaults"] = {**ours, **theirs}
        _check_keys(merged, str(path))
        return _from_mapping(merged, str(path))
    for key in ("generator", "nodes", "edges", "names", "name_prefix"):
        if key in spec:
            raise ConfigError(key, spec[key], f"not combinable with a {path.suffix} graph file")
    raw = read_graph_file(path)
    name = spec.get("name") or raw.graph.get("name") or path.stem
    return _finish(raw, str(path), name, _defaults(spec), _allow_disconnected(spec))


def shipped_topologies() -> list[str]:
    """Bare names of the YAML topologies in TOPOLOGY_DIR (e.g. 'ring8')."""
    return sorted(p.stem for p in TOPOLOGY_DIR.glob("*.yaml")) if TOPOLOGY_DIR.is_dir() else []


def _check_keys(spec: dict, source: str) -> None:
    allowed = (*_SHAPE_KEYS, *_COMMON_KEYS, *_GEN_PARAM_KEYS)
    for key in spec:
        if key not in allowed:
            raise ConfigError(str(key), spec[key], ", ".join(allowed), f"unknown key in {source}")
    shapes = [k for k in ("file", "generator", "nodes") if k in spec]
    if "edges" in spec and "nodes" not in spec:
        shapes.append("edges")
    if len(shapes) > 1:
        raise ConfigError("topology", sorted(shapes), "exactly one of 'file', 'generator' or 'nodes'/'edges'", source)


def _resolve(given: Any, base_dir: str | Path | None) -> Path:
    if not isinstance(given, (str, os.PathLike)) or not str(given):
        raise ConfigError("file", given, "a non-empty path string")
    p = Path(os.path.expanduser(str(given)))
    if p.is_absolute():
        tried = [p]
    else:
        tried = ([Path(base_dir) / p] if base_dir is not None else []) + [Path.cwd() / p, TOPOLOGY_DIR / p]
        if not p.suffix:  # bare shipped name such as "ring8"
            tried.append(TOPOLOGY_DIR / f"{p}.yaml")
    for candidate in tried:
        if candidate.is_file():
            return candidate
    shipped = ", ".join(shipped_topologies()) or "none found"
    raise TopologyError(f"topology file '{given}' not found; tried: {', '.join(map(str, tried))}; "
                        f"shipped topologies: {shipped}")


def _from_mapping(spec: dict, source: str) -> nx.Graph:
    if "generator" in spec:
        raw, auto_name = _generate(spec)
    else:
        for key in ("names", "name_prefix", *_GEN_PARAM_KEYS):
            if key in spec:
                raise ConfigError(key, spec[key], "only together with 'generator'", source)
        if "nodes" not in spec:
            raise ConfigError("topology", sorted(spec), "one of 'file', 'generator' or 'nodes'/'edges'", source)
        raw, auto_name = _build_inline(spec, source), "inline"
    g = _finish(raw, source, spec.get("name") or auto_name, _defaults(spec), _allow_disconnected(spec))
    if spec.get("description"):
        g.graph["description"] = str(spec["description"]).strip()
    return g


def _defaults(spec: dict) -> dict[str, float]:
    given = spec.get("defaults") or {}
    if not isinstance(given, dict) or set(given) - set(_LINK_ATTRS):
        raise ConfigError("defaults", given, "a mapping with latency_ms and/or bandwidth_mbps")
    out = {"latency_ms": DEFAULT_LATENCY_MS, "bandwidth_mbps": DEFAULT_BANDWIDTH_MBPS, **given}
    out.update({k: spec[k] for k in _LINK_ATTRS if k in spec})
    for key, value in out.items():
        if _link_value(value, key) is None:
            raise ConfigError(key, value, "finite number > 0" if key == "bandwidth_mbps" else "finite number >= 0")
    return {k: float(v) for k, v in out.items()}


def _allow_disconnected(spec: dict) -> bool:
    value = spec.get("allow_disconnected", False)
    if not isinstance(value, bool):
        raise ConfigError("allow_disconnected", value, "true or false")
    return value


def _link_value(value: Any, attr: str) -> float | None:
    """The attribute as a float, or None when it is not a usable latency/bandwidth."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        return None
    try:
        x = float(value)
    except ValueError:
        return None
    if not math.isfinite(x) or x < 0 or (attr == "bandwidth_mbps" and x == 0):
        return None
    return x


def _build_inline(spec: dict, source: str) -> nx.Graph:
    nodes, edges = spec.get("nodes"), spec.get("edges") or []
    if not isinstance(nodes, list):
        raise ConfigError("nodes", nodes, "a list of node names or {name: ..., attrs} mappings", source)
    if not isinstance(edges, list):
        raise ConfigError("edges", edges, "a list of [a, b] or [a, b, {attrs}]", source)
    g = nx.Graph()
    for i, item in enumerate(nodes, 1):
        attrs = dict(item) if isinstance(item, dict) else {}
        name = attrs.pop("name", None) if isinstance(item, dict) else item
        if isinstance(name, bool) or not isinstance(name, (str, int)) or name == "":
            raise TopologyError(f"{source}: node #{i} {item!r} needs a string name (quote names like yes/no/on)")
        if str(name) in g:
            raise TopologyError(f"{source}: duplicate node name '{name}' (node #{i})")
        g.add_node(str(name), **attrs)
    for i, edge in enumerate(edges, 1):
        if not (isinstance(edge, list) and len(edge) in (2, 3) and (len(edge) == 2 or isinstance(edge[2], dict))):
            raise TopologyError(f"{source}: edge #{i} must be [a, b] or [a, b, {{latency_ms: .., "
                                f"bandwidth_mbps: ..}}], got {edge!r}")
        a, b = str(edge[0]), str(edge[1])
        for end in (a, b):
            if end not in g:
                raise TopologyError(f"{source}: edge #{i} [{a}, {b}] refers to undeclared node '{end}'")
        if a == b:
            raise TopologyError(f"{source}: self loop on node '{a}' (edge #{i})")
        if g.has_edge(a, b):
            raise TopologyError(f"{source}: duplicate edge [{a}, {b}] (edge #{i})")
        g.add_edge(a, b, **(edge[2] if len(edge) == 3 else {}))
    return g


def _param(spec: dict, gen: str, key: str, allowed: str, ok, kind=int) -> Any:
    """A generator parameter checked against ``ok``; ConfigError names it and its allowed range."""
    value = spec.get(key)
    good_type = isinstance(value, kind) if kind is int else isinstance(value, numbers.Real)
    if value is None or isinstance(value, bool) or not good_type or not ok(value):
        raise ConfigError(key, value, allowed, f"generator '{gen}'")
    return value


def _generate(spec: dict) -> tuple[nx.Graph, str]:
    name = spec["generator"]
    gen = _ALIASES.get(name, name) if isinstance(name, str) else name
    if not isinstance(gen, str) or gen not in GENERATORS:
        raise TopologyError(f"unknown generator {name!r}; allowed: {', '.join([*GENERATORS, *_ALIASES])}")
    for key in _GEN_PARAM_KEYS:
        if key in spec and key != "seed" and key not in GENERATORS[gen]:
            raise ConfigError(key, spec[key], f"parameters of '{gen}': {', '.join(GENERATORS[gen])}, seed")
    seed = _param({"seed": spec.get("seed", 0)}, gen, "seed", "an integer", lambda s: True)
    if gen == "grid":
        rows = _param(spec, gen, "rows", "integer >= 1", lambda v: v >= 1)
        cols = _param(spec, gen, "cols", "integer >= 1", lambda v: v >= 1)
        g = nx.grid_2d_graph(rows, cols)
        g = nx.relabel_nodes(g, {(r, c): r * cols + c for r, c in g})  # row-major ids
        nx.set_node_attributes(g, {r * cols + c: {"row": r, "col": c} for r in range(rows) for c in range(cols)})
        return _name_nodes(g, rows * cols, spec), f"grid{rows}x{cols}"
    lo = 3 if gen == "ring" else 2
    n = _param(spec, gen, "n", f"integer >= {lo}", lambda v: v >= lo)
    if gen == "erdos_renyi":
        p = _param(spec, gen, "p", "number with 0 < p <= 1", lambda v: 0 < v <= 1, float)
        g = nx.gnp_random_graph(n, p, seed=seed)
    elif gen == "watts_strogatz":
        k = _param(spec, gen, "k", f"even integer with 2 <= k < n (n={n})", lambda v: 2 <= v < n and v % 2 == 0)
        p = _param(spec, gen, "p", "number with 0 <= p <= 1", lambda v: 0 <= v <= 1, float)
        try:
            g = nx.connected_watts_strogatz_graph(n, k, p, tries=100, seed=seed)
        except nx.NetworkXError as exc:
            raise TopologyError(f"watts_strogatz n={n} k={k} p={p} seed={seed}: {exc}; try another seed") from exc
    elif gen == "random_regular":
        d = _param(spec, gen, "d", f"integer with 1 <= d < n (n={n}) and n*d even",
                   lambda v: 1 <= v < n and (n * v) % 2 == 0)
        g = nx.random_regular_graph(d, n, seed=seed)
    elif gen == "barabasi_albert":
        m = _param(spec, gen, "m", f"integer with 1 <= m < n (n={n})", lambda v: 1 <= v < n)
        g = nx.barabasi_albert_graph(n, m, seed=seed)
    else:
        build = {"ring": nx.cycle_graph, "complete": nx.complete_graph, "line": nx.path_graph}
        g = nx.star_graph(n - 1) if gen == "star" else build[gen](n)  # star: hub is node 0
    return _name_nodes(g, n, spec), f"{gen}{n}"


def _name_nodes(g: nx.Graph, n: int, spec: dict) -> nx.Graph:
    if "names" in spec and "name_prefix" in spec:
        raise ConfigError("names", spec["names"], "either 'names' or 'name_prefix', not both")
    names = spec.get("names")
    if names is not None:
        if not isinstance(names, list) or len(names) != n:
            raise ConfigError("names", names, f"a list of exactly {n} node names")
        names = [str(x) for x in names]
        for x in names:
            if names.count(x) > 1:
                raise TopologyError(f"duplicate node name '{x}' in 'names'")
    else:
        prefix = spec.get("name_prefix", "node")
        if not isinstance(prefix, str):
            raise ConfigError("name_prefix", prefix, "a string such as 'hospital'")
        names = [f"{prefix}{i}" for i in range(n)]
    return nx.relabel_nodes(g, dict(enumerate(names)))


def _finish(raw: nx.Graph, source: str, name: Any, defaults: dict, allow_disconnected: bool) -> nx.Graph:
    """Copy ``raw`` into a plain undirected graph with str nodes and validated link attributes."""
    g = nx.Graph()
    g.graph.update({k: v for k, v in raw.graph.items() if k not in ("node_default", "edge_default")})
    g.graph["name"] = str(name)
    ids: dict[Any, str] = {}
    for node, attrs in raw.nodes(data=True):
        ids[node] = str(node)
        if ids[node] in g:
            raise TopologyError(f"{source}: duplicate node name '{node}'")
        g.add_node(ids[node], **attrs)
    for u, v, attrs in raw.edges(data=True):
        a, b = ids[u], ids[v]
        if a == b:
            raise TopologyError(f"{source}: self loop on node '{a}'")
        link = {}
        for attr in _LINK_ATTRS:
            value = attrs.get(attr, defaults[attr])
            link[attr] = _link_value(value, attr)
            if link[attr] is None:
                need = "> 0" if attr == "bandwidth_mbps" else ">= 0"
                raise TopologyError(f"{source}: edge ({a}, {b}): {attr} must be a finite number {need}, got {value!r}")
        if g.has_edge(a, b):  # both directions or parallel edges: the slowest values win
            link["latency_ms"] = max(link["latency_ms"], g[a][b]["latency_ms"])
            link["bandwidth_mbps"] = min(link["bandwidth_mbps"], g[a][b]["bandwidth_mbps"])
        g.add_edge(a, b, **{**attrs, **link})
    if g.number_of_nodes() < 2:
        raise TopologyError(f"{source}: a topology needs at least 2 nodes, got {g.number_of_nodes()}")
    if not allow_disconnected and not nx.is_connected(g):
        comps = sorted(nx.connected_components(g), key=lambda c: (-len(c), min(c)))
        shown = ["{" + ", ".join(sorted(c)[:4]) + (", ..." if len(c) > 4 else "") + "}" for c in comps[:5]]
        more = " ..." if len(comps) > 5 else ""
        raise TopologyError(f"{source}: graph is disconnected: {len(comps)} components: {'; '.join(shown)}{more} "
                            "(add links, change the seed, or set allow_disconnected: true)")
    return g


def neighbors(graph: nx.Graph, node: str) -> list[str]:
    """Sorted neighbour names of ``node``."""
    if node not in graph:
        raise TopologyError(f"unknown node '{node}' in topology '{graph.graph.get('name', '?')}'")
    return sorted(str(v) for v in graph.neighbors(node))


def metropolis_hastings_weights(graph: nx.Graph) -> dict[str, dict[str, float]]:
    """Doubly stochastic gossip weights: w_ij = 1/(1+max(deg_i, deg_j)), w_ii = 1 - sum_j w_ij.

    Symmetric with rows summing to 1, so repeated averaging converges to the global mean.
    """
    return {i: metropolis_hastings_row(graph, i) for i in graph.nodes}


def metropolis_hastings_row(graph: nx.Graph, node: str) -> dict[str, float]:
    """Node `node`'s row of the Metropolis–Hastings weights: it needs only its neighbours' degrees,
    so a node's setup costs its neighbourhood, not the whole graph."""
    deg_i = graph.degree(node)
    row = {j: 1.0 / (1.0 + max(deg_i, graph.degree(j))) for j in graph.neighbors(node)}
    row[node] = 1.0 - math.fsum(row.values())
    return row


def link_params(graph: nx.Graph, a: str, b: str) -> tuple[float, float]:
    """(latency_ms, bandwidth_mbps) of the link a-b; TopologyError if they are not neighbours."""
    if not graph.has_edge(a, b):
        raise TopologyError(f"no link between '{a}' and '{b}' in topology '{graph.graph.get('name', '?')}'")
    data = graph[a][b]
    return (float(data.get("latency_ms", DEFAULT_LATENCY_MS)),
            float(data.get("bandwidth_mbps", DEFAULT_BANDWIDTH_MBPS)))
