"""Pooled datasets: one labelled array split across nodes by a partitioner, then per node into train/test."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Sequence

import numpy as np
import torch

from fedsim.data import partition as part
from fedsim.data.node_data import NodeData
from fedsim.errors import DataError


@dataclass
class Pool:
    x: np.ndarray                     # (N, *input_shape) float32
    y: np.ndarray                     # (N,) int64 in [0, len(class_names))
    class_names: list[str]
    standardize: bool = False          # z-score features with statistics of the pooled train part


def node_indices(pool: Pool, node_names: Sequence[str], seed: int, spec: dict) -> list[np.ndarray]:
    """One index array per node by the (validated) partition spec: iid, dirichlet or shards.

    (natural partitions never pool: each hospital's own files are its node's data.)
    """
    kind, n = spec["kind"], len(node_names)
    if kind == "iid":
        return part.iid(pool.y, n, seed)
    if kind == "dirichlet":
        return part.dirichlet(pool.y, n, spec["alpha"], seed, min_samples=spec["min_samples"])
    if kind == "shards":
        return part.shards(pool.y, n, spec["shards_per_node"], seed)
    raise ValueError(f"partition kind {kind!r} does not apply to pooled data")  # spec.validate prevents this


def federate(pool: Pool, node_names: Sequence[str], seed: int, spec: dict, test_fraction: float,
             only: Collection[str]) -> dict[str, NodeData]:
    """Partition `pool` over all nodes, split each node's share, and build NodeData for `only`.

    Every node is partitioned and split even when few are wanted: the shares depend on one
    another, and standardisation needs the whole pooled train part.
    """
    splits = []
    for i, (name, idx) in enumerate(zip(node_names, node_indices(pool, node_names, seed, spec))):
        if idx.size < 2:
            raise DataError(f"node {name!r} got {idx.size} sample(s) from partition {spec['kind']!r}; "
                            "every node needs at least 2 (one train, one test)")
        tr, te = part.stratified_split(pool.y[idx], test_fraction, (seed, i))
        splits.append((idx[tr], idx[te]))
    x = pool.x
    if pool.standardize:
        train = np.concatenate([tr for tr, _ in splits])
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        x = ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
    shape = tuple(x.shape[1:])
    out = {}
    for name, (tr, te) in zip(node_names, splits):
        if name in only:
            out[name] = NodeData(name, torch.from_numpy(x[tr]), torch.from_numpy(pool.y[tr]),
                                 torch.from_numpy(x[te]), torch.from_numpy(pool.y[te]),
                                 len(pool.class_names), shape, list(pool.class_names))
    return out
