"""Model zoo: build_model({name: ..., **options}, input_shape, num_classes) -> nn.Module.

`name` is a built-in below or a user model (registry: 'package.module:attr' or an entry point in
group `fedsim.models`). Every model, built-in or not, is called as
`attr(input_shape, num_classes, **options)` and must return an nn.Module whose output for a batch
of B inputs has shape (B, num_classes) (`check_output` verifies it before a run starts).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import torch
from torch import nn

from fedsim.errors import ConfigError
from fedsim.models.cnn import SmallCNN
from fedsim.models.mlp import MLP
from fedsim.models.resnet import ResNet18
from fedsim.options import Option, options_of


def _image_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ConfigError("model.name", name, "mlp for non-image data",
                          f"{name} needs image input (channels, height, width), the data has shape {input_shape}")
    return input_shape  # type: ignore[return-value]


def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: Sequence[int] = (128,)) -> nn.Module:
    """Multilayer perceptron on flattened inputs (images or tabular features)."""
    return MLP(input_shape, num_classes, hidden=tuple(hidden))


mlp.options = {"hidden": Option.int_list((128,), "hidden layer widths ([] = logistic regression)")}  # type: ignore[attr-defined]


def cnn(input_shape: tuple[int, ...], num_classes: int, channels: Sequence[int] = (16, 32)) -> nn.Module:
    """Small CNN: conv + max-pool + ReLU blocks, then a linear classifier."""
    c, h, w = _image_shape("cnn", input_shape)
    if min(h, w) < 2 ** len(channels):
        raise ConfigError("model.channels", list(channels), f"at most {min(h, w).bit_length() - 1} layers",
                          f"each layer halves the {h}x{w} image")
    return SmallCNN(input_shape, num_classes, channels=tuple(channels))


cnn.options = {"channels": Option.int_list((16, 32), "channels per conv layer (each halves the image)",  # type: ignore[attr-defined]
                                           allow_empty=False)}


def resnet18(input_shape: tuple[int, ...], num_classes: int, norm: str = "batch", width: float = 1.0,
             stem: str = "auto", norm_groups: int = 32) -> nn.Module:
    """ResNet-18 (batch or group norm, width multiplier, CIFAR or ImageNet stem)."""
    _image_shape("resnet18", input_shape)
    return ResNet18(input_shape, num_classes, norm=norm, width=float(width), stem=stem, norm_groups=norm_groups)


resnet18.options = {  # type: ignore[attr-defined]
    "norm": Option.choice("batch", ("batch", "group"), "normalisation layers (group is needed with differential privacy)"),
    "width": Option.number(1.0, "channel multiplier (1.0 = standard ResNet-18)", min=0, min_strict=True),
    "stem": Option.choice("auto", ("auto", "cifar", "imagenet"), "input stem (auto: cifar below 64 px)"),
    "norm_groups": Option.integer(32, "groups of GroupNorm", min=1),
}


def _clip(name: str) -> Callable[..., nn.Module]:
    def build(input_shape: tuple[int, ...], num_classes: int, **opts: Any) -> nn.Module:
        from fedsim.models.clip_backbones import build_backbone
        return build_backbone(name, {**options_of(build).defaults(), **opts}, input_shape)
    build.__name__ = name
    build.__doc__ = f"Frozen CLIP backbone ({name}) for the prompt-learning policies."
    return build


tiny_clip = _clip("tiny_clip")
tiny_clip.options = {  # type: ignore[attr-defined]
    "weights": Option("pretrained", "pretrained (fedsim/assets/tiny_clip.pt), random, or a weights file"),
    "text_width": Option(None, "text embedding width (null: the weights' width)"),
    "init_seed": Option.integer(0, "seed of random backbone weights", min=0),
}
open_clip = _clip("open_clip")
open_clip.options = {  # type: ignore[attr-defined]
    "arch": Option("ViT-B/16", "open_clip architecture (needs the [clip] extra)"),
    "weights": Option(None, "null (random weights) or a local weights file"),
    "init_seed": Option.integer(0, "seed of random backbone weights", min=0),
}

BUILTIN_MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp, "cnn": cnn, "resnet18": resnet18, "tiny_clip": tiny_clip, "open_clip": open_clip}
MODEL_NAMES = tuple(BUILTIN_MODELS)
# frozen CLIP backbones: not classifiers, the prompt policies build the classifier on top
BACKBONES = ("tiny_clip", "open_clip")


def build_model(spec: dict, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Instantiate the model `spec['name']` names for inputs of `input_shape` (without batch dim)."""
    from fedsim.registry import resolve

    if not isinstance(spec, dict):
        raise ConfigError("model", spec, "a mapping such as {name: cnn}")
    name = spec.get("name")
    attr = resolve("models", name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError("num_classes", num_classes, "a positive integer")
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ConfigError("input_shape", input_shape, "positive dimensions")
    owner = name if name in BUILTIN_MODELS else f"model {name}"
    opts = options_of(attr).resolve(spec, "model.", owner)
    if name in BUILTIN_MODELS:
        return attr(shape, num_classes, **opts)
    try:
        model = attr(shape, num_classes, **opts)
    except ConfigError:
        raise
    except Exception as exc:  # the user's constructor: its own words, one line
        raise ConfigError("model.name", name, f"a model built as {_call_text(attr)}(input_shape={shape}, "
                          f"num_classes={num_classes}, **options)", f"{type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError("model.name", name, "a callable returning an nn.Module", f"it returned {type(model).__name__}")
    return model


def check_output(model: nn.Module, spec: dict, input_shape: Sequence[int], num_classes: int) -> None:
    """A forward pass of two zero inputs must give (2, num_classes) logits: say so before any worker starts."""
    if spec.get("name") in BACKBONES:
        return
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except Exception as exc:
        raise ConfigError("model.name", spec.get("name"), f"a model accepting inputs of shape (batch, {', '.join(map(str, input_shape))})",
                          f"the forward pass raised {type(exc).__name__}: {exc}") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError("model.name", spec.get("name"), f"logits of shape (batch, num_classes={num_classes})",
                          f"for a batch of 2 it returned {got}")


def _call_text(attr: Any) -> str:
    return attr.__qualname__ if inspect.isclass(attr) or inspect.isfunction(attr) else type(attr).__name__


__all__ = ["BUILTIN_MODELS", "MODEL_NAMES", "MLP", "ResNet18", "SmallCNN", "build_model", "check_output"]
