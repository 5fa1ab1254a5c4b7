"""Image-field helpers for synthmed: a coordinate grid, Gaussian blur, smooth random textures."""
from __future__ import annotations

import functools

import numpy as np


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates X (columns) and Y (rows) in [-1, 1], each (size, size)."""
    t = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    y, x = np.meshgrid(t, t, indexing="ij")
    return x, y


@functools.lru_cache(maxsize=256)
def blur_matrix(size: int, sigma: float) -> np.ndarray:
    """(size, size) matrix B with B @ img @ B.T = Gaussian blur (std `sigma` px, mirrored borders).

    Two small matrix products blur a whole batch far faster than a 1-channel conv on CPU. Cached
    (read-only): every hospital of a worker blurs with the same few matrices.
    """
    if sigma < 0.05:
        eye = np.eye(size, dtype=np.float32)
        eye.setflags(write=False)
        return eye
    radius = int(np.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-(offsets ** 2) / (2 * sigma ** 2))
    src = (np.arange(size)[:, None] + offsets[None, :]) % (2 * size)
    src = np.where(src >= size, 2 * size - 1 - src, src)  # mirror at both borders
    mat = np.zeros((size, size))
    np.add.at(mat, (np.repeat(np.arange(size), offsets.size), src.ravel()), np.tile(weights / weights.sum(), size))
    mat = mat.astype(np.float32)
    mat.setflags(write=False)
    return mat


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the last two (square) axes."""
    b = blur_matrix(images.shape[-1], sigma)
    return b @ images @ b.T


def smooth_fields(rng: np.random.Generator, n: int, size: int, cycles: tuple[float, ...]) -> list[np.ndarray]:
    """For each entry of `cycles`, n unit-std random fields with about that many periods per image.

    All are low-passed copies of one white-noise draw (a sum of them is just a richer spectrum).
    """
    noise = rng.standard_normal((n, size, size), dtype=np.float32)
    out = []
    for c in cycles:
        # A Gaussian low-pass keeping ~c periods per image has spatial std size / (c * pi * sqrt 2).
        field = blur(noise, size / (c * np.pi * np.sqrt(2)))
        field -= field.mean(axis=(1, 2), keepdims=True)
        out.append(field / (field.std(axis=(1, 2), keepdims=True) + 1e-6))
    return out
