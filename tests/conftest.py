"""Shared fixtures: one real Ray instance per test session, small federation configs."""
from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# No per-example deadline (a loaded 2-core CI box is slow, not wrong); in CI the examples are
# derandomized so a red run can be reproduced exactly.
settings.register_profile("fedsim", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("fedsim"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "fedsim")

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ray_session():
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=256 * 2**20, log_to_driver=False,
                 configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def small_config(tmp_path):
    """A tiny but real federation: returns a function building a validated config with overrides."""
    from fedsim.config import load_config

    def make(**data):
        base = {
            "name": "t",
            "seed": 0,
            "rounds": 2,
            "topology": {"generator": "ring", "n": 4},
            "data": {"dataset": "synthmed", "samples_per_node": 80, "num_classes": 2},
            "model": {"name": "cnn"},
            "train": {"epochs": 1, "batch_size": 16, "lr": 0.05},
            "policy": {"name": "gossip"},
            "runtime": {"kind": "local", "recv_timeout_s": 30.0},
            "output": {"dir": str(tmp_path / "runs"), "progress": False},
        }
        for key, value in data.items():
            section = key.split("__")
            node = base
            for part in section[:-1]:
                node = node.setdefault(part, {})
            node[section[-1]] = value
        return load_config(data=base)

    return make
