"""Model zoo: output shapes, exact SmallCNN architecture, GroupNorm ResNet, option validation."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fedsim.errors import ConfigError
from fedsim.models import MODEL_NAMES, build_model

SHAPES = [(1, 32, 32), (3, 32, 32), (1, 8, 8)]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("shape", SHAPES + [(30,)])
def test_mlp_output_shape(shape):
    model = build_model({"name": "mlp"}, shape, 5)
    assert model(torch.randn(4, *shape)).shape == (4, 5)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["cnn", "resnet18"])
def test_image_models_output_shape(name, shape):
    spec = {"name": name} if name == "cnn" else {"name": name, "width": 0.25}
    model = build_model(spec, shape, 7).eval()
    assert model(torch.randn(2, *shape)).shape == (2, 7)


def test_small_cnn_matches_reference_architecture_exactly():
    reference = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 2))
    model = build_model({"name": "cnn"}, (1, 32, 32), 2)
    assert n_params(model) == n_params(reference) == 16 * 9 + 16 + 32 * 16 * 9 + 32 + 2048 * 2 + 2
    assert [tuple(p.shape) for p in model.parameters()] == [tuple(p.shape) for p in reference.parameters()]
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(2048, 2)]
    # Same weights give the same function: the layer order is the reference's too.
    model.load_state_dict(dict(zip(model.state_dict(), reference.state_dict().values())))
    x = torch.randn(3, 1, 32, 32)
    assert torch.allclose(model(x), reference(x))


def test_mlp_hidden_layers():
    model = build_model({"name": "mlp", "hidden": [64, 32]}, (30,), 2)
    assert [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)] == [
        (30, 64), (64, 32), (32, 2)]


def test_resnet18_structure_and_group_norm():
    bn = build_model({"name": "resnet18"}, (3, 32, 32), 10)
    # Standard CIFAR ResNet-18: about 11.17M parameters.
    assert 11_100_000 < n_params(bn) < 11_250_000
    assert sum(isinstance(m, nn.Conv2d) for m in bn.modules()) == 1 + 16 + 3  # stem, 8 blocks x 2, shortcuts
    gn = build_model({"name": "resnet18", "norm": "group", "width": 0.5}, (1, 32, 32), 4)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in gn.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in gn.modules())
    gn.train()
    assert gn(torch.randn(1, 1, 32, 32)).shape == (1, 4)  # GroupNorm works on a batch of one


def test_resnet_stem_choice():
    auto_small = build_model({"name": "resnet18", "width": 0.25}, (1, 32, 32), 2)
    auto_large = build_model({"name": "resnet18", "width": 0.25}, (1, 64, 64), 2)
    assert auto_small.stem[0].kernel_size == (3, 3) and auto_large.stem[0].kernel_size == (7, 7)
    assert build_model({"name": "resnet18", "width": 0.25}, (1, 64, 64), 2).eval()(torch.randn(1, 1, 64, 64)).shape == (1, 2)


@pytest.mark.parametrize("spec, shape, match", [
    ({"name": "vgg"}, (1, 32, 32), "model.name"),
    ({"name": "cnn", "hidden": [3]}, (1, 32, 32), "model.hidden.*options of cnn: channels"),
    ({"name": "cnn"}, (30,), "cnn needs image input"),
    ({"name": "resnet18"}, (30,), "resnet18 needs image input"),
    ({"name": "cnn", "channels": []}, (1, 32, 32), "model.channels"),
    ({"name": "cnn", "channels": [8, 8, 8, 8]}, (1, 8, 8), "at most 3 layers"),
    ({"name": "mlp", "hidden": [0]}, (30,), "model.hidden"),
    ({"name": "resnet18", "norm": "layer"}, (1, 32, 32), "model.norm.*batch, group"),
    ({"name": "resnet18", "width": 0}, (1, 32, 32), "model.width"),
    ({"name": "resnet18", "stem": "big"}, (1, 32, 32), "model.stem"),
    ("cnn", (1, 32, 32), "'model'"),
])
def test_bad_model_specs_name_the_key(spec, shape, match):
    with pytest.raises(ConfigError, match=match):
        build_model(spec, shape, 2)


def test_model_names():
    assert MODEL_NAMES == ("mlp", "cnn", "resnet18", "tiny_clip", "open_clip")
    for name in MODEL_NAMES[:3]:  # the frozen CLIP backbones are tested in test_clip.py
        shape = (1, 8, 8)
        spec = {"name": name, "width": 0.125} if name == "resnet18" else {"name": name}
        assert isinstance(build_model(spec, shape, 3), nn.Module)
