"""Federated continual learning: task switches every T rounds for any policy; seen-task accuracy and forgetting."""
from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

from fedsim.data.continual import task_of_class
from fedsim.errors import ConfigError, DataError
from fedsim.runtime.driver import run_experiment
from fedsim.runtime.host import WorkerHost

CONT = {"tasks": 2, "rounds_per_task": 2}


class Constant(nn.Module):
    """Always predicts class `c` (a real module, so the real confusion path scores it)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.logits = torch.nn.functional.one_hot(torch.tensor(c), num_classes).float()

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1) + self.w


def _host(small_config, **kw):
    cfg = small_config(data__num_classes=4, data__continual=CONT, policy={"name": "local"},
                       runtime__transport="inproc", **kw)
    host = WorkerHost(cfg, [f"node{i}" for i in range(4)], "t")
    host.connect({})
    return host


def test_task_split_is_contiguous():
    assert task_of_class(4, 2).tolist() == [0, 0, 1, 1]
    assert task_of_class(5, 2).tolist() == [0, 0, 0, 1, 1]
    assert task_of_class(3, 3).tolist() == [0, 1, 2]


def test_stream_switches_task_at_the_configured_round(small_config):
    host = _host(small_config)
    try:
        seen = []
        for r in range(5):
            host.run_round(r, evaluate=False)
            d = host.nodes["node1"].data
            seen.append((sorted(set(d.y_train.tolist())), sorted(set(d.y_test.tolist()))))
        train_classes = [s[0] for s in seen]
        assert all(set(c) <= {0, 1} for c in train_classes[:2])      # rounds 0, 1: task 0
        assert all(set(c) <= {2, 3} for c in train_classes[2:])      # from round 2 on: task 1 (the last)
        assert set(seen[1][1]) <= {0, 1} and set(seen[2][1]) > {0, 1}  # tests cover every task seen so far
        assert host.nodes["node1"].data.x_train.is_contiguous(memory_format=torch.channels_last)
    finally:
        host.close()


def test_seen_accuracy_and_forgetting(small_config):
    host = _host(small_config)
    try:
        node, stream = host.nodes["node0"], host.streams["node0"]
        y = stream.full.y_test
        node.round = 0
        m0 = stream.evaluate(node, Constant(0, 4))
        share0 = float((y == 0).sum() / (y <= 1).sum())
        assert m0["task"] == 0 and m0["forgetting"] == 0.0 and m0["seen_acc"] == pytest.approx(share0)
        node.round = 2  # task 1 now; a model that forgot task 0 completely
        m2 = stream.evaluate(node, Constant(2, 4))
        assert m2["task"] == 1 and m2["forgetting"] == pytest.approx(share0)
        assert m2["task_acc"] == pytest.approx(float((y == 2).sum() / (y >= 2).sum()))
        assert m2["seen_acc"] == pytest.approx(float((y == 2).sum() / len(y)))
    finally:
        host.close()


def test_fedrewind_runs_unchanged_on_a_continual_stream(small_config):
    cfg = small_config(rounds=4, data__num_classes=4, data__continual=CONT, runtime__transport="inproc",
                       topology={"generator": "complete", "n": 4}, train__epochs=2,
                       policy={"name": "fedrewind", "rewind_ratio": 0.5})
    res = run_experiment(cfg, progress=False)
    with open(res.run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["node"] == "node2"]
    task = {int(r["round"]): float(r["value"]) for r in rows if r["metric"] == "task"}
    assert task == {0: 0.0, 1: 0.0, 2: 1.0, 3: 1.0}
    assert {"seen_acc", "forgetting", "task_acc", "fed_acc", "pfa"} <= {r["metric"] for r in rows}
    assert res.summary["ledger_balanced"]


@pytest.mark.parametrize("cont, key", [
    ({"tasks": 0, "rounds_per_task": 2}, "data.continual.tasks"),
    ({"tasks": 2, "rounds_per_task": "x"}, "data.continual.rounds_per_task"),
    ({"tasks": 5, "rounds_per_task": 2}, "data.continual.tasks"),   # only 4 classes
    ({"tasks": 2}, "data.continual"),
    ([2, 2], "data.continual"),
])
def test_bad_continual_settings_name_the_key(small_config, cont, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        run_experiment(small_config(data__num_classes=4, data__continual=cont), progress=False)


def test_a_node_without_samples_of_a_task_is_a_clear_error(small_config):
    with pytest.raises(DataError, match="no training samples of continual task"):
        _host(small_config, data__samples_per_node=12, data__label_alpha=0.05)


def test_dp_sgd_follows_the_task_stream(small_config):
    """DP-SGD samples from the records of the current task (q = batch / task size), not a fixed loader."""
    host = _host(small_config, privacy={"dp": {"epsilon": 5.0}}, data__label_alpha=1.0, rounds=3)
    try:
        node = host.nodes["node0"]
        sizes = []
        for r in range(3):  # rounds 0-1: task 0, round 2: task 1
            host.run_round(r, evaluate=False)
            sizes.append(node.data.n_train)
        assert sizes[0] == sizes[1] != sizes[2]
        assert set(node.dp.steps) == {16 / sizes[0], 16 / sizes[2]} and node.dp.epsilon() > 0
    finally:
        host.close()
