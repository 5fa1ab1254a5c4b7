"""A tiny CLIP for synthmed: small CNN image encoder, small causal text transformer, closed vocabulary.

It stands in for OpenAI's CLIP in offline runs: `scripts/pretrain_tiny_clip.py` pretrains it
contrastively on synthmed scans with captions over all 81 classes (as CLIP was pretrained on web
captions before anyone learned prompts on it) and ships the weights as fedsim/assets/tiny_clip.pt.

Backbone contract shared with the open_clip adapter (what the prompt learner needs):
    tokenizer.encode(text, context_length) -> LongTensor   ([SOS] words... [EOS] padding)
    embed_tokens(ids) -> (B, L, text_width)                token embeddings, before positions
    encode_embedded(emb, ids) -> (B, embed_dim)            text transformer from (replaced) embeddings
    encode_text(ids), encode_image(x) -> (B, embed_dim);  logit_scale (log of 1 / temperature)
    text_width, context_length, handwritten (the zero-shot prompt template)
"""
from __future__ import annotations

import math
import re
import threading
import weakref
from pathlib import Path

import torch
import torch.nn as nn

from fedsim.data import lesions

ASSET = Path(__file__).resolve().parent.parent / "assets" / "tiny_clip.pt"

# Caption templates of the pretraining corpus: {} is the class name, {s} the scanner's look (e.g.
# "blurry noisy "), as web captions sometimes say how a photo looks. The hand-written zero-shot
# prompt is the first template without style words; a learned context can take their place.
TEMPLATES = ("a {s}scan showing a {}.", "a {s}scan of a {}.", "an {s}image with a {}.", "a {} on the {s}scan.",
             "a {s}medical scan showing a {}.", "this {s}scan shows a {}.", "{}.")
HANDWRITTEN = TEMPLATES[0].replace("{s}", "")
STYLE_WORDS = ("blurry", "sharp", "noisy", "low-contrast", "high-contrast", "bright", "dark")
SPECIALS = ("<pad>", "<sos>", "<eos>", "X", ".")  # X: placeholder a learned context vector replaces


def _vocabulary() -> list[str]:
    words = {"healthy", *lesions.SIZES, *lesions.LOCATIONS, *STYLE_WORDS}
    for family in lesions.FAMILIES:
        words.update(family.split())
    for t in TEMPLATES:
        words.update(t.replace("{s}", " ").replace("{}", " ").replace(".", " ").split())
    return [*SPECIALS, *sorted(words)]


class Tokenizer:
    """Whitespace tokenizer over a fixed vocabulary; '.' is its own token. Unknown words are an error."""

    def __init__(self, vocab: list[str] | None = None) -> None:
        self.vocab = list(vocab or _vocabulary())
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.sos_id, self.eos_id = 0, 1, 2

    def words(self, text: str) -> list[str]:
        return [w if w == "X" else w.lower() for w in re.sub(r"\.", " . ", text).split()]

    def encode(self, text: str, context_length: int) -> torch.Tensor:
        unknown = [w for w in self.words(text) if w not in self.index]
        if unknown:
            raise ValueError(f"tiny CLIP vocabulary has no word(s) {unknown} (text {text!r}); "
                             f"known: {', '.join(self.vocab[len(SPECIALS):])}")
        ids = [self.sos_id, *(self.index[w] for w in self.words(text)), self.eos_id]
        if len(ids) > context_length:
            raise ValueError(f"{text!r} needs {len(ids)} tokens, the text encoder takes {context_length}")
        return torch.tensor(ids + [self.pad_id] * (context_length - len(ids)), dtype=torch.long)

    def batch(self, texts: list[str], context_length: int) -> torch.Tensor:
        return torch.stack([self.encode(t, context_length) for t in texts])


