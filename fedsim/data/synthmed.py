"""synthmed: procedurally generated, medical-looking scans with hospital-specific acquisition shift.

Class 0 is healthy tissue; class k >= 1 is one lesion family at one size and one location, with
the family varying fastest, so the first classes are the most different ones and class k means
the same thing for any num_classes (class_names(n) is a prefix of class_names(MAX_CLASSES)).
Everything a node gets is a function of (seed, node index) alone, so a worker can build just
its own nodes.
"""
from __future__ import annotations

import numpy as np

from fedsim.data import lesions, scanner
from fedsim.errors import ConfigError

MAX_CLASSES = 1 + len(lesions.FAMILIES) * len(lesions.SIZES) * len(lesions.LOCATIONS)

# Random streams of one node.
_LABELS, _ANATOMY, _LESIONS, _SCANNER, _ACQUIRE = 1, 2, 3, 4, 5


def _parts(k: int) -> tuple[int, int, int]:
    """(family, size, location) indices of lesion class k >= 1."""
    j = k - 1
    nf, ns = len(lesions.FAMILIES), len(lesions.SIZES)
    return j % nf, (j // nf) % ns, j // (nf * ns)


def class_names(num_classes: int) -> list[str]:
    """Human-readable names, e.g. 'healthy', 'large central round nodule', 'small left cyst'."""
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ConfigError("data.num_classes", num_classes, f"an integer in [1, {MAX_CLASSES}] for synthmed")
    names = ["healthy"]
    for k in range(1, num_classes):
        f, s, loc = _parts(k)
        names.append(f"{lesions.SIZES[s]} {lesions.LOCATIONS[loc]} {lesions.FAMILIES[f]}")
    return names


def _rng(seed: int, node_index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(node_index), stream])


def _labels(seed: int, node_index: int, n: int, num_classes: int, label_alpha: float | None) -> np.ndarray:
    rng = _rng(seed, node_index, _LABELS)
    if label_alpha is None:  # exactly balanced (up to n % num_classes), in random order
        return rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    p = rng.dirichlet(np.full(num_classes, float(label_alpha)))
    return rng.choice(num_classes, size=n, p=p).astype(np.int64)


def generate(seed: int, node_index: int, n: int, *, num_classes: int = 2, image_size: int = 32,
             channels: int = 1, shift: float = 1.0, label_alpha: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """n scans of hospital `node_index`: images (n, channels, S, S) float32 in [0, 1] and int64 labels."""
    class_names(num_classes)  # validates num_classes
    if channels not in (1, 3):
        raise ConfigError("data.channels", channels, "1 (grayscale) or 3 (RGB) for synthmed")
    if not isinstance(image_size, int) or image_size < 16:
        raise ConfigError("data.image_size", image_size, "an integer >= 16 for synthmed")
    if not shift >= 0:
        raise ConfigError("data.shift", shift, "a number >= 0 (0 = identical scanners, 1 = default, 2 = strong)")
    if label_alpha is not None and not label_alpha > 0:
        raise ConfigError("data.label_alpha", label_alpha, "null (balanced classes) or a number > 0")
    y = _labels(seed, node_index, n, num_classes, label_alpha)
    table = np.array([(-1, -1, -1)] + [_parts(k) for k in range(1, num_classes)])[y].reshape(n, 3)
    anat = lesions.anatomy(_rng(seed, node_index, _ANATOMY), n, image_size)
    clean = anat.image + lesions.lesions(_rng(seed, node_index, _LESIONS), table[:, 0], table[:, 1], table[:, 2], anat)
    device = scanner.make_scanner(_rng(seed, node_index, _SCANNER), shift, channels)
    return scanner.acquire(clean, device, _rng(seed, node_index, _ACQUIRE)), y
