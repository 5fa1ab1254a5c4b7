"""User-facing errors. The CLI prints these as one clear message and exits with code 2 (no traceback)."""
from __future__ import annotations

from typing import Any


class FedsimError(Exception):
    """Base for every error caused by user input (config, topology, data, files, wire peers)."""


class ConfigError(FedsimError):
    """A configuration value is wrong: names the key, the bad value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str, hint: str = "") -> None:
        self.key, self.value, self.allowed = key, value, allowed
        msg = f"config key '{key}': got {value!r}; allowed: {allowed}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class TopologyError(FedsimError):
    """The topology file, generator spec or graph is unusable."""


class DataError(FedsimError):
    """A dataset, file or partition request cannot be satisfied."""


class WireError(FedsimError):
    """A message could not be encoded, sent, received or was refused by the peer."""
