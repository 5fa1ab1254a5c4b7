"""Experiment configuration: YAML in, validated nested dict out, with `--set key=value` overrides.

The schema is the DEFAULTS tree below: every key a user may write appears there with its default.
Sections whose contents belong to another module (``data``, ``policy`` options, ``model`` options)
are checked by that module, which raises ConfigError with the full key path.
"""
from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Iterable

import yaml

from fedsim.errors import ConfigError

# Sections whose keys are open (validated by their owner module, not here).
OPEN_SECTIONS = {"data", "model", "policy"}

DEFAULTS: dict[str, Any] = {
    "name": "experiment",
    "seed": 0,
    "rounds": 10,
    # relative paths (data, topology files, plugins.paths) are relative to this folder;
    # null = the config file's folder. A run's config.yaml records it, so it re-runs from anywhere.
    "base_dir": None,
    "topology": "ring8",
    "data": {"dataset": "synthmed"},
    "model": {"name": "cnn"},
    "train": {
        "epochs": 1,
        "batch_size": 32,
        "lr": 0.01,
        "optimizer": "sgd",            # sgd | adam | adamw | 'package.module:attr'
        "optimizer_options": {},       # extra keyword arguments of the optimizer (e.g. betas)
        "momentum": 0.0,               # sgd only
        "weight_decay": 0.0,
        "loss": "cross_entropy",       # cross_entropy | 'package.module:attr'
        "loss_options": {},
        "same_init": True,
        "shuffle": True,               # false: batches in data order (to replay another framework's run exactly)
    },
    "policy": {"name": "gossip"},
    "privacy": {"dp": None},
    "runtime": {
        "kind": "ray",
        "workers": "auto",
        "cpus_per_worker": 1,
        "gpus_per_worker": 0.0,
        "address": None,
        "transport": "grpc",           # grpc: sockets for every message; inproc: in-process within a worker, gRPC between workers
        "scheduler": "auto",           # threads (one per node) | tasks (a waiting node holds no thread) | auto
        "host": "127.0.0.1",
        "recv_timeout_s": 120.0,
        "send_timeout_s": 60.0,
        "max_message_mb": 2048,
        "object_store_mb": 256,
    },
    # federation_every: every model on every test set each N rounds and in the last round (0 = never);
    # federation_sample: score each model on this many test sets (seeded sample) instead of all
    "eval": {"every": 1, "federation_every": 1, "federation_sample": None},
    "output": {"dir": "runs", "progress": True, "stamp": None, "save_models": True},
    # user code: extra folders to import 'package.module:attr' components from (besides the
    # config file's folder and the current directory); shipped to every worker
    "plugins": {"paths": []},
}

DP_DEFAULTS = {"epsilon": 8.0, "delta": 1e-5, "max_grad_norm": 1.0, "auto_fix": True}

CHOICES = {
    "runtime.kind": ("ray", "local"),
    "runtime.transport": ("grpc", "inproc"),
    "runtime.scheduler": ("auto", "threads", "tasks"),
}
# mappings whose keys belong to the component they configure (checked when it is built)
FREE_MAPPINGS = {"train.optimizer_options", "train.loss_options"}


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = (), data: dict | None = None) -> dict:
    """Read YAML (or take `data`), apply `key=value` overrides, fill defaults and validate."""
    raw: dict = {}
    if path is not None:
        raw = read_yaml_mapping(path, "config", "an existing YAML file")
        raw.setdefault("_base_dir", str(Path(path).resolve().parent))
        if isinstance(raw.get("base_dir"), str):  # an explicit base_dir wins over the file's folder
            raw["_base_dir"] = str((Path(path).resolve().parent / raw["base_dir"]).resolve())
    if data:
        raw = _merge(raw, copy.deepcopy(data))
    for item in overrides:
        _apply_override(raw, item)
    return validate(raw)


