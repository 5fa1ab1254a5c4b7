"""fedsim — decentralized federated learning between hospitals.

The public API (everything else may change between versions):

    fedsim.run(config_or_path, overrides=(), progress=None) -> RunResult
    fedsim.load_config(path, overrides=(), data=None) -> dict
    fedsim.RunResult            run directory, summary, metrics rows, final models
    fedsim.Policy, Node, Received, Payload, Kind        what a user policy is written against
    fedsim.NodeData, DataRequest                        what a user dataset returns / receives
    fedsim.Option                                       how components declare their options
    fedsim.ConfigError, FedsimError, WireError, DataError

Names that need torch are imported on first use, so `import fedsim` stays light.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fedsim._version import __version__
from fedsim.config import load_config
from fedsim.errors import ConfigError, DataError, FedsimError, TopologyError, WireError
from fedsim.options import Option
from fedsim.run_result import RunResult

if TYPE_CHECKING:
    from fedsim.api import run
    from fedsim.data.node_data import NodeData
    from fedsim.data.plugin import DataRequest
    from fedsim.node import Node, Received
    from fedsim.payload import Kind, Payload
    from fedsim.policies.base import Policy

_LAZY = {
    "run": "fedsim.api",
    "Policy": "fedsim.policies.base",
    "Node": "fedsim.node",
    "Received": "fedsim.node",
    "Payload": "fedsim.payload",
    "Kind": "fedsim.payload",
    "NodeData": "fedsim.data.node_data",
    "DataRequest": "fedsim.data.plugin",
}

__all__ = ["ConfigError", "DataError", "DataRequest", "FedsimError", "Kind", "Node", "NodeData", "Option",
           "Payload", "Policy", "Received", "RunResult", "TopologyError", "WireError", "__version__",
           "load_config", "run"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fedsim' has no attribute {name!r}")
