"""MLP: a plain fully connected classifier for tabular data or flattened small images."""
from __future__ import annotations

import math
from typing import Sequence

from torch import nn


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU] per hidden width -> Linear(num_classes)."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (128,)) -> None:
        super().__init__()
        widths = [math.prod(input_shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
