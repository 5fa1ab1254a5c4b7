"""Reading topology files: fedsim YAML, GraphML, GML and edge lists, with errors that name the file and line.

`fedsim.topology.load_topology` validates what these readers return.
"""
from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import yaml

from fedsim.errors import TopologyError

LINK_ATTRS = ("latency_ms", "bandwidth_mbps")


def read_yaml(path: Path) -> dict:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:  # its text carries "line N, column M"
        raise TopologyError(f"cannot parse topology file {path}: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError(f"cannot read topology file {path}: {exc}") from exc
    if not isinstance(content, dict):
        raise TopologyError(f"{path}: expected a mapping with nodes/edges or generator, got {type(content).__name__}")
    return content


def read_graph_file(path: Path) -> nx.Graph:
    readers = {".graphml": nx.read_graphml, ".xml": nx.read_graphml, ".gml": read_gml,
               ".edgelist": read_edgelist, ".txt": read_edgelist, ".csv": read_edgelist}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise TopologyError(f"{path}: unsupported topology file type '{path.suffix}'; "
                            f"supported: .yaml, .yml, {', '.join(readers)}")
    try:
        return reader(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError(f"cannot read topology file {path}: {exc}") from exc
    except (nx.NetworkXError, ET.ParseError, ValueError, KeyError, TypeError) as exc:  # text has line when known
        raise TopologyError(f"cannot parse topology file {path}: {exc}") from exc


def read_gml(path: Path) -> nx.Graph:
    try:
        return nx.read_gml(path)  # nodes named by their labels; networkx rejects duplicate labels
    except nx.NetworkXError as exc:
        if "has no 'label'" not in str(exc):
            raise
        return nx.read_gml(path, label="id")  # unlabelled GML: fall back to the numeric ids


def read_edgelist(path: Path) -> nx.Graph:
    """Rows ``a b [latency_ms [bandwidth_mbps]]`` split on commas or whitespace, ``#`` comments,
    an optional header row naming the columns, or networkx's ``a b {'latency_ms': ..}`` rows."""
    g, columns, first, seen = nx.Graph(), list(LINK_ATTRS), True, {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{lineno}"
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[2].startswith("{"):
            try:
                attrs = ast.literal_eval(parts[2])
            except (ValueError, SyntaxError) as exc:
                raise TopologyError(f"{where}: cannot parse edge attributes {parts[2]!r}: {exc}") from exc
            if not isinstance(attrs, dict):
                raise TopologyError(f"{where}: edge attributes must be a {{...}} mapping, got {parts[2]!r}")
        else:
            parts = [c.strip() for c in line.split("," if "," in line else None)]
            header = parts[0].lower() in ("source", "src", "from") or (
                len(parts) > 2 and set(parts[2:]) <= set(LINK_ATTRS))
            if first and header:
                columns, first = parts[2:], False
                continue
            if len(parts) > 2 + len(columns):
                raise TopologyError(f"{where}: {len(parts)} columns, expected at most {2 + len(columns)} "
                                    f"(source, target, {', '.join(columns)})")
            attrs = dict(zip(columns, parts[2:]))
        first = False
        if len(parts) < 2:
            raise TopologyError(f"{where}: expected 'source target [latency_ms [bandwidth_mbps]]', got {line!r}")
        a, b = parts[0], parts[1]
        if a == b:
            raise TopologyError(f"{where}: self loop on node '{a}'")
        if frozenset((a, b)) in seen:
            raise TopologyError(f"{where}: duplicate edge ({a}, {b}), first on line {seen[frozenset((a, b))]}")
        seen[frozenset((a, b))] = lineno
        g.add_edge(a, b, **attrs)
    return g
