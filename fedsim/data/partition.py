"""Partitioners: split a pooled labelled dataset into per-node index arrays.

Pure functions of a label array and an integer seed. Every partitioner returns one sorted int64
index array per node; the arrays are disjoint and together cover exactly the samples asked for
(all of them, except `natural`, which covers the samples whose source is one of the node names).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from fedsim.errors import DataError

# Distinct streams so that, e.g., the partition and the test split never reuse random numbers
# (and differ from synthmed's per-node streams 1..5).
_IID, _DIRICHLET, _SHARDS, _SPLIT = 101, 102, 103, 104


def _rng(seed: int | tuple[int, ...], stream: int) -> np.random.Generator:
    """A generator for (seed..., stream); a tuple seed such as (seed, node_index) derives sub-streams."""
    parts = tuple(seed) if isinstance(seed, (tuple, list)) else (seed,)
    return np.random.default_rng([*(int(p) for p in parts), stream])


def _check(labels: np.ndarray, num_nodes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"labels must be a 1-d array, got shape {labels.shape}")
    if num_nodes < 1:
        raise DataError(f"cannot partition across {num_nodes} nodes")
    if labels.shape[0] < num_nodes:
        raise DataError(f"cannot partition {labels.shape[0]} samples across {num_nodes} nodes: "
                        "every node needs at least one sample")
    return labels


def _sorted(parts: list[np.ndarray]) -> list[np.ndarray]:
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def iid(labels: np.ndarray, num_nodes: int, seed: int) -> list[np.ndarray]:
    """Uniformly random split into near-equal sizes (sizes differ by at most one)."""
    labels = _check(labels, num_nodes)
    perm = _rng(seed, _IID).permutation(labels.shape[0])
    return _sorted(np.array_split(perm, num_nodes))


def dirichlet(labels: np.ndarray, num_nodes: int, alpha: float, seed: int,
              min_samples: int = 1, max_tries: int = 100) -> list[np.ndarray]:
    """Label skew: each class is spread over nodes with proportions ~ Dirichlet(alpha).

    Small alpha gives nodes dominated by few classes. Draws are repeated (deterministically, same
    generator) until every node has `min_samples`; if that never happens within `max_tries`, the
    last draw is repaired by moving samples from the largest nodes, so the minimum is guaranteed.
    """
    labels = _check(labels, num_nodes)
    n = labels.shape[0]
    if not alpha > 0:
        raise DataError(f"dirichlet alpha must be > 0, got {alpha}")
    if min_samples * num_nodes > n:
        raise DataError(f"cannot give each of {num_nodes} nodes at least {min_samples} samples: "
                        f"only {n} samples (lower data.partition.min_samples or use fewer nodes)")
    rng = _rng(seed, _DIRICHLET)
    classes = np.unique(labels)
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    owner = np.empty(n, dtype=np.int64)
    for _ in range(max_tries):
        props = rng.dirichlet(np.full(num_nodes, float(alpha)), size=len(classes))
        for idx, p in zip(members, props):
            # Sample j of a class goes to the node whose cumulative share covers its midpoint.
            q = (np.arange(idx.shape[0]) + 0.5) / idx.shape[0]
            owner[idx] = np.minimum(np.searchsorted(np.cumsum(p), q, side="right"), num_nodes - 1)
        if np.bincount(owner, minlength=num_nodes).min() >= min_samples:
            break
    else:
        _repair(owner, num_nodes, min_samples, rng)
    return _sorted([np.flatnonzero(owner == k) for k in range(num_nodes)])


def _repair(owner: np.ndarray, num_nodes: int, min_samples: int, rng: np.random.Generator) -> None:
    """Top up nodes below `min_samples` with random samples of the currently largest nodes."""
    sizes = np.bincount(owner, minlength=num_nodes)
    for k in np.flatnonzero(sizes < min_samples):
        while sizes[k] < min_samples:
            donor = int(np.argmax(sizes))
            take = min(min_samples - sizes[k], sizes[donor] - min_samples)
            moved = rng.choice(np.flatnonzero(owner == donor), size=take, replace=False)
            owner[moved] = k
            sizes[donor] -= take
            sizes[k] += take


def shards(labels: np.ndarray, num_nodes: int, shards_per_node: int, seed: int) -> list[np.ndarray]:
    """Pathological skew: sort by label, cut into num_nodes*shards_per_node shards, deal them out."""
    labels = _check(labels, num_nodes)
    if shards_per_node < 1:
        raise DataError(f"shards_per_node must be >= 1, got {shards_per_node}")
    n, num_shards = labels.shape[0], num_nodes * shards_per_node
    if num_shards > n:
        raise DataError(f"cannot cut {n} samples into {num_shards} shards "
                        f"({num_nodes} nodes x {shards_per_node} shards_per_node)")
    rng = _rng(seed, _SHARDS)
    order = np.lexsort((rng.random(n), labels))  # by label, random order within a label
    pieces = np.array_split(order, num_shards)
    deal = rng.permutation(num_shards).reshape(num_nodes, shards_per_node)
    return _sorted([np.concatenate([pieces[s] for s in row]) for row in deal])


def natural(sources: Sequence, names: Sequence) -> list[np.ndarray]:
    """The samples whose source id (e.g. hospital folder) equals each node name, in `names` order."""
    sources = np.asarray(sources)
    if sources.ndim != 1:
        raise DataError(f"sources must be a 1-d array, got shape {sources.shape}")
    return _sorted([np.flatnonzero(sources == name) for name in names])


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int | tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices with round(n*test_fraction) test samples, each class split in proportion.

    Each sample gets a key (rank within its shuffled class + uniform jitter) / class size, which
    spreads every class evenly over [0, 1); the lowest keys form the test set. A class too small to
    split lands in the test set with probability test_fraction. With n >= 2 and a positive
    fraction both parts are non-empty.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if not 0.0 <= test_fraction < 1.0:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction}")
    n_test = int(round(n * test_fraction))
    if test_fraction > 0 and n >= 2:
        n_test = min(max(n_test, 1), n - 1)
    n_test = min(n_test, max(n - 1, 0))
    rng = _rng(seed, _SPLIT)
    perm = rng.permutation(n)
    order = perm[np.argsort(labels[perm], kind="stable")]
    lab = labels[order]
    starts = np.searchsorted(lab, lab, side="left")
    counts = np.searchsorted(lab, lab, side="right") - starts
    key = (np.arange(n) - starts + rng.random(n)) / counts
    test = order[np.argsort(key, kind="stable")[:n_test]]
    mask = np.zeros(n, dtype=bool)
    mask[test] = True
    return np.flatnonzero(~mask).astype(np.int64), np.flatnonzero(mask).astype(np.int64)
