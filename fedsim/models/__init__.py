"""Model zoo: build_model({name: ..., **options}, input_shape, num_classes) -> nn.Module."""
from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from fedsim.errors import ConfigError
from fedsim.models.cnn import SmallCNN
from fedsim.models.mlp import MLP
from fedsim.models.resnet import ResNet18

MODEL_NAMES = ("mlp", "cnn", "resnet18", "tiny_clip", "open_clip")

# Options each model accepts, with their defaults.
MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": (128,)},
    "cnn": {"channels": (16, 32)},
    "resnet18": {"norm": "batch", "width": 1.0, "stem": "auto", "norm_groups": 32},
    # frozen CLIP backbones for the prompt-learning policies (fedsim/models/clip_backbones.py)
    "tiny_clip": {"weights": "pretrained", "text_width": None, "init_seed": 0},
    "open_clip": {"arch": "ViT-B/16", "weights": None, "init_seed": 0},
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_list(key: str, value: Any, allow_empty: bool) -> tuple[int, ...]:
    ok = isinstance(value, (list, tuple)) and all(_is_int(v) and v > 0 for v in value)
    if not ok or (not value and not allow_empty):
        raise ConfigError(key, value, f"a {'' if allow_empty else 'non-empty '}list of positive integers")
    return tuple(value)


def _image_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ConfigError("model.name", name, "mlp for non-image data",
                          f"{name} needs image input (channels, height, width), the data has shape {input_shape}")
    return input_shape  # type: ignore[return-value]


def build_model(spec: dict, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Instantiate the model named by spec['name'] for inputs of `input_shape` (without batch dim)."""
    if not isinstance(spec, dict):
        raise ConfigError("model", spec, "a mapping such as {name: cnn}")
    name = spec.get("name")
    if name not in MODEL_NAMES:
        raise ConfigError("model.name", name, ", ".join(MODEL_NAMES))
    for key in spec:
        if key != "name" and key not in MODEL_OPTIONS[name]:
            allowed = ", ".join(MODEL_OPTIONS[name]) or "none"
            raise ConfigError(f"model.{key}", spec[key], f"options of {name}: {allowed}", "unknown option")
    if not _is_int(num_classes) or num_classes < 1:
        raise ConfigError("num_classes", num_classes, "a positive integer")
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ConfigError("input_shape", input_shape, "positive dimensions")
    opts = {**MODEL_OPTIONS[name], **{k: v for k, v in spec.items() if k != "name"}}

    if name in ("tiny_clip", "open_clip"):
        from fedsim.models.clip_backbones import build_backbone
        return build_backbone(name, opts, shape)
    if name == "mlp":
        return MLP(shape, num_classes, hidden=_int_list("model.hidden", opts["hidden"], allow_empty=True))
    if name == "cnn":
        channels = _int_list("model.channels", opts["channels"], allow_empty=False)
        c, h, w = _image_shape(name, shape)
        if min(h, w) < 2 ** len(channels):
            raise ConfigError("model.channels", list(channels), f"at most {min(h, w).bit_length() - 1} layers",
                              f"each layer halves the {h}x{w} image")
        return SmallCNN(shape, num_classes, channels=channels)
    _image_shape(name, shape)
    if opts["norm"] not in ("batch", "group"):
        raise ConfigError("model.norm", opts["norm"], "batch, group (group is needed with differential privacy)")
    if isinstance(opts["width"], bool) or not isinstance(opts["width"], (int, float)) or not opts["width"] > 0:
        raise ConfigError("model.width", opts["width"], "a number > 0 (channel multiplier; 1.0 = standard ResNet-18)")
    if opts["stem"] not in ("auto", "cifar", "imagenet"):
        raise ConfigError("model.stem", opts["stem"], "auto, cifar, imagenet")
    if not _is_int(opts["norm_groups"]) or opts["norm_groups"] < 1:
        raise ConfigError("model.norm_groups", opts["norm_groups"], "a positive integer")
    return ResNet18(shape, num_classes, norm=opts["norm"], width=float(opts["width"]), stem=opts["stem"],
                    norm_groups=opts["norm_groups"])


__all__ = ["MODEL_NAMES", "MODEL_OPTIONS", "MLP", "ResNet18", "SmallCNN", "build_model"]
