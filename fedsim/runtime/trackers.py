"""Experiment trackers: the per-round metrics and bytes of a run, with the round as the step.

    output:
      trackers: [tensorboard, mlflow]          # or with options:
      trackers:
        - tensorboard: {dir: tb/}               # default RUN_DIR/tensorboard
        - mlflow: {tracking_uri: http://mlflow:5000, experiment: hospitals}
                                                # default $MLFLOW_TRACKING_URI, else file:RUN_DIR/mlruns;
                                                # experiment default: the run's name

Both are optional extras (`pip install fedsim[trackers]`); asking for one that is not installed
is a ConfigError before the run starts. Logged per round: every node's metric as
`METRIC/NODE`, the mean over nodes as `METRIC/mean`, `bytes/round`, `bytes/total`,
`bytes/KIND` (this round), `time/wall_round_s` and, when simulated, `time/sim_round_s` and
`time/sim_s`. MLflow also gets the flattened config as parameters and the run's final status.
"""
from __future__ import annotations

import importlib.util
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from fedsim.config import dump_config, flatten
from fedsim.errors import ConfigError

KNOWN = {"tensorboard": ("dir",), "mlflow": ("tracking_uri", "experiment")}
PACKAGE = {"tensorboard": "tensorboard", "mlflow": "mlflow"}


def normalize(value: Any, key: str = "output.trackers") -> list[tuple[str, dict]]:
    """[(name, options)] from the config value; ConfigError on unknown names/options or a missing package."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(key, value, "a list such as [tensorboard, mlflow]")
    out = []
    for item in value:
        if isinstance(item, str):
            name, opts = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            name, opts = next(iter(item.items()))
            opts = {} if opts is None else opts
        else:
            raise ConfigError(key, item, "a tracker name or {name: {options}}")
        if name not in KNOWN:
            raise ConfigError(key, name, " | ".join(KNOWN))
        if not isinstance(opts, dict) or set(opts) - set(KNOWN[name]):
            raise ConfigError(f"{key}.{name}", opts, "a mapping with " + ", ".join(KNOWN[name]))
        if importlib.util.find_spec(PACKAGE[name]) is None:
            raise ConfigError(key, name, "an installed tracker", f"install it with: pip install 'fedsim[trackers]' "
                              f"(or pip install {PACKAGE[name]})")
        out.append((name, opts))
    return out


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)


class _TensorBoard:
    def __init__(self, opts: dict, cfg: dict, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.dir = Path(opts.get("dir") or run_dir / "tensorboard")
        self.writer = SummaryWriter(log_dir=str(self.dir))
        self.writer.add_text("config", "```\n" + dump_config(cfg) + "\n```", 0)

    def log(self, step: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, global_step=step)
        self.writer.flush()

    def close(self, status: str) -> None:
        self.writer.add_text("status", status, 0)
        self.writer.close()


class _MLflow:
    def __init__(self, opts: dict, cfg: dict, run_dir: Path) -> None:
        uri = opts.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # our own file store in the run folder; MLflow 3 wants this opt-in for file stores
            uri = (run_dir / "mlruns").resolve().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.uri, self.client = uri, MlflowClient(tracking_uri=uri)
        name = opts.get("experiment") or cfg["name"]
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            try:
                exp_id = self.client.create_experiment(name)
            except MlflowException:  # a parallel sweep run created it first
                exp_id = self.client.get_experiment_by_name(name).experiment_id
        else:
            exp_id = exp.experiment_id
        self.run_id = self.client.create_run(exp_id, run_name=run_dir.name, tags={
            "fedsim.run_dir": str(run_dir), "fedsim.policy": cfg["policy"]["name"]}).info.run_id
        params = [Param(_key(k), str(v)[:500]) for k, v in flatten({k: v for k, v in cfg.items()
                                                                     if not k.startswith("_")}).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def log(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(_key(k), float(v), now, step) for k, v in values.items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status={"completed": "FINISHED", "interrupted": "KILLED"}
                                   .get(status, "FAILED"))


class Trackers:
    """All configured trackers of one run; a no-op when none is configured."""

    def __init__(self, cfg: dict, run_dir: Path) -> None:
        kinds = {"tensorboard": _TensorBoard, "mlflow": _MLflow}
        self.active = [kinds[name](opts, cfg, run_dir) for name, opts in normalize(cfg["output"]["trackers"])]

    def round(self, r: int, rows: list[tuple], bytes_by_kind: dict[str, int], total_bytes: int,
              wall_s: float, sim_round_s: float | None = None, sim_s: float | None = None) -> None:
        if not self.active:
            return
        values: dict[str, float] = {}
        per_metric: dict[str, list[float]] = {}
        for _, node, metric, value in rows:
            if not math.isnan(value):
                values[f"{metric}/{node}"] = value
                per_metric.setdefault(metric, []).append(value)
        values.update({f"{m}/mean": sum(v) / len(v) for m, v in per_metric.items()})
        values["bytes/round"] = float(sum(bytes_by_kind.values()))
        values["bytes/total"] = float(total_bytes)
        values.update({f"bytes/{kind}": float(n) for kind, n in bytes_by_kind.items()})
        values["time/wall_round_s"] = wall_s
        if sim_round_s is not None:
            values["time/sim_round_s"], values["time/sim_s"] = sim_round_s, sim_s
        for t in self.active:
            t.log(r, values)

    def close(self, status: str) -> None:
        for t in self.active:
            t.close(status)
