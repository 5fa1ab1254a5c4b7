"""The base-to-new few-shot setting of CoOp-style federated prompt learning (FedTPG, ZeroDFL).

The classes of a dataset are shuffled once (run seed) and cut in two: *base* classes, dealt out to
the clients as disjoint sets, and *new* classes no client ever trains on. Each client trains on
`shots` images of each of its own base classes, and is scored on
    base accuracy: its test images of its own base classes, among its base classes, and
    new accuracy:  its test images of all new classes, among all new classes,
with their harmonic mean HM = 2 base new / (base + new).
Every node computes the same split from (num_classes, node names, seed), so no message is needed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedsim.data.node_data import NodeData
from fedsim.errors import ConfigError, DataError


@dataclass
class FewShotTask:
    base_classes: list[int]   # global class ids, in label order of y_train / y_base
    new_classes: list[int]    # global class ids, in label order of y_new
    base_names: list[str]
    new_names: list[str]
    x_train: torch.Tensor     # shots x len(base_classes) images
    y_train: torch.Tensor     # indices into base_classes
    x_base: torch.Tensor      # test images of the client's base classes
    y_base: torch.Tensor
    x_new: torch.Tensor       # test images of the new classes
    y_new: torch.Tensor       # indices into new_classes


def split_classes(num_classes: int, clients: list[str], seed: int, *, base_fraction: float = 0.5,
                  per_client: int | None = None) -> tuple[dict[str, list[int]], list[int]]:
    """({client: its base class ids}, new class ids). Clients are taken in sorted name order."""
    if not 0 < base_fraction < 1:
        raise ConfigError("policy.base_fraction", base_fraction, "a number in (0, 1)")
    clients = sorted(clients)
    perm = np.random.default_rng([int(seed), 7]).permutation(num_classes)
    n_base = int(round(num_classes * base_fraction))
    base, new = perm[:n_base], perm[n_base:]
    k = n_base // len(clients) if per_client is None else per_client
    if k < 1 or k * len(clients) > n_base:
        raise ConfigError("policy.classes_per_client", per_client,
                          f"an integer in [1, {n_base // len(clients)}]",
                          f"{n_base} base classes of {num_classes} shared by {len(clients)} clients without overlap; "
                          "raise data.num_classes or base_fraction")
    if len(new) < 2:
        raise ConfigError("data.num_classes", num_classes, "enough classes to leave >= 2 new (unseen) classes")
    return ({c: sorted(int(v) for v in base[i * k:(i + 1) * k]) for i, c in enumerate(clients)},
            sorted(int(v) for v in new))


def _relabel(y: torch.Tensor, classes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask of samples in `classes`, their labels as indices into `classes`)."""
    lookup = torch.full((int(max(classes)) + 1 if classes else 1,), -1, dtype=torch.long)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    inside = y <= lookup.shape[0] - 1
    local = torch.where(inside, lookup[y.clamp(max=lookup.shape[0] - 1)], -1)
    return local >= 0, local


def make_task(data: NodeData, base: list[int], new: list[int], shots: int, seed: int) -> FewShotTask:
    """Pick `shots` training images per base class (seeded) and the base/new test sets of one node."""
    if shots < 1:
        raise ConfigError("policy.shots", shots, "an integer >= 1")
    rng = np.random.default_rng([int(seed), 11])
    picked = []
    for c in base:
        pool = torch.nonzero(data.y_train == c).flatten().numpy()
        if len(pool) < shots:
            raise DataError(f"node {data.name!r} has {len(pool)} training images of class {c} "
                            f"({data.class_names[c]!r}), {shots}-shot learning needs {shots}; "
                            "raise data.samples_per_node")
        picked.append(np.sort(rng.choice(pool, shots, replace=False)))
    idx = torch.from_numpy(np.concatenate(picked))
    _, y_train = _relabel(data.y_train[idx], base)
    in_base, y_base = _relabel(data.y_test, base)
    in_new, y_new = _relabel(data.y_test, new)
    if not bool(in_new.any()):
        raise DataError(f"node {data.name!r} has no test images of any new class; raise data.samples_per_node")
    return FewShotTask(base, new, [data.class_names[c] for c in base], [data.class_names[c] for c in new],
                       data.x_train[idx], y_train, data.x_test[in_base], y_base[in_base],
                       data.x_test[in_new], y_new[in_new])


def harmonic_mean(base: float, new: float) -> float:
    return 2 * base * new / (base + new) if base + new > 0 else 0.0
