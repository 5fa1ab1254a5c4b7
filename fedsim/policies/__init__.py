"""Node policies, one per file in this package.

Every module here is imported once and each `Policy` subclass with a `name` is registered as a
built-in, so adding a policy to fedsim is adding a file. User policies need no registration: the
config names them by import path or entry point (fedsim/registry.py).
"""
from __future__ import annotations

import importlib
import pkgutil

from fedsim.policies.base import Policy

_BUILTIN: dict[str, type[Policy]] = {}


def builtin_policies() -> dict[str, type[Policy]]:
    if not _BUILTIN:
        for info in pkgutil.iter_modules(__path__):
            module = importlib.import_module(f"{__name__}.{info.name}")
            for obj in vars(module).values():
                if isinstance(obj, type) and issubclass(obj, Policy) and obj.name != "base" \
                        and obj.__module__ == module.__name__:
                    if obj.name in _BUILTIN and _BUILTIN[obj.name] is not obj:
                        raise RuntimeError(f"two policies named {obj.name!r}: {_BUILTIN[obj.name]} and {obj}")
                    _BUILTIN[obj.name] = obj
    return _BUILTIN


def policy_names() -> list[str]:
    """The built-in policies' short names."""
    return sorted(builtin_policies())


def policy_class(name: str) -> type[Policy]:
    """The class `policy.name` names: a built-in, 'package.module:Class' or an entry point."""
    from fedsim.registry import resolve
    return resolve("policies", name)


def make_policy(spec: dict) -> Policy:
    return policy_class(spec.get("name"))(spec)
