"""CLIP ViT-B/16's parameter shapes, and what one message carrying the whole model costs on the wire.

Only shapes matter for bytes, so the tensors are zeros in OpenAI CLIP ViT-B/16's real shapes
(visual width 768, text width 512, 12 + 12 layers: 149,620,737 parameters); the message is
encoded by the same codec as every fedsim message, not sent.
"""
from __future__ import annotations

import math

import torch

from fedsim.payload import Kind, Payload
from fedsim.wire.codec import encode, wire_bytes


def vit_b16_clip_shapes() -> dict[str, tuple[int, ...]]:
    """Parameter shapes of OpenAI CLIP ViT-B/16 (visual width 768, text width 512, 12+12 layers)."""
    def blocks(prefix, n, w):
        out = {}
        for i in range(n):
            b = f"{prefix}.resblocks.{i}."
            out.update({b + "ln_1.weight": (w,), b + "ln_1.bias": (w,), b + "attn.in_proj_weight": (3 * w, w),
                        b + "attn.in_proj_bias": (3 * w,), b + "attn.out_proj.weight": (w, w),
                        b + "attn.out_proj.bias": (w,), b + "ln_2.weight": (w,), b + "ln_2.bias": (w,),
                        b + "mlp.c_fc.weight": (4 * w, w), b + "mlp.c_fc.bias": (4 * w,),
                        b + "mlp.c_proj.weight": (w, 4 * w), b + "mlp.c_proj.bias": (w,)})
        return out
    shapes = {"visual.class_embedding": (768,), "visual.positional_embedding": (197, 768),
              "visual.proj": (768, 512), "visual.conv1.weight": (768, 3, 16, 16),
              "visual.ln_pre.weight": (768,), "visual.ln_pre.bias": (768,)}
    shapes.update(blocks("visual.transformer", 12, 768))
    shapes.update({"visual.ln_post.weight": (768,), "visual.ln_post.bias": (768,),
                   "positional_embedding": (77, 512), "text_projection": (512, 512), "logit_scale": (),
                   "token_embedding.weight": (49408, 512), "ln_final.weight": (512,), "ln_final.bias": (512,)})
    shapes.update(blocks("transformer", 12, 512))
    return shapes


def whole_model_message_bytes() -> tuple[int, int]:
    shapes = vit_b16_clip_shapes()
    tensors = {k: torch.zeros(s) for k, s in shapes.items()}
    frames = encode(Payload(Kind.MODEL, tensors), run_id="bench", round=0, src="a", dst="b", tag="model",
                    message_id="m", lazy=True)
    return sum(math.prod(s) for s in shapes.values()), wire_bytes(frames)
