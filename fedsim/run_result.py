"""RunResult: a finished (or failed, or interrupted) run directory, as Python objects.

`fedsim.run(...)` returns one; `RunResult.open(run_dir)` reads any run directory back. It reads
files only (config.yaml, summary.json, metrics.csv, models/) — no Ray, no training.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedsim.errors import FedsimError


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, run_dir: str | Path) -> "RunResult":
        path = Path(run_dir)
        summary_file = path / "summary.json"
        if not summary_file.is_file():
            raise FedsimError(f"{path} is not a fedsim run directory (no summary.json)")
        return cls(path, json.loads(summary_file.read_text()))

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "unknown"))

    def metrics(self) -> list[dict[str, Any]]:
        """metrics.csv as rows {round: int, node: str, metric: str, value: float}."""
        with open(self.run_dir / "metrics.csv", newline="") as f:
            return [{"round": int(r["round"]), "node": r["node"], "metric": r["metric"], "value": float(r["value"])}
                    for r in csv.DictReader(f)]

    def final(self, metric: str) -> dict[str, float]:
        """The last value of `metric` per node."""
        out: dict[str, float] = {}
        for row in self.metrics():
            if row["metric"] == metric:
                out[row["node"]] = row["value"]
        return out

    def config(self) -> dict[str, Any]:
        """The run's resolved configuration (config.yaml, validated again)."""
        from fedsim.config import load_config
        return load_config(self.run_dir / "config.yaml")

    def model_state(self, node: str) -> dict[str, Any]:
        """The final state_dict of `node` (models/<node>.pt, written unless output.save_models: false)."""
        import torch

        path = self.run_dir / "models" / f"{node}.pt"
        if not path.is_file():
            saved = sorted(p.stem for p in (self.run_dir / "models").glob("*.pt")) if (self.run_dir / "models").is_dir() else []
            raise FedsimError(f"no saved model for node {node!r} in {self.run_dir / 'models'} "
                              f"(saved: {', '.join(saved) or 'none; was output.save_models false?'})")
        return torch.load(path, map_location="cpu", weights_only=True)

    def load_model(self, node: str):
        """`node`'s final model as the run's `model:` section builds it, with its trained weights."""
        from fedsim.models import build_model
        from fedsim.registry import activate

        cfg = self.config()
        activate(cfg)
        shape = self.summary.get("model_input")
        if not shape:
            raise FedsimError(f"{self.run_dir}/summary.json does not record the model's input shape")
        model = build_model(cfg["model"], tuple(shape["input_shape"]), int(shape["num_classes"]))
        state = self.model_state(node)
        missing = set(model.state_dict()) ^ set(state)
        if missing:
            raise FedsimError(f"node {node!r} was scored with a model other than model.name "
                              f"{cfg['model']['name']!r} (e.g. a prompt learner); use model_state({node!r})")
        model.load_state_dict(state)
        return model.eval()