class ImageEncoder(nn.Module):
    """Conv stack down to a 4x4 map, then flattened (not pooled: lesion *location* is part of the class)."""

    def __init__(self, channels: int, image_size: int, width: int, embed_dim: int) -> None:
        super().__init__()
        layers, c_in = [], channels
        for c_out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.MaxPool2d(2), nn.ReLU()]
            c_in = c_out
        layers += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.ReLU(), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        side = image_size // 8
        self.head = nn.Sequential(nn.Linear(c_in * side * side, 4 * width), nn.ReLU(), nn.Linear(4 * width, embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class TinyCLIP(nn.Module):
    handwritten = HANDWRITTEN

    def __init__(self, *, channels: int = 1, image_size: int = 32, image_width: int = 16, embed_dim: int = 64,
                 text_width: int = 64, text_layers: int = 2, text_heads: int = 4, context_length: int = 20,
                 vocab: list[str] | None = None) -> None:
        super().__init__()
        if image_size % 8:
            raise ValueError(f"tiny CLIP needs an image size divisible by 8, got {image_size}")
        self.tokenizer = Tokenizer(vocab)
        self.config = dict(channels=channels, image_size=image_size, image_width=image_width, embed_dim=embed_dim,
                           text_width=text_width, text_layers=text_layers, text_heads=text_heads,
                           context_length=context_length, vocab=self.tokenizer.vocab)
        self.text_width, self.context_length, self.embed_dim = text_width, context_length, embed_dim
        self.visual = ImageEncoder(channels, image_size, image_width, embed_dim)
        self.token_embedding = nn.Embedding(len(self.tokenizer.vocab), text_width)
        self.positional_embedding = nn.Parameter(torch.randn(context_length, text_width) * 0.01)
        layer = nn.TransformerEncoderLayer(text_width, text_heads, 4 * text_width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, text_layers, enable_nested_tensor=False)
        self.ln_final = nn.LayerNorm(text_width)
        self.text_projection = nn.Parameter(torch.randn(text_width, embed_dim) * text_width ** -0.5)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.register_buffer("causal_mask", nn.Transformer.generate_square_subsequent_mask(context_length),
                             persistent=False)

    # -- the backbone contract
    def eot_index(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids == self.tokenizer.eos_id).int().argmax(dim=1)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer.batch(texts, self.context_length)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(ids)

    def encode_embedded(self, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The text transformer on token embeddings `emb` (B, L, W) of the token ids `ids` (B, L)."""
        eot_index = self.eot_index(ids)
        x = emb + self.positional_embedding[: emb.shape[1]]
        x = self.transformer(x, mask=self.causal_mask[: emb.shape[1], : emb.shape[1]], is_causal=True)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), eot_index] @ self.text_projection

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.encode_embedded(self.embed_tokens(ids), ids)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image features: on its own the backbone is an encoder, not a classifier."""
        return self.encode_image(x)


def freeze(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def save(model: TinyCLIP, path: str | Path, **info) -> None:
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save({"config": model.config, "state": state, "info": info}, path)


def load(path: str | Path = ASSET) -> TinyCLIP:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = TinyCLIP(**blob["config"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state"].items()})
    return freeze(model)


# One frozen backbone per (weights, shape) per process: every node of a worker shares it.
_SHARED: "weakref.WeakValueDictionary[tuple, TinyCLIP]" = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


def shared_backbone(weights: str, channels: int, image_size: int, text_width: int | None = None,
                    init_seed: int = 0) -> TinyCLIP:
    """The process-wide frozen tiny CLIP: 'pretrained' (the shipped asset), 'random', or a weights file.

    Random weights are seeded by `init_seed` alone (not the caller's RNG), so the shared copy is the
    same whichever node asks first.
    """
    path = ASSET if weights == "pretrained" else None if weights == "random" else Path(weights)
    key = (str(path), channels, image_size, text_width, init_seed)
    with _LOCK:
        model = _SHARED.get(key)
        if model is None:
            if path is None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(init_seed)
                    model = freeze(TinyCLIP(channels=channels, image_size=image_size, text_width=text_width or 64,
                                                  embed_dim=text_width or 64))  # as CLIP ViT-B/16: 512 and 512
            else:
                model = load(path)
                got = (model.config["channels"], model.config["image_size"])
                if got != (channels, image_size):
                    raise ValueError(f"tiny CLIP weights {path} are for {got[0]}-channel {got[1]}px images, "
                                     f"the data has {channels}-channel {image_size}px images")
                if text_width is not None and text_width != model.text_width:
                    raise ValueError(f"tiny CLIP weights {path} have text width {model.text_width}, "
                                     f"model.text_width asks for {text_width}")
            _SHARED[key] = model
        return model
