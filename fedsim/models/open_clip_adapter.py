"""open_clip CLIP backbones (ViT-B/16, ViT-B/32) behind the prompt-learner contract of clip_tiny.

Needs the `[clip]` extra (`pip install -e .[clip]`, i.e. open_clip_torch). Weights come from a local
file when `weights` names one (an OpenAI/open_clip checkpoint), else they are random — enough for
timing and byte measurements, where only the tensor shapes matter. Nothing is downloaded.

Text with learned context goes through open_clip's own `encode_text`: a forward hook swaps the
token embeddings for ours, so positional embeddings, the layout of the transformer, the final
LayerNorm, the EOT pooling and the projection are exactly the library's for any of its versions.
"""
from __future__ import annotations

import threading
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from fedsim.errors import ConfigError

ARCHS = {"ViT-B/16": "ViT-B-16", "ViT-B/32": "ViT-B-32", "ViT-B-16": "ViT-B-16", "ViT-B-32": "ViT-B-32"}
MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's input normalisation
STD = (0.26862954, 0.26130258, 0.27577711)


def import_open_clip():
    """The open_clip module, or ImportError saying why it cannot be used here."""
    try:
        import open_clip  # noqa: F401  (pulls torchvision, which must match the installed torch)
    except Exception as exc:  # a broken torchvision raises RuntimeError/OSError, not only ImportError
        raise ImportError(f"open_clip cannot be imported ({type(exc).__name__}: {exc}); "
                          "install the [clip] extra with a torchvision matching your torch") from exc
    return open_clip


class OpenClipBackbone(nn.Module):
    handwritten = "a photo of a {}."

    def __init__(self, arch: str = "ViT-B/16", weights: str | None = None, init_seed: int = 0) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ConfigError("model.arch", arch, ", ".join(sorted(set(ARCHS) - {"ViT-B-16", "ViT-B-32"})))
        open_clip = import_open_clip()
        name = ARCHS[arch]
        if weights is not None and not Path(weights).is_file():
            raise ConfigError("model.weights", weights, "null (random weights) or an existing local weights file")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.clip = open_clip.create_model(name, pretrained=str(weights) if weights else None)
        self._tokenizer = open_clip.get_tokenizer(name)
        for p in self.clip.parameters():
            p.requires_grad_(False)
        self.clip.eval()
        self.arch = arch
        self.text_width = self.clip.token_embedding.weight.shape[1]
        self.context_length = self.clip.positional_embedding.shape[0]
        size = self.clip.visual.image_size
        self.image_size = size[0] if isinstance(size, (tuple, list)) else int(size)
        self._swap = threading.local()
        self._lock = threading.Lock()
        self.clip.token_embedding.register_forward_hook(self._replace_embeddings)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale

    def _replace_embeddings(self, module, inputs, output):
        emb = getattr(self._swap, "emb", None)
        return output if emb is None else emb.to(output.dtype)

    # -- the backbone contract (see fedsim/models/clip_tiny.py)
    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self._tokenizer(texts)

    def eot_index(self, ids: torch.Tensor) -> torch.Tensor:
        return ids.argmax(dim=-1)  # CLIP's EOT token has the largest id

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.clip.token_embedding(ids)

    def encode_embedded(self, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        with self._lock:
            self._swap.emb = emb
            try:
                return self.clip.encode_text(ids)
            finally:
                self._swap.emb = None

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_text(ids)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], any size, 1 or 3 channels -> CLIP's resolution and normalisation."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
        return self.clip.encode_image((x - mean) / std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_image(x)


_SHARED: dict[tuple, OpenClipBackbone] = {}
_LOCK = threading.Lock()


def shared_backbone(arch: str, weights: str | None, init_seed: int = 0) -> OpenClipBackbone:
    """One frozen open_clip backbone per (arch, weights) per process, shared by its nodes."""
    key = (arch, weights, init_seed)
    with _LOCK:
        if key not in _SHARED:
            _SHARED[key] = OpenClipBackbone(arch, weights, init_seed)
        return _SHARED[key]
