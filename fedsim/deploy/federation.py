"""The federation file: an experiment config plus where each hospital's node lives.

    name: cardiology
    rounds: 20
    topology: {nodes: [hospital-a, hospital-b, hospital-c], edges: [[hospital-a, hospital-b], ...]}
    data: {...}; model: {...}; train: {...}; policy: {name: gossip}
    nodes:
      hospital-a: {address: "10.1.0.11:50051", data: {root: /data}, gpu: false, data_dir: /srv/hospital-a}
      hospital-b: {address: "hospital-b:50051"}
    deploy: {certs: certs, startup_timeout_s: 60, image: "fedsim:latest"}

Every site gets the same file; `fedsim node --name X` picks its own entry. The topology's node
names must be exactly the `nodes:` keys: the topology decides who may talk to whom (mTLS
authorization), `nodes:` says where they listen.
"""
from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from fedsim.config import read_yaml_mapping, validate
from fedsim.errors import ConfigError
from fedsim.topology import load_topology

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
NODE_KEYS = {"address": None, "listen": None, "data": None, "gpu": False, "data_dir": None}
DEPLOY_DEFAULTS = {"certs": "certs", "startup_timeout_s": 60.0, "image": "fedsim:latest",
                   "output": "runs", "data_mount": "/data", "restart": "on-failure"}
# on-failure by default: `always`/`unless-stopped` would also restart a node that finished its rounds,
# which would then run the whole federation again on its own.
RESTART_CHOICES = ("no", "always", "on-failure", "unless-stopped")


@dataclass
class NodeSpec:
    name: str
    address: str            # how peers reach this node: host:port
    listen: str             # where its server binds (default: the address)
    host: str
    port: int
    data: dict = field(default_factory=dict)   # overrides merged into the data section for this node
    gpu: bool = False
    data_dir: str | None = None                # host folder mounted read-only at deploy.data_mount (compose)


@dataclass
class Federation:
    path: Path
    cfg: dict                 # validated experiment config (as `fedsim run` would see it)
    graph: nx.Graph
    nodes: dict[str, NodeSpec]
    deploy: dict

    @property
    def names(self) -> list[str]:
        return list(self.graph.nodes)

    def node(self, name: str) -> NodeSpec:
        if name not in self.nodes:
            raise ConfigError("--name", name, f"a node of {self.path.name}: {', '.join(self.nodes)}")
        return self.nodes[name]

    def node_config(self, name: str) -> dict:
        """The config this node runs: the shared one with its `data:` overrides merged in."""
        cfg = copy.deepcopy(self.cfg)
        cfg["data"] = {**cfg["data"], **self.node(name).data}
        return cfg

    def directory(self) -> dict[str, str]:
        return {n: s.address for n, s in self.nodes.items()}

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.path.parent / p


