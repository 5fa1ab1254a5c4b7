"""Node policies, one per file in this package.

Every module here is imported once and each `Policy` subclass with a `name` is registered, so
adding a policy is adding a file. `make_policy(cfg["policy"])` builds the one a config names.
"""
from __future__ import annotations

import importlib
import pkgutil

from fedsim.errors import ConfigError
from fedsim.policies.base import Policy

_REGISTRY: dict[str, type[Policy]] = {}


def _discover() -> dict[str, type[Policy]]:
    if not _REGISTRY:
        for info in pkgutil.iter_modules(__path__):
            module = importlib.import_module(f"{__name__}.{info.name}")
            for obj in vars(module).values():
                if isinstance(obj, type) and issubclass(obj, Policy) and obj.name != "base" \
                        and obj.__module__ == module.__name__:
                    if obj.name in _REGISTRY and _REGISTRY[obj.name] is not obj:
                        raise RuntimeError(f"two policies named {obj.name!r}: {_REGISTRY[obj.name]} and {obj}")
                    _REGISTRY[obj.name] = obj
    return _REGISTRY


def policy_names() -> list[str]:
    return sorted(_discover())


def policy_class(name: str) -> type[Policy]:
    policies = _discover()
    if name not in policies:
        raise ConfigError("policy.name", name, " | ".join(sorted(policies)))
    return policies[name]


def make_policy(spec: dict) -> Policy:
    return policy_class(spec.get("name"))(spec)
