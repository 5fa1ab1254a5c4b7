"""Human-facing views of a topology graph: a text summary, a PNG drawing and a GraphML export.

Kept apart from fedsim.topology so loading a graph never imports matplotlib.
Re-exported by fedsim.topology; this module must not import it (that would be circular).
"""
from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import networkx as nx


def summary(graph: nx.Graph) -> str:
    """Multi-line description: size, connectivity, degrees, diameter, link ranges, node degrees."""
    n, m = graph.number_of_nodes(), graph.number_of_edges()
    degrees = dict(graph.degree())
    comps = nx.number_connected_components(graph) if n else 0
    connected = comps == 1
    lines = [f"topology '{graph.graph.get('name', 'unnamed')}': {n} nodes, {m} edges, "
             + ("connected" if connected else f"disconnected ({comps} components)")]
    if n:
        vals = list(degrees.values())
        lines.append(f"degree: min {min(vals)}, mean {sum(vals) / n:.2f}, max {max(vals)}")
    # diameter is only defined for a connected graph; report the largest component's instead
    if connected:
        lines.append(f"diameter: {nx.diameter(graph)}")
    elif n:
        largest = graph.subgraph(max(nx.connected_components(graph), key=len))
        lines.append(f"diameter: n/a (disconnected; largest component's is {nx.diameter(largest)})")
    for attr, unit in (("latency_ms", "ms"), ("bandwidth_mbps", "Mbit/s")):
        vals = [float(d[attr]) for _, _, d in graph.edges(data=True) if attr in d]
        lines.append(f"{attr}: {min(vals):g}..{max(vals):g} {unit}" if vals else f"{attr}: n/a")
    listing = ", ".join(f"{v} ({d})" for v, d in degrees.items())
    lines.append("nodes (degree):")
    lines.extend(textwrap.wrap(listing, width=100, initial_indent="  ", subsequent_indent="  "))
    return "\n".join(lines)


def draw(graph: nx.Graph, path: str | Path, *, title: str | None = None) -> Path:
    """Write a PNG of the graph: labelled nodes, edge width growing with log bandwidth."""
    # Figure + Agg canvas directly, so drawing never touches pyplot's global backend/state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pos = _layout(graph)
    n = graph.number_of_nodes()
    side = min(4.0 + 0.3 * n, 16.0)
    fig = Figure(figsize=(side, side))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    edges = list(graph.edges(data=True))
    bws = [float(d.get("bandwidth_mbps", 1.0)) for _, _, d in edges]
    lo, hi = (math.log(min(bws)), math.log(max(bws))) if bws else (0.0, 0.0)
    widths = [0.8 + 3.2 * ((math.log(b) - lo) / (hi - lo) if hi > lo else 0.5) for b in bws]
    ax.add_collection(LineCollection([(pos[u], pos[v]) for u, v, _ in edges],
                                     linewidths=widths, colors="0.6", zorder=1))
    xs = [pos[v][0] for v in graph]
    ys = [pos[v][1] for v in graph]
    ax.scatter(xs, ys, s=300 if n <= 32 else 80, c="#3b75af", edgecolors="white", zorder=2)
    font = 9 if n <= 32 else 6
    for v, (x, y) in pos.items():
        ax.annotate(str(v), (x, y), xytext=(0, 9), textcoords="offset points",
                    ha="center", fontsize=font, zorder=3,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
    caption = f"edge width ~ log bandwidth ({min(bws):g}-{max(bws):g} Mbit/s)" if bws else "no edges"
    ax.set_title(title or f"{graph.graph.get('name', 'topology')}: {n} nodes, {len(edges)} edges\n{caption}",
                 fontsize=10)
    ax.set_aspect("equal")
    ax.margins(0.15)
    ax.set_axis_off()
    fig.savefig(path, format="png", dpi=100)
    return path


def _layout(graph: nx.Graph) -> dict[Any, tuple[float, float]]:
    n = graph.number_of_nodes()
    is_ring = n >= 3 and graph.number_of_edges() == n and all(d == 2 for _, d in graph.degree()) \
        and nx.is_connected(graph)
    if is_ring:  # place nodes in cycle order so no chords cross
        order, prev = [next(iter(graph))], None
        while len(order) < n:
            nxt = next(v for v in graph.neighbors(order[-1]) if v != prev)
            prev = order[-1]
            order.append(nxt)
        return nx.circular_layout(order)
    if n > 200:  # spring layout gets slow and unreadable; a circle is good enough
        return nx.circular_layout(graph)
    return nx.spring_layout(graph, seed=0, weight=None)


def write_graphml(graph: nx.Graph, path: str | Path) -> Path:
    """Write GraphML; lists/dicts become JSON text and None values are dropped (GraphML has neither)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = graph.copy()
    for attrs in [out.graph, *(d for _, d in out.nodes(data=True)), *(d for _, _, d in out.edges(data=True))]:
        for key, value in list(attrs.items()):
            if value is None:
                del attrs[key]
            else:
                attrs[key] = _graphml_scalar(value)
    nx.write_graphml(out, path)
    return path


def _graphml_scalar(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        value = value.item()  # numpy scalar -> Python scalar
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, dict, set)):
        return json.dumps(sorted(value, key=str) if isinstance(value, set) else value, default=str)
    return str(value)
