"""Federated continual learning: every node's training stream changes task every T rounds.

`data.continual: {tasks: K, rounds_per_task: T}` splits the classes into K contiguous tasks
(class k belongs to task k * K // num_classes). In round r the current task is t = min(r // T, K - 1);
each node trains on its training samples of task t only, and its test set is its test samples of
tasks 0..t — so `test_acc` (and the driver's `fed_acc`) is accuracy on all tasks seen so far. This
works for any policy: the host swaps `node.data` at the start of a round, the policy does not know.

Per evaluation the stream also reports, for the model the policy evaluates:
  task               the current task index
  seen_acc           accuracy on the node's test samples of tasks 0..t (= test_acc)
  task_acc           accuracy on the current task's test samples
  forgetting         mean over earlier tasks j < t of (best accuracy on j at any earlier evaluation
                     − accuracy on j now); 0 while on the first task. Tasks without test samples
                     at this node are left out.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from fedsim.data.node_data import NodeData
from fedsim.errors import ConfigError, DataError

CONTINUAL_KEYS = ("tasks", "rounds_per_task")


def validate(value, num_classes: int | None = None) -> dict | None:
    """Check a `data.continual` mapping; None (or absent) means no continual setting."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(CONTINUAL_KEYS):
        raise ConfigError("data.continual", value, "null or a mapping {tasks: K, rounds_per_task: T}")
    for key in CONTINUAL_KEYS:
        v = value[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"data.continual.{key}", v, "an integer >= 1")
    if num_classes is not None and value["tasks"] > num_classes:
        raise ConfigError("data.continual.tasks", value["tasks"], f"an integer in [1, {num_classes}] (num_classes)",
                          "each task needs at least one class")
    return dict(value)


def task_of_class(num_classes: int, tasks: int) -> np.ndarray:
    """Task index of each class: contiguous, as equal as possible."""
    return (np.arange(num_classes) * tasks) // num_classes


class ContinualStream:
    """One node's task sequence over its full train/test split."""

    def __init__(self, spec: dict, full: NodeData) -> None:
        self.tasks, self.rounds_per_task = spec["tasks"], spec["rounds_per_task"]
        validate(spec, full.num_classes)
        self.full = full
        owner = torch.from_numpy(task_of_class(full.num_classes, self.tasks))
        self.train_task, self.test_task = owner[full.y_train], owner[full.y_test]
        for t in range(self.tasks):
            if not bool((self.train_task == t).any()):
                classes = [c for c in range(full.num_classes) if int(owner[c]) == t]
                raise DataError(f"node {full.name!r} has no training samples of continual task {t} "
                                f"(classes {classes}); use more samples_per_node, fewer tasks or milder label skew")
        self.current: int | None = None
        self.best: dict[int, float] = {}  # task -> best accuracy seen at an earlier evaluation

    def task_at(self, r: int) -> int:
        return min(r // self.rounds_per_task, self.tasks - 1)

    def view(self, t: int) -> NodeData:
        """Train on task t, test on tasks 0..t."""
        tr, te = self.train_task == t, self.test_task <= t
        return dataclasses.replace(self.full, x_train=_keep_layout(self.full.x_train[tr], self.full.x_train),
                                   y_train=self.full.y_train[tr],
                                   x_test=_keep_layout(self.full.x_test[te], self.full.x_test),
                                   y_test=self.full.y_test[te])

    def switch(self, node, r: int) -> None:
        """Called by the host at the start of round r: give the node its current task's data."""
        t = self.task_at(r)
        if t != self.current:
            node.data, self.current = self.view(t), t

    def evaluate(self, node, model) -> dict[str, float]:
        t = self.task_at(node.round)
        cm_all = node.confusion(model, self.full.x_test, self.full.y_test)  # rows = true class
        owner = task_of_class(self.full.num_classes, self.tasks)
        acc = {j: _accuracy(cm_all, owner == j) for j in range(t + 1) if cm_all[owner == j].sum() > 0}
        drops = [self.best[j] - acc[j] for j in range(t) if j in acc and j in self.best]
        out = {"task": float(t), "seen_acc": _accuracy(cm_all, owner <= t),
               "task_acc": acc.get(t, float("nan")), "forgetting": float(np.mean(drops)) if drops else 0.0}
        for j, a in acc.items():
            self.best[j] = max(self.best.get(j, a), a)
        return out


def _accuracy(cm: np.ndarray, classes: np.ndarray) -> float:
    """Accuracy on the samples whose true class is in `classes` (a boolean mask over classes)."""
    total = cm[classes].sum()
    return float(np.diag(cm)[classes].sum() / total) if total else float("nan")


def _keep_layout(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    # nodes keep 4-D images channels_last on CPU (see Node); indexing returns the default layout
    if x.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def attach(cfg: dict, nodes: dict) -> dict[str, ContinualStream]:
    """Streams for a host's nodes when `data.continual` is set; each node starts on task 0."""
    spec = cfg["data"].get("continual")
    if spec is None:
        return {}
    streams = {name: ContinualStream(spec, node.data) for name, node in nodes.items()}
    for name, node in nodes.items():
        streams[name].switch(node, 0)
    return streams
