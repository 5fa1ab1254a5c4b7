"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot state, no display).

Every function takes what it draws from a Run (or compare Groups) and returns a Figure, or None
when the run has nothing to draw for it (e.g. no timing.csv for the simulated-time plot).
"""
from __future__ import annotations

import math

import networkx as nx
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fedsim.report.rundata import Run

MEAN = "#1f3b73"
FED = "#c0392b"


def _fig(w: float = 7.0, h: float = 3.6, rounds_axis: bool = False) -> tuple[Figure, object]:
    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if rounds_axis:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig, ax


def _xy(series: dict[int, float], shift: int = 1) -> tuple[list, list]:
    return [r + shift for r in series], list(series.values())


def accuracy(run: Run) -> Figure | None:
    """Each node's local accuracy (thin), their mean (bold) and the federation accuracy (dashed)."""
    local = "test_acc" if "test_acc" in run.metric_names() else run.accuracy_metric()
    if local is None:
        return None
    fig, ax = _fig(rounds_axis=True)
    nodes = run.per_node(local)
    for node in sorted(nodes)[:64]:
        ax.plot(*_xy(nodes[node]), lw=0.8, alpha=0.45)
    ax.plot(*_xy(run.mean_series(local)), color=MEAN, lw=2.4, marker="o", ms=3, label=f"{local}, mean of nodes")
    if "fed_acc" in run.metric_names() and local != "fed_acc":
        ax.plot(*_xy(run.mean_series("fed_acc")), color=FED, lw=2, ls="--", marker="s", ms=3,
                label="fed_acc (every model on every test set)")
    ax.set(xlabel="round", ylabel="accuracy", title=f"accuracy per round ({len(nodes)} nodes: thin lines)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def loss(run: Run) -> Figure | None:
    nodes = run.per_node("train_loss")
    if not nodes:
        return None
    fig, ax = _fig(rounds_axis=True)
    for node in sorted(nodes)[:64]:
        ax.plot(*_xy(nodes[node]), lw=0.8, alpha=0.45)
    ax.plot(*_xy(run.mean_series("train_loss")), color=MEAN, lw=2.4, marker="o", ms=3, label="mean of nodes")
    ax.set(xlabel="round", ylabel="train loss", title="local training loss per round")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def bytes_by_kind(run: Run) -> Figure | None:
    per_round = run.bytes_per_round()
    kinds = sorted({k for v in per_round.values() for k in v})
    if not kinds:
        return None
    fig, ax = _fig(rounds_axis=True)
    rounds = sorted(per_round)
    bottom = [0.0] * len(rounds)
    for kind in kinds:
        vals = [per_round[r].get(kind, 0) / 1e6 for r in rounds]
        ax.bar([r + 1 for r in rounds], vals, bottom=bottom, label=kind, width=0.8)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set(xlabel="round", ylabel="MB on the wire", title="bytes sent per round, by payload kind")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig


def link_heatmap(run: Run, graph: nx.Graph | None) -> Figure | None:
    """The topology with every link coloured by the bytes it carried (both directions)."""
    links = run.bytes_per_link()
    if graph is None or not links:
        return None
    from matplotlib import colormaps, colors
    from fedsim.topology_draw import _layout

    pos = _layout(graph)
    edges = list(graph.edges())
    carried = [links.get((u, v), 0) + links.get((v, u), 0) for u, v in edges]
    n = graph.number_of_nodes()
    side = min(5.0 + 0.15 * n, 12.0)
    fig, ax = _fig(side + 1.5, side)
    norm = colors.Normalize(vmin=0, vmax=max(max(carried) / 1e6, 1e-9))
    cmap = colormaps["viridis"]
    ax.add_collection(LineCollection([(pos[u], pos[v]) for u, v in edges], colors=[cmap(norm(c / 1e6)) for c in carried],
                                     linewidths=[1.5 + 5 * norm(c / 1e6) for c in carried], zorder=1))
    ax.scatter([pos[v][0] for v in graph], [pos[v][1] for v in graph], s=260 if n <= 32 else 60, c="white",
               edgecolors="#333", zorder=2)
    if n <= 48:
        for v, (x, y) in pos.items():
            ax.annotate(str(v), (x, y), ha="center", va="center", fontsize=7 if n <= 24 else 5, zorder=3)
    fig.colorbar(cmap_mappable(norm, cmap), ax=ax, label="MB carried (both directions)", shrink=0.8)
    off = sum(b for (u, v), b in links.items() if not graph.has_edge(u, v))
    ax.set_title("bytes per link on the topology" + (f" ({off / 1e6:.2f} MB relayed off-graph)" if off else ""))
    ax.set_aspect("equal")
    ax.margins(0.12)
    ax.set_axis_off()
    return fig


def cmap_mappable(norm, cmap):
    from matplotlib.cm import ScalarMappable
    return ScalarMappable(norm=norm, cmap=cmap)


def labels(run: Run) -> Figure | None:
    """Training labels per node, stacked by class."""
    nodes = [n for n in sorted(run.labels) if run.labels[n].get("train")]
    if not nodes:
        return None
    classes = max(len(run.labels[n]["train"]) for n in nodes)
    fig, ax = _fig(7.0, max(2.5, 0.28 * len(nodes) + 1.2))
    left = [0] * len(nodes)
    from matplotlib import colormaps
    cmap = colormaps["tab20" if classes > 10 else "tab10"]
    for c in range(classes):
        vals = [(run.labels[n]["train"] + [0] * classes)[c] for n in nodes]
        ax.barh(nodes, vals, left=left, color=cmap(c % cmap.N), label=str(c) if classes <= 20 else None)
        left = [a + b for a, b in zip(left, vals)]
    ax.invert_yaxis()
    ax.set(xlabel="training samples", title="label distribution per node (train split)")
    if classes <= 20:
        ax.legend(title="class", fontsize=7, ncols=min(classes, 10), loc="lower right")
    return fig


def _versus(run: Run, xs: dict[int, float], xlabel: str, title: str) -> Figure | None:
    names = run.metric_names()
    shown = [m for m in ("test_acc", "fed_acc") if m in names] or [m for m in [run.accuracy_metric()] if m]
    if not shown or not xs:
        return None
    fig, ax = _fig()
    for m in shown:
        pts = [(xs[r], v) for r, v in run.mean_series(m).items() if r in xs]
        if pts:
            ax.plot(*zip(*pts), color=FED if m == "fed_acc" else MEAN, ls="--" if m == "fed_acc" else "-",
                    marker="o", ms=3, label=m if m == "fed_acc" else f"{m}, mean of nodes")
    ax.set(xlabel=xlabel, ylabel="accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def accuracy_vs_bytes(run: Run) -> Figure | None:
    cum = {r: b / 1e6 for r, b in run.cumulative_bytes().items()}
    return _versus(run, cum, "cumulative MB on the wire", "accuracy against communication")


def accuracy_vs_time(run: Run) -> Figure | None:
    return _versus(run, run.sim_time(), "simulated wall-clock (s)",
                   "accuracy against simulated time over the topology's links")


# ------------------------------------------------------------------ sweeps
def sweep_curves(groups, metric: str, x: str = "round") -> Figure | None:
    """Each setting's mean curve over its seeds with a ±std band; x = round | sim_time | bytes."""
    fig, ax = _fig(8.0, 4.2, rounds_axis=x == "round")
    drawn = 0
    for g in groups:
        series = [r.mean_series(metric) for r in g.counted]
        rounds = sorted(set.intersection(*(set(s) for s in series))) if series else []
        if not rounds:
            continue
        xs_by_run = [{r: float(r + 1) for r in rounds} if x == "round" else
                     (run.sim_time() if x == "sim_time" else {k: v / 1e6 for k, v in run.cumulative_bytes().items()})
                     for run in g.counted]
        if any(not all(r in xr for r in rounds) for xr in xs_by_run):
            continue
        xs = [sum(xr[r] for xr in xs_by_run) / len(xs_by_run) for r in rounds]
        mean = [sum(s[r] for s in series) / len(series) for r in rounds]
        std = [math.sqrt(sum((s[r] - m) ** 2 for s in series) / len(series)) for r, m in zip(rounds, mean)]
        line, = ax.plot(xs, mean, marker="o", ms=3, label=f"{g.label} (n={len(series)})")
        ax.fill_between(xs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        color=line.get_color(), alpha=0.18)
        drawn += 1
    if not drawn:
        return None
    xlabel = {"round": "round", "sim_time": "simulated wall-clock (s), mean over seeds",
              "bytes": "cumulative MB on the wire, mean over seeds"}[x]
    ax.set(xlabel=xlabel, ylabel=metric, title=f"{metric}: mean ± std over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig
