"""Gossip on a connected graph drives every node's parameters to their common average."""
from __future__ import annotations

import numpy as np

from fedsim.runtime.backends import LocalBackend


def _consensus_distance(states: dict) -> float:
    flat = np.stack([np.concatenate([v.ravel() for v in s.values()]) for s in states.values()])
    return float(np.linalg.norm(flat - flat.mean(0), axis=1).mean())


def test_consensus_distance_shrinks(small_config):
    # different initial models, (almost) no training: only the mixing moves the parameters
    cfg = small_config(topology={"generator": "watts_strogatz", "n": 6, "k": 2, "p": 0.3, "seed": 1},
                       train__same_init=False, train__lr=1e-9, model={"name": "mlp", "hidden": [8]})
    names = [f"node{i}" for i in range(6)]
    backend = LocalBackend(cfg, names, "consensus")
    try:
        addresses = backend.call("address")
        backend.call("connect", {n: addresses[0] for n in names})
        start = dict(backend.call("model_states")[0])
        mean_before = np.mean([np.concatenate([v.ravel() for v in s.values()]) for s in start.values()], 0)
        distances = [_consensus_distance(start)]
        for r in range(6):
            backend.call("run_round", r, False)
            distances.append(_consensus_distance(backend.call("model_states")[0]))
        after = backend.call("model_states")[0]
        mean_after = np.mean([np.concatenate([v.ravel() for v in s.values()]) for s in after.values()], 0)
    finally:
        backend.close()
    assert all(b < a for a, b in zip(distances, distances[1:])), distances
    assert distances[-1] < 0.2 * distances[0]
    # doubly stochastic mixing keeps the average where it was
    np.testing.assert_allclose(mean_after, mean_before, atol=1e-4)