def read_yaml_mapping(path: str | os.PathLike, key: str, what: str) -> dict:
    """A YAML file whose top level is a mapping; ConfigError under `key` when missing, invalid or not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(key, str(path), what, "file not found")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(key, str(path), "valid YAML", str(exc).replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ConfigError(key, type(raw).__name__, "a YAML mapping at the top level")
    return raw


def validate(raw: dict) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    base_dir = raw.pop("_base_dir", None) if isinstance(raw, dict) else None
    _check_keys(raw, DEFAULTS, "")
    cfg = _merge(cfg, raw)
    if base_dir is None and isinstance(cfg["base_dir"], str):
        base_dir = str(Path(cfg["base_dir"]).resolve())
    cfg["_base_dir"] = base_dir or os.getcwd()
    cfg["_cwd"] = raw.get("_cwd") or os.getcwd()  # where fedsim started: user modules import from here too

    _int(cfg, "seed", minimum=0)
    _int(cfg, "rounds", minimum=1)
    if not isinstance(cfg["name"], str) or not cfg["name"] or "/" in cfg["name"]:
        raise ConfigError("name", cfg["name"], "a non-empty string without '/'")
    if not isinstance(cfg["topology"], (str, dict)):
        raise ConfigError("topology", cfg["topology"], "a topology name/file or a mapping (file:, generator:, nodes:/edges:)")
    for section in ("data", "model", "policy"):
        if not isinstance(cfg[section], dict):
            raise ConfigError(section, cfg[section], "a mapping")
    if not isinstance(cfg["policy"].get("name"), str):
        raise ConfigError("policy.name", cfg["policy"].get("name"), "a policy name (see `fedsim run --help`)")
    if not isinstance(cfg["model"].get("name"), str):
        raise ConfigError("model.name", cfg["model"].get("name"), "a model name: mlp, cnn, resnet18")

    _int(cfg, "train.epochs", minimum=1)
    _int(cfg, "train.batch_size", minimum=1)
    _float(cfg, "train.lr", minimum=0.0, strict=True)
    _float(cfg, "train.momentum", minimum=0.0)
    _float(cfg, "train.weight_decay", minimum=0.0)
    _bool(cfg, "train.same_init")
    _bool(cfg, "train.shuffle")
    from fedsim.registry import check_name  # user code is imported later, when nodes are built
    check_name("optimizers", cfg["train"]["optimizer"])
    check_name("losses", cfg["train"]["loss"])
    for key in FREE_MAPPINGS:
        node, leaf = _get(cfg, key)
        if not isinstance(node[leaf], dict):
            raise ConfigError(key, node[leaf], "a mapping of keyword arguments")

    dp = cfg["privacy"]["dp"]
    if dp is not None:
        if dp is True:
            dp = {}
        if not isinstance(dp, dict):
            raise ConfigError("privacy.dp", dp, "null (off) or a mapping with epsilon, delta, max_grad_norm, auto_fix")
        _check_keys(dp, DP_DEFAULTS, "privacy.dp.")
        cfg["privacy"]["dp"] = dp = {**DP_DEFAULTS, **dp}
        _float(cfg, "privacy.dp.epsilon", minimum=0.0, strict=True)
        _float(cfg, "privacy.dp.delta", minimum=0.0, strict=True)
        if dp["delta"] >= 1:
            raise ConfigError("privacy.dp.delta", dp["delta"], "a number in (0, 1), typically < 1/dataset size")
        _float(cfg, "privacy.dp.max_grad_norm", minimum=0.0, strict=True)
        _bool(cfg, "privacy.dp.auto_fix")

    rt = cfg["runtime"]
    _choice(cfg, "runtime.kind")
    _choice(cfg, "runtime.transport")
    _choice(cfg, "runtime.scheduler")
    if rt["workers"] != "auto":
        _int(cfg, "runtime.workers", minimum=1)
    _float(cfg, "runtime.cpus_per_worker", minimum=0.0, strict=True)
    _float(cfg, "runtime.gpus_per_worker", minimum=0.0)
    _float(cfg, "runtime.recv_timeout_s", minimum=0.0, strict=True)
    _float(cfg, "runtime.send_timeout_s", minimum=0.0, strict=True)
    _float(cfg, "runtime.max_message_mb", minimum=0.0, strict=True)
    _int(cfg, "runtime.object_store_mb", minimum=64)
    if rt["address"] is not None and not isinstance(rt["address"], str):
        raise ConfigError("runtime.address", rt["address"], "null or a Ray cluster address such as 'auto' or 'ray://host:10001'")

    _int(cfg, "eval.every", minimum=0)
    _int(cfg, "eval.federation_every", minimum=0)
    if cfg["eval"]["federation_sample"] is not None:
        _int(cfg, "eval.federation_sample", minimum=1)
    _bool(cfg, "output.progress")
    _bool(cfg, "output.save_models")
    paths = cfg["plugins"]["paths"]
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError("plugins.paths", paths, "a list of folders to import user code from")
    cfg["plugins"]["paths"] = [str((Path(cfg["_base_dir"]) / Path(p).expanduser()).resolve()) for p in paths]
    if cfg["base_dir"] is not None and not isinstance(cfg["base_dir"], str):
        raise ConfigError("base_dir", cfg["base_dir"], "null or a folder path")
    return cfg


def dump_config(cfg: dict) -> str:
    """The resolved config as YAML; `base_dir` is made explicit so the file re-runs from any folder."""
    clean = {k: v for k, v in cfg.items() if not k.startswith("_")}
    if cfg.get("_base_dir"):
        clean["base_dir"] = str(cfg["_base_dir"])
    return yaml.safe_dump(_plain(clean), sort_keys=False)


def _plain(value: Any) -> Any:
    """Tuples (option defaults) as lists, so safe_dump writes plain YAML."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ----------------------------------------------------------------------------- helpers

