"""Node policies, one per file. `make_policy(cfg["policy"])` builds the one a config names."""
from __future__ import annotations

from fedsim.errors import ConfigError
from fedsim.policies.base import Policy
from fedsim.policies.centralized import CentralizedPolicy
from fedsim.policies.fedavg import FedAvgPolicy
from fedsim.policies.gossip import GossipPolicy
from fedsim.policies.local import LocalPolicy

POLICIES: dict[str, type[Policy]] = {
    p.name: p for p in (LocalPolicy, GossipPolicy, FedAvgPolicy, CentralizedPolicy)
}


def policy_class(name: str) -> type[Policy]:
    try:
        return POLICIES[name]
    except KeyError:
        raise ConfigError("policy.name", name, " | ".join(sorted(POLICIES))) from None


def make_policy(spec: dict) -> Policy:
    return policy_class(spec.get("name"))(spec)
