"""The Python entry point: `fedsim.run(config_or_path, overrides=..., progress=...) -> RunResult`."""
from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from fedsim.run_result import RunResult


def run(config: str | os.PathLike[str] | Mapping[str, Any], overrides: Iterable[str] = (),
        progress: bool | None = None) -> RunResult:
    """Run a simulated federation and return its run directory, summary and metrics.

    `config` is an experiment YAML path or a mapping (the same keys as the YAML; relative paths in a
    mapping are relative to the current directory, or to its `base_dir`). `overrides` are
    `key=value` strings as with `fedsim run --set`. `progress=None` follows `output.progress`.
    Raises fedsim.ConfigError (or another FedsimError) for bad input, before any worker starts.
    """
    from fedsim.config import load_config
    from fedsim.runtime.driver import run_experiment

    if isinstance(config, Mapping):
        cfg = load_config(data=dict(config), overrides=overrides)
    else:
        cfg = load_config(config, overrides)
    return run_experiment(cfg, progress=progress)
