"""FedER's buffer (a node's generator + a fixed set of labelled latents) and its random ring.

Helpers for fedsim/policies/feder.py: building the buffer privately, putting it on the wire as
GENERATOR (weights + latents) or SAMPLES (the images), regenerating it on the receiving side,
drawing replay batches from it, and the per-round ring every node computes identically.
"""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import torch

from fedsim.errors import TopologyError, WireError
from fedsim.models.gan import build_gan, generate
from fedsim.payload import Kind, Payload
from fedsim.privacy.ksame import k_same
from fedsim.privacy.latent_walk import plan_walk
from fedsim.privacy.membership import membership_attack
from fedsim.privacy.near_duplicate import nearest_distances, typical_gap

PRIVACY_MODES = ("none", "ksame", "walk", "ksame_walk")
# The identity classifier's temperature is the typical real-to-real gap / this: a real record is then
# recognised as itself with probability ~1 - N·e^-5, so "uniform" means "not like any one record".
IDENTITY_SHARPNESS = 5.0


# ----------------------------------------------------------------------------- building
def class_quota(y_real: torch.Tensor, size: int) -> dict[int, int]:
    """Buffer labels: balanced over the classes this node has data for (the GAN knows no others)."""
    classes = torch.unique(y_real).tolist()
    base, extra = divmod(size, len(classes))
    return {c: base + (i < extra) for i, c in enumerate(classes)}


def private_latents(G, D, x_real, y_real, c: int, n: int, opts: dict, gen: torch.Generator, tau: float):
    """n latents of class c, made private as `opts['privacy']` says; returns (z, walk stats)."""
    mode, latent, stats = opts["privacy"], G.latent, {}
    if mode == "none":
        return torch.randn(n, latent, generator=gen), stats
    walk = mode in ("walk", "ksame_walk")
    m = opts["walk_steps"]
    pool = 2 * math.ceil(n / m) if walk else n       # walks need two endpoints per m points
    z = torch.randn(max(pool, opts["k"]), latent, generator=gen)
    if mode in ("ksame", "ksame_walk"):
        z, _ = k_same(z, torch.full((len(z),), c), opts["k"], gen)
    if not walk:
        return z[:n], stats
    half = pool // 2
    inner, stats = plan_walk(G, z[:half], z[half:pool], c, x_real[y_real == c], steps=m,
                             iters=opts["walk_iters"], tau=tau, D=D)
    return inner[:n], stats


def build_buffer(G, D, x_real, y_real, opts: dict, seed: int):
    """The node's buffer (z, y, x) and what it reveals: nearest-real distances, attack accuracy."""
    gen = torch.Generator().manual_seed(seed)
    x_real = x_real.contiguous()
    gap = typical_gap(x_real)
    threshold = opts["dup_ratio"] * gap
    zs, ys, xs, walk_stats, rejected = [], [], [], [], 0
    for c, n in class_quota(y_real, opts["buffer_size"]).items():
        got, tries = 0, 0
        while got < n and tries < 5:                  # refill what the near-duplicate filter rejects
            z, st = private_latents(G, D, x_real, y_real, c, n - got, opts, gen, tau=gap / IDENTITY_SHARPNESS)
            y = torch.full((len(z),), c, dtype=torch.long)
            x = generate(G, z, y)
            keep = nearest_distances(x, x_real) >= threshold
            rejected += int((~keep).sum())
            zs.append(z[keep]), ys.append(y[keep]), xs.append(x[keep])
            got, tries = got + int(keep.sum()), tries + 1
            walk_stats.append(st)
    z, y, x = torch.cat(zs), torch.cat(ys), torch.cat(xs)
    report = {"buffer_size": float(len(y)), "buffer_rejected": float(rejected), "real_gap": gap}
    for key in ("walk_identity_kl_start", "walk_identity_kl"):
        vals = [s[key] for s in walk_stats if key in s]
        if vals:
            report[key] = float(np.mean(vals))
    return z, y, x, report


def privacy_report(G, x_shared, x_train, x_test, y_train, seed: int) -> dict[str, float]:
    """How private the shared samples are, next to raw GAN samples (plain N(0, I) latents) of the same size."""
    gen = torch.Generator().manual_seed(seed + 17)
    quota = class_quota(y_train, len(x_shared))
    y_raw = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in quota.items()])
    x_raw = generate(G, torch.randn(len(y_raw), G.latent, generator=gen), y_raw)
    out = {}
    for tag, xs in (("shared", x_shared), ("raw", x_raw)):
        mia = membership_attack(xs, x_train, x_test, seed=seed)
        out[f"{tag}_mia_acc"] = mia["mia_acc"]
        out[f"{tag}_nn_dist"] = float(nearest_distances(xs, x_train).mean())
        out[f"{tag}_nn_dist_min"] = float(nearest_distances(xs, x_train).min())
    return out


