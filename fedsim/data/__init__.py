"""Hospital datasets: load_federation(spec, node_names, seed) -> {node name: NodeData}.

Node i (its position in node_names) always gets the same data for the same spec and seed, whether
or not `only` asks for other nodes too, so a worker can load just the nodes it hosts.
`spec["dataset"]` is a built-in (DATASETS) or a user dataset (fedsim/data/plugin.py).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from fedsim.data import files, sklearn_sets, synthmed
from fedsim.data.node_data import NodeData
from fedsim.data.partition import stratified_split
from fedsim.data.plugin import DataRequest, load_plugin, validate_plugin_spec
from fedsim.data.pooled import Pool, federate
from fedsim.data.spec import DATA_SPEC_DEFAULTS, DATASETS, PARTITION_DEFAULTS, validate as validate_spec
from fedsim.errors import ConfigError, DataError


def load_federation(spec: dict, node_names: list[str], seed: int, only: Iterable[str] | None = None, *,
                    base_dir: str | None = None) -> dict[str, NodeData]:
    """The data of every node in `only` (default: all), in node_names order.

    base_dir anchors relative `root` / `path` / `paths` (the config file's folder).
    """
    builtin = not isinstance(spec, dict) or spec.get("dataset", "synthmed") in DATASETS
    s = validate_spec(spec, base_dir) if builtin else validate_plugin_spec(spec)
    names = list(node_names)
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise DataError(f"node names must be distinct non-empty strings, got {names!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError("seed", seed, "a non-negative integer")
    wanted = set(names) if only is None else set(only)
    unknown = sorted(wanted - set(names))
    if unknown:
        raise DataError(f"asked for data of unknown node(s) {', '.join(unknown)}; nodes: {', '.join(names)}")

    ds = s["dataset"]
    if not builtin:
        return load_plugin(s, names, seed, wanted, base_dir)
    if ds == "synthmed":
        return _synthmed(s, names, seed, wanted)
    if ds in ("breast_cancer", "digits"):
        pool = sklearn_sets.breast_cancer() if ds == "breast_cancer" else sklearn_sets.digits()
        return federate(pool, names, seed, s["partition"], s["test_fraction"], wanted)
    if ds == "imagefolder":
        return _imagefolder(s, names, seed, wanted)
    return _npz(s, names, seed, wanted)


def _node(name: str, x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, class_names: list[str]) -> NodeData:
    return NodeData(name, torch.from_numpy(np.ascontiguousarray(x[tr])), torch.from_numpy(y[tr]),
                    torch.from_numpy(np.ascontiguousarray(x[te])), torch.from_numpy(y[te]),
                    len(class_names), tuple(x.shape[1:]), class_names)


def _split_node(name: str, i: int, x: np.ndarray, y: np.ndarray, s: dict, seed: int,
                class_names: list[str]) -> NodeData:
    if y.shape[0] < 2:
        raise DataError(f"node {name!r} has {y.shape[0]} sample(s); it needs at least 2 (one train, one test)")
    tr, te = stratified_split(y, s["test_fraction"], (seed, i))
    return _node(name, x, y, tr, te, class_names)


def _synthmed(s: dict, names: list[str], seed: int, wanted: set[str]) -> dict[str, NodeData]:
    classes = synthmed.class_names(s["num_classes"])
    out = {}
    for i, name in enumerate(names):
        if name in wanted:
            x, y = synthmed.generate(seed, i, s["samples_per_node"], num_classes=s["num_classes"],
                                     image_size=s["image_size"], channels=s["channels"], shift=float(s["shift"]),
                                     label_alpha=s["label_alpha"])
            out[name] = _split_node(name, i, x, y, s, seed, classes)
    return out


def _imagefolder(s: dict, names: list[str], seed: int, wanted: set[str]) -> dict[str, NodeData]:
    root, size, ch = s["root"], s["image_size"], s["channels"]
    if s["partition"]["kind"] == "natural":  # hospital folder h is node h; read only the wanted ones
        classes = files.imagefolder_classes(root, names)
        out = {}
        for i, name in enumerate(names):
            if name in wanted:
                x, y = files.load_hospital_folder(root, name, classes, size, ch)
                out[name] = _split_node(name, i, x, y, s, seed, classes)
        return out
    hospitals = files.imagefolder_hospitals(root)  # pool every hospital folder, then re-partition
    classes = files.imagefolder_classes(root, hospitals)
    parts = [files.load_hospital_folder(root, h, classes, size, ch) for h in hospitals]
    pool = Pool(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), classes)
    return federate(pool, names, seed, s["partition"], s["test_fraction"], wanted)


def _npz_class_names(s: dict, max_label: int) -> list[str]:
    given = s["class_names"]
    if given is None:
        return [f"class {i}" for i in range(max_label + 1)]
    if len(given) <= max_label:
        raise ConfigError("data.class_names", list(given), f"at least {max_label + 1} names",
                          f"the npz labels go up to {max_label}")
    return list(given)


def _npz(s: dict, names: list[str], seed: int, wanted: set[str]) -> dict[str, NodeData]:
    size, ch = s["image_size"], s["channels"]
    if s["path"] is not None:  # one file: pool its train/val/test parts and partition across nodes
        sp = files.read_npz(s["path"])
        x = files.conform(np.concatenate([sp.x_train, sp.x_test]), size, ch)
        y = np.concatenate([sp.y_train, sp.y_test])
        pool = Pool(x, y, _npz_class_names(s, int(y.max(initial=-1))))
        return federate(pool, names, seed, s["partition"], s["test_fraction"], wanted)

    paths = s["paths"]
    if s["partition"]["kind"] != "natural":  # several files pooled, then re-partitioned
        hospitals = sorted(paths)
        parts = [files.read_npz(paths[h]) for h in hospitals]
        xs = [files.conform(np.concatenate([p.x_train, p.x_test]), size, ch) for p in parts]
        _same_shapes({h: x.shape[1:] for h, x in zip(hospitals, xs)})
        ys = [np.concatenate([p.y_train, p.y_test]) for p in parts]
        y = np.concatenate(ys)
        pool = Pool(np.concatenate(xs), y, _npz_class_names(s, int(y.max(initial=-1))))
        return federate(pool, names, seed, s["partition"], s["test_fraction"], wanted)

    missing = [n for n in names if n not in paths]
    if missing:
        raise DataError(f"npz paths has no file for hospital(s) {', '.join(missing)} "
                        f"(has: {', '.join(paths)}); give one file per node")
    # File h is node h with its own train/test split. Labels and shapes of all nodes' files are read
    # (cheaply) so every worker agrees on the class count and the model input.
    classes = _npz_class_names(s, max(files.npz_max_label(paths[n]) for n in names))
    shapes = {}
    for n in names:
        c, h, w = files.npz_image_shape(paths[n])
        shapes[n] = (ch or c, size or h, size or w)
    _same_shapes(shapes)
    out = {}
    for name in names:
        if name in wanted:
            sp = files.read_npz(paths[name])
            xtr, xte = files.conform(sp.x_train, size, ch), files.conform(sp.x_test, size, ch)
            x = np.concatenate([xtr, xte])
            y = np.concatenate([sp.y_train, sp.y_test])
            tr = np.arange(sp.y_train.shape[0])
            out[name] = _node(name, x, y, tr, np.arange(tr.shape[0], y.shape[0]), classes)
    return out


def _same_shapes(shapes: dict[str, tuple]) -> None:
    if len(set(map(tuple, shapes.values()))) > 1:
        listed = ", ".join(f"{h}: {'x'.join(map(str, sh))}" for h, sh in shapes.items())
        raise DataError(f"npz files hold images of different shapes (C x H x W) - {listed}; "
                        "set data.image_size and data.channels to convert them to one shape")


def describe(data: dict[str, NodeData]) -> str:
    """A short table: per node, train/test sizes and train class counts (the largest few if many)."""
    if not data:
        return "(no nodes)"
    width = max(4, *(len(n) for n in data))
    lines = [f"{'node':<{width}}  {'train':>6}  {'test':>5}  train samples per class"]
    for name, d in data.items():
        counts = d.class_counts("train")
        if d.num_classes <= 10:
            per_class = " ".join(str(int(c)) for c in counts)
        else:
            top = np.argsort(-counts, kind="stable")[:5]
            per_class = (f"{int((counts > 0).sum())}/{d.num_classes} classes present; largest: "
                         + ", ".join(f"{k}:{int(counts[k])}" for k in top))
        lines.append(f"{name:<{width}}  {d.n_train:>6}  {d.n_test:>5}  {per_class}")
    return "\n".join(lines)


__all__ = ["DATASETS", "DATA_SPEC_DEFAULTS", "PARTITION_DEFAULTS", "DataRequest", "NodeData", "describe",
           "load_federation", "validate_spec"]
