"""TensorBoard and MLflow get every round's metrics and bytes; read back with their own readers."""
from __future__ import annotations

import csv

import pytest

from fedsim.errors import ConfigError
from fedsim.runtime.driver import run_experiment


def _mean_per_round(run_dir, metric):
    rows = [r for r in csv.DictReader((run_dir / "metrics.csv").open()) if r["metric"] == metric]
    out = {}
    for r in rows:
        out.setdefault(int(r["round"]), []).append(float(r["value"]))
    return {k: sum(v) / len(v) for k, v in out.items()}


def _bytes_per_round(run_dir):
    out = {}
    for r in csv.DictReader((run_dir / "comm.csv").open()):
        out[int(r["round"])] = out.get(int(r["round"]), 0) + int(r["wire_bytes"])
    return out


def test_tensorboard_and_mlflow_read_back(small_config, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = run_experiment(small_config(rounds=3, output__trackers=["tensorboard", "mlflow"]))
    d = res.run_dir
    acc, fed, sent = _mean_per_round(d, "test_acc"), _mean_per_round(d, "fed_acc"), _bytes_per_round(d)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(str(d / "tensorboard"))
    ea.Reload()
    tb = {tag: {e.step: e.value for e in ea.Scalars(tag)} for tag in ea.Tags()["scalars"]}
    assert tb["test_acc/mean"] == pytest.approx(acc, rel=1e-6)
    assert tb["fed_acc/mean"] == pytest.approx(fed, rel=1e-6)
    assert tb["bytes/round"] == pytest.approx(sent)
    assert set(tb["test_acc/node2"]) == {0, 1, 2}
    assert "time/sim_round_s" in tb

    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=(d / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name("t")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["policy.name"] == "gossip"
    hist = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "test_acc/mean")}
    assert hist == pytest.approx(acc, rel=1e-6)
    assert {m.step: m.value for m in client.get_metric_history(run.info.run_id, "bytes/MODEL")} == pytest.approx(sent)


@pytest.mark.parametrize("value, message", [
    (["wandb"], "tensorboard | mlflow"),
    ("tensorboard", "a list such as"),
    ([{"mlflow": {"uri": "x"}}], "tracking_uri, experiment"),
])
def test_bad_tracker_config(small_config, value, message):
    with pytest.raises(ConfigError, match=message):
        small_config(output__trackers=value)
