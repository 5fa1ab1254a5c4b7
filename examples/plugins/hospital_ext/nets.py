"""LeNet-style CNN, as a user model: fedsim calls LeNet(input_shape, num_classes, **options)."""
from __future__ import annotations

import torch
from torch import nn

import fedsim


class LeNet(nn.Module):
    options = {
        "width": fedsim.Option.integer(6, "channels of the first conv layer (the second has 2.5x)", min=1),
        "dropout": fedsim.Option.number(0.0, "dropout before the classifier", min=0, max=1, max_strict=True),
    }

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 6, dropout: float = 0.0):
        super().__init__()
        channels, height, _ = input_shape
        second = int(width * 2.5)
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, second, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = height // 4
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(second * side * side, 64),
                                        nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
