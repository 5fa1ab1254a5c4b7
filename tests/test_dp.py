"""Differential privacy setup: models Opacus cannot handle are fixed or refused clearly."""
from __future__ import annotations

import pytest
import torch

from fedsim.errors import ConfigError
from fedsim.models import build_model
from fedsim.privacy.dp import make_dp_compatible


def test_batchnorm_refused_without_auto_fix():
    model = build_model({"name": "resnet18", "norm": "batch", "width": 0.25}, (1, 32, 32), 2)
    with pytest.raises(ConfigError, match="privacy.dp.auto_fix"):
        make_dp_compatible(model, auto_fix=False)


def test_batchnorm_replaced_with_auto_fix():
    model = build_model({"name": "resnet18", "norm": "batch", "width": 0.25}, (1, 32, 32), 2)
    fixed = make_dp_compatible(model, auto_fix=True)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fixed.modules())
    assert fixed(torch.zeros(2, 1, 32, 32)).shape == (2, 2)