def split_address(key: str, address) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port), with a clear error naming the key."""
    allowed = "host:port, e.g. 10.0.0.5:50051, hospital-a:50051 or [fd00::5]:50051"
    if not isinstance(address, str):
        raise ConfigError(key, address, allowed)
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([A-Za-z0-9_.-]+):(\d+)", address)
    if not m:
        raise ConfigError(key, address, allowed)
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    if m.group(1):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(key, address, allowed, "not an IPv6 address in brackets") from None
    if not 1 <= int(port) <= 65535:
        raise ConfigError(key, address, allowed, "port must be 1..65535")
    return host, int(port)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def load_federation_file(path, overrides=()) -> Federation:
    raw = read_yaml_mapping(path, "--config", "an existing federation YAML file")
    return parse_federation(raw, Path(path), overrides)


def parse_federation(raw: dict, path: Path, overrides=()) -> Federation:
    raw = copy.deepcopy(raw)
    nodes_raw = raw.pop("nodes", None)
    deploy_raw = raw.pop("deploy", None) or {}
    if "topology" not in raw:
        raise ConfigError("topology", None, "the graph among the nodes: {nodes: [...], edges: [[a, b], ...]}, "
                          "a generator with names:, or a topology file", "a federation file must name its topology")
    if not isinstance(nodes_raw, dict) or not nodes_raw:
        raise ConfigError("nodes", nodes_raw, "a mapping node name -> {address: host:port, data?, listen?, gpu?, data_dir?}")
    from fedsim.config import _apply_override  # same --set syntax as `fedsim run`
    for item in overrides:
        _apply_override(raw, item)
    raw["_base_dir"] = str(path.resolve().parent)
    cfg = validate(raw)
    graph = load_topology(cfg["topology"], base_dir=cfg["_base_dir"])
    in_graph, in_nodes = set(map(str, graph.nodes)), set(map(str, nodes_raw))
    if in_graph != in_nodes:
        raise ConfigError("nodes", sorted(in_nodes), f"exactly the topology's nodes: {', '.join(sorted(in_graph))}",
                          f"only in nodes: {sorted(in_nodes - in_graph)}; only in topology: {sorted(in_graph - in_nodes)}")
    nodes = {name: _node_spec(str(name), nodes_raw[name]) for name in graph.nodes}
    seen: dict[str, str] = {}
    for spec in nodes.values():
        if spec.address in seen:
            raise ConfigError(f"nodes.{spec.name}.address", spec.address, "a distinct address per node",
                              f"{seen[spec.address]} has it too")
        seen[spec.address] = spec.name
    return Federation(path, cfg, graph, nodes, _deploy(deploy_raw))


def _node_spec(name: str, raw) -> NodeSpec:
    if not NAME_RE.match(name):
        raise ConfigError("nodes", name, "node names of letters, digits, '.', '_', '-' (max 63, starting alphanumeric)",
                          "they become certificate names and container names")
    if not isinstance(raw, dict):
        raise ConfigError(f"nodes.{name}", raw, "a mapping with address: host:port")
    for key in raw:
        if key not in NODE_KEYS:
            raise ConfigError(f"nodes.{name}.{key}", raw[key], ", ".join(NODE_KEYS), "unknown key")
    if "address" not in raw:
        raise ConfigError(f"nodes.{name}.address", None, "host:port where the peers reach this node")
    host, port = split_address(f"nodes.{name}.address", raw["address"])
    listen = raw.get("listen") or raw["address"]
    split_address(f"nodes.{name}.listen", listen)
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"nodes.{name}.data", data, "a mapping of data keys that differ at this site (e.g. root: /data)")
    gpu = raw.get("gpu", False)
    if not isinstance(gpu, bool):
        raise ConfigError(f"nodes.{name}.gpu", gpu, "true or false")
    data_dir = raw.get("data_dir")
    if data_dir is not None and not isinstance(data_dir, str):
        raise ConfigError(f"nodes.{name}.data_dir", data_dir, "a host folder path")
    return NodeSpec(name, raw["address"], listen, host, port, dict(data), gpu, data_dir)


def _deploy(raw) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError("deploy", raw, f"a mapping with keys {', '.join(DEPLOY_DEFAULTS)}")
    for key in raw:
        if key not in DEPLOY_DEFAULTS:
            raise ConfigError(f"deploy.{key}", raw[key], ", ".join(DEPLOY_DEFAULTS), "unknown key")
    out = {**DEPLOY_DEFAULTS, **raw}
    t = out["startup_timeout_s"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or t < 0:
        raise ConfigError("deploy.startup_timeout_s", t, "a number of seconds >= 0")
    if out["restart"] not in RESTART_CHOICES:
        raise ConfigError("deploy.restart", out["restart"], ", ".join(RESTART_CHOICES))
    for key in ("certs", "image", "output", "data_mount"):
        if not isinstance(out[key], str) or not out[key]:
            raise ConfigError(f"deploy.{key}", out[key], "a non-empty string")
    return out
