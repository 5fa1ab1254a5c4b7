"""User datasets: `data: {dataset: "package.module:attr", ...options}`.

The contract (also in docs/plugins.md):

    def my_hospitals(request: fedsim.DataRequest) -> Mapping[str, fedsim.NodeData]: ...

`request.nodes` are the nodes this process needs (a worker asks for the nodes it hosts, a deployed
site for itself alone); `request.all_nodes` is the whole federation in topology order, for
datasets that partition one pool. The data of a node must depend only on (its name, its position
in all_nodes, seed, options), never on which other nodes are asked for in the same call, so every
worker layout gives the same federation. `NodeData.from_arrays` builds a node's split from numpy
arrays or tensors. Every node must report the same input_shape and num_classes.
Options are the other keys of `data:`; a dataset that declares `options` (fedsim.Option specs, as
a function attribute or class attribute) has unknown keys and bad values reported like built-ins.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsim.data import continual
from fedsim.data.node_data import NodeData
from fedsim.errors import ConfigError, FedsimError
from fedsim.options import options_of

GENERIC_KEYS = ("dataset", "continual")  # handled by fedsim for every dataset


@dataclass(frozen=True)
class DataRequest:
    """What fedsim asks of a dataset: which nodes' splits, with which seed and options."""

    nodes: list[str]
    all_nodes: list[str]
    seed: int
    options: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)  # relative paths in options are relative to this

    def index(self, name: str) -> int:
        """A node's position in the federation (for seeding per-node randomness)."""
        return self.all_nodes.index(name)


def validate_plugin_spec(spec: dict) -> dict:
    """The `data:` mapping of a user dataset: generic keys checked, the rest is the dataset's options."""
    from fedsim.registry import resolve
    attr = resolve("datasets", spec["dataset"])
    options = {k: v for k, v in spec.items() if k not in GENERIC_KEYS}
    options = options_of(attr).resolve(options, "data.", f"dataset {spec['dataset']}", ignore=())
    return {"dataset": spec["dataset"], "continual": continual.validate(spec.get("continual")), "options": options}


def load_plugin(s: dict, names: list[str], seed: int, wanted: set[str], base_dir: str | None) -> dict[str, NodeData]:
    from fedsim.registry import resolve
    ref = s["dataset"]
    attr = resolve("datasets", ref)
    nodes = [n for n in names if n in wanted]
    request = DataRequest(nodes, list(names), seed, dict(s["options"]), Path(base_dir or Path.cwd()))
    try:
        got = attr(request)
    except ConfigError:
        raise
    except FedsimError as exc:  # e.g. NodeData refusing x and y of different lengths
        raise ConfigError("data.dataset", ref, "a dataset returning consistent NodeData", str(exc)) from None
    except Exception as exc:
        raise ConfigError("data.dataset", ref, "a dataset returning {node name: NodeData}",
                          f"it raised {type(exc).__name__}: {exc}") from None
    if not isinstance(got, Mapping):
        raise ConfigError("data.dataset", ref, "a dataset returning {node name: NodeData}",
                          f"it returned {type(got).__name__}")
    absent = [n for n in nodes if n not in got]
    if absent:
        raise ConfigError("data.dataset", ref, "a NodeData for every requested node",
                          f"none for {', '.join(absent[:5])}")
    out = {}
    for n in nodes:
        d = got[n]
        if not isinstance(d, NodeData):
            raise ConfigError("data.dataset", ref, "fedsim.NodeData values (see NodeData.from_arrays)",
                              f"node {n!r} got {type(d).__name__}")
        out[n] = d
    shapes = {(d.input_shape, d.num_classes) for d in out.values()}
    if len(shapes) > 1:
        listed = ", ".join(f"{n}: {d.input_shape} x {d.num_classes} classes" for n, d in out.items())
        raise ConfigError("data.dataset", ref, "the same input_shape and num_classes at every node", listed)
    return out
