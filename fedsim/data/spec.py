"""The `data:` section of a config: defaults, which keys each dataset uses, and validation."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fedsim.data import continual
from fedsim.data.synthmed import MAX_CLASSES
from fedsim.errors import ConfigError

DATASETS = ("synthmed", "breast_cancer", "digits", "imagefolder", "npz")
DATASET_HELP = {
    "synthmed": "procedural scans with per-hospital scanner shift and label skew (no download)",
    "breast_cancer": "sklearn's Wisconsin breast cancer table (569 patients, 30 features)",
    "digits": "sklearn's 8x8 handwritten digits",
    "imagefolder": "your images: root/<hospital>/<class>/*.png",
    "npz": "your arrays: MedMNIST-style .npz (images N x H x W [x C] or features N x F)",
}
PARTITION_KINDS = ("iid", "dirichlet", "shards", "natural")

# image_size / channels None mean "the dataset's own": synthmed and imagefolder 32 px, 1 channel;
# npz as stored. partition None means natural for imagefolder and npz `paths`, else iid.
DATA_SPEC_DEFAULTS: dict[str, Any] = {
    "dataset": "synthmed",
    "samples_per_node": 500,
    "test_fraction": 0.2,
    "num_classes": 2,
    "image_size": None,
    "channels": None,
    "shift": 1.0,
    "label_alpha": None,
    "partition": None,
    "root": None,
    "path": None,
    "paths": None,
    "class_names": None,
    "continual": None,  # {tasks, rounds_per_task}: fedsim/data/continual.py, any dataset
}
PARTITION_DEFAULTS: dict[str, Any] = {"kind": "iid", "alpha": 0.5, "shards_per_node": 2, "min_samples": 10}

# The keys each dataset reads (besides `dataset`); setting any other one is a mistake we report.
USED_KEYS = {
    "synthmed": ("samples_per_node", "test_fraction", "num_classes", "image_size", "channels", "shift", "label_alpha"),
    "breast_cancer": ("test_fraction", "partition"),
    "digits": ("test_fraction", "partition"),
    "imagefolder": ("root", "image_size", "channels", "test_fraction", "partition"),
    "npz": ("path", "paths", "image_size", "channels", "test_fraction", "partition", "class_names"),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _resolve_path(value: Any, key: str, base_dir: str | None) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ConfigError(key, value, "a file or folder path")
    p = Path(value).expanduser()
    return str(p if p.is_absolute() or base_dir is None else Path(base_dir) / p)


def _partition(value: Any, dataset: str, per_hospital: bool) -> dict:
    if isinstance(value, str):  # shorthand: `partition: dirichlet`
        value = {"kind": value}
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError("data.partition", value, "a mapping with kind, alpha, shards_per_node, min_samples")
    for key in value:
        if key not in PARTITION_DEFAULTS:
            raise ConfigError(f"data.partition.{key}", value[key], ", ".join(PARTITION_DEFAULTS), "unknown key")
    out = {**PARTITION_DEFAULTS, "kind": "natural" if per_hospital else "iid", **value}
    if out["kind"] not in PARTITION_KINDS:
        raise ConfigError("data.partition.kind", out["kind"], ", ".join(PARTITION_KINDS))
    if out["kind"] == "natural" and not per_hospital:
        raise ConfigError("data.partition.kind", "natural", "iid, dirichlet, shards",
                          f"natural needs per-hospital sources, which {dataset} does not have; "
                          "use imagefolder, or npz with 'paths'")
    if not _is_num(out["alpha"]) or not out["alpha"] > 0:
        raise ConfigError("data.partition.alpha", out["alpha"], "a number > 0 (smaller = stronger label skew)")
    if not _is_int(out["shards_per_node"]) or out["shards_per_node"] < 1:
        raise ConfigError("data.partition.shards_per_node", out["shards_per_node"], "an integer >= 1")
    if not _is_int(out["min_samples"]) or out["min_samples"] < 2:
        raise ConfigError("data.partition.min_samples", out["min_samples"], "an integer >= 2 (one train, one test)")
    return out


def validate(spec: Any, base_dir: str | None = None) -> dict:
    """Check a `data:` mapping and return it complete (defaults filled, paths made absolute)."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ConfigError("data", spec, "a mapping such as {dataset: synthmed}")
    for key in spec:
        if key not in DATA_SPEC_DEFAULTS:
            raise ConfigError(f"data.{key}", spec[key], ", ".join(DATA_SPEC_DEFAULTS), "unknown key")
    s = {**DATA_SPEC_DEFAULTS, **spec}
    ds = s["dataset"]
    if ds not in DATASETS:
        raise ConfigError("data.dataset", ds, ", ".join(DATASETS))
    for key, value in spec.items():
        if key not in ("dataset", "continual") and key not in USED_KEYS[ds] and value != DATA_SPEC_DEFAULTS[key]:
            raise ConfigError(f"data.{key}", value, f"only the keys {', '.join(USED_KEYS[ds])}",
                              f"dataset {ds} does not use {key}")

    f = s["test_fraction"]
    if not _is_num(f) or not 0 < f < 1:
        raise ConfigError("data.test_fraction", f, "a number in (0, 1): the share of each node's samples held out")
    if not _is_int(s["samples_per_node"]) or s["samples_per_node"] < 2:
        raise ConfigError("data.samples_per_node", s["samples_per_node"], "an integer >= 2 (train + test per node)")
    if not _is_int(s["num_classes"]) or not 2 <= s["num_classes"] <= MAX_CLASSES:
        raise ConfigError("data.num_classes", s["num_classes"], f"an integer in [2, {MAX_CLASSES}]")
    if not _is_num(s["shift"]) or not s["shift"] >= 0:
        raise ConfigError("data.shift", s["shift"], "a number >= 0 (0 = identical scanners, 1 = default, 2 = strong)")
    if s["label_alpha"] is not None and (not _is_num(s["label_alpha"]) or not s["label_alpha"] > 0):
        raise ConfigError("data.label_alpha", s["label_alpha"], "null (balanced classes) or a number > 0")
    if s["channels"] is not None and s["channels"] not in (1, 3):
        raise ConfigError("data.channels", s["channels"], "1 (grayscale) or 3 (RGB)")
    min_size = 16 if ds == "synthmed" else 4
    if s["image_size"] is not None and (not _is_int(s["image_size"]) or s["image_size"] < min_size):
        raise ConfigError("data.image_size", s["image_size"], f"an integer >= {min_size} (pixels per side)")
    if ds in ("synthmed", "imagefolder"):
        s["image_size"] = 32 if s["image_size"] is None else s["image_size"]
        s["channels"] = 1 if s["channels"] is None else s["channels"]

    if ds == "imagefolder":
        if s["root"] is None:
            raise ConfigError("data.root", None, "the folder holding one subfolder per hospital",
                              "imagefolder needs root")
        s["root"] = _resolve_path(s["root"], "data.root", base_dir)
    if ds == "npz":
        if (s["path"] is None) == (s["paths"] is None):
            raise ConfigError("data.path", s["path"], "exactly one of path (one file, partitioned across nodes) "
                              "or paths ({hospital: file})")
        if s["path"] is not None:
            s["path"] = _resolve_path(s["path"], "data.path", base_dir)
        else:
            if not isinstance(s["paths"], dict) or not s["paths"]:
                raise ConfigError("data.paths", s["paths"], "a mapping {hospital name: npz file}")
            s["paths"] = {str(h): _resolve_path(p, f"data.paths.{h}", base_dir) for h, p in s["paths"].items()}
        names = s["class_names"]
        if names is not None and (not isinstance(names, (list, tuple)) or not names
                                  or not all(isinstance(n, str) and n for n in names)):
            raise ConfigError("data.class_names", names, "a list of non-empty strings, one per label")
    s["continual"] = continual.validate(s["continual"], s["num_classes"] if ds == "synthmed" else None)
    if ds != "synthmed":
        per_hospital = ds == "imagefolder" or (ds == "npz" and s["paths"] is not None)
        s["partition"] = _partition(s["partition"], ds, per_hospital)
    return s
