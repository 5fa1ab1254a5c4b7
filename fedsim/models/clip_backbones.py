"""model: tiny_clip | open_clip — the frozen CLIP backbone a prompt-learning policy builds on.

Both return one process-wide shared, frozen instance per configuration, so the nodes of a worker
hold one backbone between them (memory), and build_model can be called once per node cheaply.
"""
from __future__ import annotations

from pathlib import Path

from fedsim.errors import ConfigError


def _check_seed(opts: dict) -> int:
    v = opts["init_seed"]
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError("model.init_seed", v, "an integer >= 0 (seeds random backbone weights)")
    return v


def build_backbone(name: str, opts: dict, input_shape: tuple[int, ...]):
    seed = _check_seed(opts)
    if len(input_shape) != 3:
        raise ConfigError("model.name", name, "mlp for non-image data", f"{name} encodes images, the data has shape {input_shape}")
    if name == "tiny_clip":
        from fedsim.models import clip_tiny
        w, tw = opts["weights"], opts["text_width"]
        if not isinstance(w, str) or (w not in ("pretrained", "random") and not Path(w).is_file()):
            raise ConfigError("model.weights", w, "pretrained (fedsim/assets/tiny_clip.pt), random, or a weights file")
        if tw is not None and (isinstance(tw, bool) or not isinstance(tw, int) or tw < 8 or tw % 4):
            raise ConfigError("model.text_width", tw, "null (the weights' width) or a multiple of 4 >= 8")
        c, h, w_px = input_shape
        if h != w_px or h % 8:
            raise ConfigError("data.image_size", h, "square images with a side divisible by 8 for tiny_clip")
        try:
            return clip_tiny.shared_backbone(w, c, h, tw, seed)
        except ValueError as exc:
            raise ConfigError("model.weights", w, "weights matching the data and model.text_width", str(exc)) from None
    from fedsim.models.open_clip_adapter import shared_backbone
    w = opts["weights"]
    if w is not None and not isinstance(w, str):
        raise ConfigError("model.weights", w, "null (random weights) or a local weights file")
    return shared_backbone(opts["arch"], w, seed)
