"""ResNet-18 (He et al. 2016), with a CIFAR-style stem for small images and a choice of norm layer.

GroupNorm instead of BatchNorm makes the model usable with per-sample-gradient differential
privacy (Opacus rejects BatchNorm, which mixes samples of a batch).
"""
from __future__ import annotations

import math
from typing import Sequence

from torch import nn


def _norm(kind: str, channels: int, groups: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    # The largest group count <= `groups` that divides the channels (narrow widths have few channels).
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, norm: str, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(norm, c_out, groups)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = _norm(norm, c_out, groups)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:  # project the identity when the shape changes
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          _norm(norm, c_out, groups))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """Four stages of two BasicBlocks at widths 64, 128, 256, 512 (times `width`).

    stem: "cifar" = one 3x3 stride-1 conv (keeps resolution of small images), "imagenet" = 7x7
    stride-2 conv + max-pool, "auto" = cifar below 64 pixels, imagenet otherwise.
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, *, norm: str = "batch",
                 width: float = 1.0, stem: str = "auto", norm_groups: int = 32) -> None:
        super().__init__()
        c_in, h, w = input_shape
        widths = [max(1, int(round(c * width))) for c in (64, 128, 256, 512)]
        if stem == "auto":
            stem = "cifar" if min(h, w) < 64 else "imagenet"
        if stem == "cifar":
            self.stem = nn.Sequential(nn.Conv2d(c_in, widths[0], 3, padding=1, bias=False),
                                      _norm(norm, widths[0], norm_groups), nn.ReLU())
        else:
            self.stem = nn.Sequential(nn.Conv2d(c_in, widths[0], 7, stride=2, padding=3, bias=False),
                                      _norm(norm, widths[0], norm_groups), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        stages, c = [], widths[0]
        for i, c_out in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(c, c_out, stride, norm, norm_groups),
                                        BasicBlock(c_out, c_out, 1, norm, norm_groups)))
            c = c_out
        self.layers = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x):
        return self.head(self.layers(self.stem(x)))
