"""NodeData: the local train/test split of one hospital, as the runtime and policies see it."""
from __future__ import annotations

from dataclasses import dataclass

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