# ----------------------------------------------------------------------------- the wire
def buffer_payload(share: str, G, z, y, x, owner: str) -> Payload:
    """GENERATOR: generator weights + labelled latents (regenerated on arrival); SAMPLES: the images."""
    meta = {"owner": owner, "latent": str(G.latent), "width": str(getattr(G, "width", 0)), "count": str(len(y))}
    if share == "samples":
        return Payload(Kind.SAMPLES, {"x": x, "y": y}, meta)
    tensors = {f"g.{k}": v.detach().cpu() for k, v in G.state_dict().items()}
    return Payload(Kind.GENERATOR, {**tensors, "z": z, "y": y}, meta)


def buffer_from_payload(payload: Payload, shape, num_classes: int, gan_width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of a received buffer; for GENERATOR payloads rebuild the sender's generator and run it."""
    t = payload.tensors
    y = torch.as_tensor(t["y"]).long()
    if payload.kind == Kind.SAMPLES:
        return torch.as_tensor(t["x"]).float(), y
    if payload.kind != Kind.GENERATOR:
        raise WireError(f"FedER buffer must be GENERATOR or SAMPLES, got {payload.kind.name}")
    G, _ = build_gan(shape, num_classes, int(payload.meta["latent"]), gan_width)
    state = {k[2:]: torch.as_tensor(v) for k, v in t.items() if k.startswith("g.")}
    G.load_state_dict(state)
    return generate(G, torch.as_tensor(t["z"]).float(), y), y


class ReplaySampler:
    """`extra_batches` for Node.train: round(ratio * n) buffer samples drawn uniformly per real batch of n."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, ratio: float, generator: torch.Generator) -> None:
        self.x, self.y, self.ratio, self.generator = x, y, ratio, generator

    def __call__(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        m = int(round(self.ratio * n))
        idx = torch.randint(len(self.y), (m,), generator=self.generator)
        return self.x[idx], self.y[idx]


# ----------------------------------------------------------------------------- routing
def draw_ring(graph: nx.Graph, seed: int, rnd: int, max_steps: int = 20000) -> dict[str, str]:
    """successor[node] for round `rnd`: a random ring over all nodes using only graph edges.

    Every node calls this with the same (graph, seed, round) and gets the same ring, so it knows
    whom to send to and whom to expect. We look for a Hamiltonian cycle by randomised depth-first
    search; where the graph has none (or the search is too long) we fall back to a random cycle
    cover (each node sends to one neighbour and hears from one), found as a perfect matching.
    """
    nodes = sorted(graph.nodes)
    rng = np.random.default_rng([int(seed), int(rnd), 0xFEDE])
    if len(nodes) == 2:
        a, b = nodes
        if not graph.has_edge(a, b):
            raise TopologyError("feder needs the two nodes to be linked")
        return {a: b, b: a}
    start = nodes[int(rng.integers(len(nodes)))]
    path, steps = [start], 0
    stack = [list(rng.permutation(sorted(graph.neighbors(start))))]
    on_path = {start}
    while stack and steps < max_steps:
        steps += 1
        if len(path) == len(nodes) and graph.has_edge(path[-1], start):
            return {path[i]: path[(i + 1) % len(path)] for i in range(len(path))}
        options = stack[-1]
        nxt = None
        while options:
            cand = options.pop()
            if cand not in on_path:
                nxt = cand
                break
        if nxt is None:
            on_path.discard(path.pop())
            stack.pop()
            continue
        path.append(nxt), on_path.add(nxt)
        stack.append(list(rng.permutation(sorted(graph.neighbors(nxt)))))
    return _cycle_cover(graph, nodes, rng)


def _cycle_cover(graph: nx.Graph, nodes: list[str], rng: np.random.Generator) -> dict[str, str]:
    order = list(rng.permutation(nodes))
    b = nx.Graph()
    b.add_nodes_from((("out", n) for n in order), bipartite=0)
    b.add_nodes_from((("in", n) for n in order), bipartite=1)
    for u in order:
        for v in rng.permutation(sorted(graph.neighbors(u))):
            b.add_edge(("out", u), ("in", v))
    match = nx.bipartite.hopcroft_karp_matching(b, top_nodes=[("out", n) for n in order])
    succ = {u: match[("out", u)][1] for u in nodes if ("out", u) in match}
    if len(succ) != len(nodes):
        raise TopologyError("feder routes every node's model to one neighbour and receives one back; this graph "
                            "has no such assignment (no ring or cycle cover along its edges, e.g. a star or tree "
                            "with more than two nodes); use a ring, full or denser topology")
    return succ
