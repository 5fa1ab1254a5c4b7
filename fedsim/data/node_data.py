"""NodeData: the local train/test split of one hospital, as the runtime and policies see it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from fedsim.errors import DataError


@dataclass
class NodeData:
    """One node's tensors. x_* are float32 of shape (N, *input_shape); y_* are int64 in [0, num_classes)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    class_names: list[str]

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(d) for d in self.input_shape)
        self.class_names = list(self.class_names)
        where = f"node {self.name!r}"
        if self.num_classes < 1 or len(self.class_names) != self.num_classes:
            raise DataError(f"{where}: {len(self.class_names)} class names for num_classes={self.num_classes}")
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.float32:
                raise DataError(f"{where}: x_{split} must be float32, got {x.dtype}")
            if y.dtype != torch.int64 or y.dim() != 1:
                raise DataError(f"{where}: y_{split} must be a 1-d int64 tensor, got {y.dtype} of shape {tuple(y.shape)}")
            if x.shape[0] != y.shape[0]:
                raise DataError(f"{where}: x_{split} has {x.shape[0]} samples but y_{split} has {y.shape[0]}")
            if tuple(x.shape[1:]) != self.input_shape:
                raise DataError(f"{where}: x_{split} samples have shape {tuple(x.shape[1:])}, "
                                f"input_shape says {self.input_shape}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise DataError(f"{where}: y_{split} has labels outside [0, {self.num_classes})")
        if self.n_train == 0:
            raise DataError(f"{where}: no training samples")

    @classmethod
    def from_arrays(cls, name: str, x_train: Any, y_train: Any, x_test: Any, y_test: Any, *,
                    num_classes: int | None = None, class_names: Sequence[str] | None = None) -> "NodeData":
        """A node's split from numpy arrays or tensors: x becomes float32 (N, *input_shape), y int64.

        Give `num_classes` or `class_names` when a node may miss some classes (label skew), so that
        every node agrees on the label space; otherwise it is max label + 1 of this node.
        """
        xs = [torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(torch.float32).contiguous()
              for x in (x_train, x_test)]
        ys = [torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).to(torch.int64).reshape(-1)
              for y in (y_train, y_test)]
        if class_names is not None:
            names = [str(c) for c in class_names]
        else:
            k = num_classes if num_classes is not None else int(max(int(y.max()) if y.numel() else -1 for y in ys)) + 1
            names = [f"class {i}" for i in range(k)]
        return cls(name, xs[0], ys[0], xs[1], ys[1], len(names), tuple(xs[0].shape[1:]), names)

    @property
    def n_train(self) -> int:
        return int(self.y_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.y_test.shape[0])

    def class_counts(self, split: str = "train") -> np.ndarray:
        """Samples per class (length num_classes) in the 'train' or 'test' split."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        y = self.y_train if split == "train" else self.y_test
        return torch.bincount(y, minlength=self.num_classes).numpy()
