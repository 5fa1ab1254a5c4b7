"""SmallCNN: the default image model, small enough to train many nodes on CPU."""
from __future__ import annotations

from typing import Sequence

from torch import nn


class SmallCNN(nn.Module):
    """Per width c: conv3x3(pad 1) -> ReLU -> MaxPool2d(2); then Flatten -> Linear(num_classes).

    With the default widths (16, 32) a 1x32x32 input gives Linear(32*8*8 = 2048 -> num_classes).
    The layers run as conv -> MaxPool -> ReLU: max and ReLU commute exactly (same outputs, same
    gradients), and applying ReLU after pooling touches 4x fewer elements, forward and backward.
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, channels: Sequence[int] = (16, 32)) -> None:
        super().__init__()
        c_in, h, w = input_shape
        layers: list[nn.Module] = []
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.MaxPool2d(2), nn.ReLU()]
            c_in, h, w = c_out, h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c_in * h * w, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
