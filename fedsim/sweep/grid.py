"""What a sweep runs: a grid of settings × seeds, from `--grid KEY=V1,V2 --seeds 0 1` or a `sweep:` section.

    sweep:
      grid:
        policy.name: [gossip, fedrewind]
        train.lr: [0.01, 0.02]
      seeds: [0, 1, 2]        # or a count: 3 (= 0, 1, 2)
      dir: runs/my-sweep      # default: OUTPUT_DIR/NAME-sweep
      parallel: auto          # or the number of runs at once

On the command line a value list is split on commas (`train.lr=0.01,0.02`) unless it is a YAML
list (`data.label_alpha=[0.1, 1.0]`, for values that contain commas); each value is read as YAML,
so numbers are numbers. Command-line grid keys replace the section's key of the same name.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from fedsim.errors import ConfigError

SECTION_KEYS = ("grid", "seeds", "dir", "parallel")
FORBIDDEN = ("seed", "name", "output")  # seeds come from --seeds; the sweep decides names and folders


@dataclass(frozen=True)
class Combo:
    settings: dict[str, Any]   # grid key -> value, in grid order
    seed: int

    @property
    def key(self) -> str:
        """The run's folder name: readable settings and seed; long or unsafe ones get a digest."""
        parts = [f"{k}={_slug(v)}" for k, v in self.settings.items()] + [f"seed={self.seed}"]
        text = "+".join(parts)
        if len(text) > 150:
            digest = hashlib.sha256(json.dumps([self.settings, self.seed], sort_keys=True, default=str).encode())
            text = text[:130] + "~" + digest.hexdigest()[:12]
        return text

    def overrides(self) -> list[str]:
        """`--set` strings that read back as exactly these values."""
        return [f"{k}={_yaml(v)}" for k, v in self.settings.items()] + [f"seed={self.seed}"]

    @property
    def label(self) -> str:
        return " ".join(f"{k}={_show(v)}" for k, v in self.settings.items()) + f" seed={self.seed}"


def _yaml(v: Any) -> str:
    """One-line YAML that `yaml.safe_load` turns back into `v` (JSON would not: 1e-05 reads as a string)."""
    text = yaml.safe_dump(v, default_flow_style=True, width=10**9).strip()
    return text[:-3].strip() if text.endswith("...") else text


def _show(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def _slug(v: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", _show(v))


def parse_grid_args(items: list[str]) -> dict[str, list]:
    grid: dict[str, list] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--grid", item, "KEY=V1,V2,... e.g. --grid train.lr=0.01,0.02")
        if key in grid:
            raise ConfigError(f"--grid {key}", item, "each key once (list all its values after one '=')")
        text = text.strip()
        if text.startswith("["):
            try:
                values = yaml.safe_load(text)
            except yaml.YAMLError:
                raise ConfigError(f"--grid {key}", text, "a YAML list such as [0.1, 1.0]") from None
        else:
            values = [_value(piece) for piece in text.split(",") if piece.strip()]
        grid[key] = values
    return grid


def _value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text.strip()


def check_grid(grid: Any, where: str = "sweep.grid") -> dict[str, list]:
    if not isinstance(grid, dict):
        raise ConfigError(where, grid, "a mapping of config keys to lists of values")
    for key, values in grid.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ConfigError(where, key, "dotted config keys such as train.lr")
        if key.split(".")[0] in FORBIDDEN:
            raise ConfigError(f"{where}.{key}", values, "a key other than seed, name, output.* "
                              "(seeds: --seeds or sweep.seeds; the sweep names the runs and their folders)")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.{key}", values, "a non-empty list of values")
        seen = [json.dumps(v, sort_keys=True, default=str) for v in values]
        if len(set(seen)) != len(seen):
            raise ConfigError(f"{where}.{key}", values, "distinct values (a value is listed twice)")
    return grid


def check_seeds(seeds: Any, where: str = "sweep.seeds") -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(where, seeds, "a list of seeds or a count >= 1")
        return list(range(seeds))
    if not isinstance(seeds, list) or not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0
                                                       for s in seeds):
        raise ConfigError(where, seeds, "a non-empty list of integers >= 0, or a count")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(where, seeds, "distinct seeds")
    return list(seeds)


def check_section(section: Any) -> dict:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError("sweep", section, "a mapping with " + ", ".join(SECTION_KEYS))
    for key in section:
        if key not in SECTION_KEYS:
            raise ConfigError(f"sweep.{key}", section[key], "one of " + ", ".join(SECTION_KEYS), "unknown key")
    return section


def combinations(grid: dict[str, list], seeds: list[int]) -> list[Combo]:
    keys = list(grid)
    return [Combo(dict(zip(keys, values)), seed)
            for values in itertools.product(*(grid[k] for k in keys)) for seed in seeds]