def _apply_override(raw: dict, item: str) -> None:
    if "=" not in item:
        raise ConfigError("--set", item, "KEY=VALUE, e.g. rounds=5 or runtime.workers=2")
    key, _, text = item.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError("--set", item, "a dotted key such as train.lr=0.05")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(".".join(parts[: i + 1]), nxt, "a mapping (cannot set a sub-key on a scalar)")
        node = nxt
    node[parts[-1]] = value


def _merge(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict) and k not in ("topology",):
            base[k] = _merge(base[k], v)
        else:
            base[k] = v
    return base


def _check_keys(raw: dict, schema: dict, prefix: str) -> None:
    for key, value in raw.items():
        if key.startswith("_"):
            continue
        if key not in schema:
            raise ConfigError(prefix + str(key), value, "one of " + ", ".join(k for k in schema if not k.startswith("_")),
                              "unknown key")
        full = prefix + key
        if isinstance(schema[key], dict) and key not in OPEN_SECTIONS and full not in ("topology",) \
                and full not in FREE_MAPPINGS:
            if not isinstance(value, dict):
                raise ConfigError(full, value, "a mapping with keys " + ", ".join(schema[key]))
            _check_keys(value, schema[key], full + ".")


def _get(cfg: dict, key: str) -> tuple[dict, str]:
    node = cfg
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    return node, parts[-1]


def _int(cfg: dict, key: str, minimum: int | None = None) -> None:
    node, leaf = _get(cfg, key)
    v = node[leaf]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(key, v, f"an integer{'' if minimum is None else f' >= {minimum}'}")
    if minimum is not None and v < minimum:
        raise ConfigError(key, v, f"an integer >= {minimum}")


def _float(cfg: dict, key: str, minimum: float | None = None, strict: bool = False) -> None:
    node, leaf = _get(cfg, key)
    v = node[leaf]
    bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise ConfigError(key, v, f"a number{bound}")
    if minimum is not None and (v < minimum or (strict and v == minimum)):
        raise ConfigError(key, v, f"a number{bound}")
    node[leaf] = float(v)


def _bool(cfg: dict, key: str) -> None:
    node, leaf = _get(cfg, key)
    if not isinstance(node[leaf], bool):
        raise ConfigError(key, node[leaf], "true or false")


def _choice(cfg: dict, key: str) -> None:
    node, leaf = _get(cfg, key)
    allowed = CHOICES[key]
    if node[leaf] not in allowed:
        raise ConfigError(key, node[leaf], " | ".join(allowed))
