"""Per-hospital acquisition shift: each hospital's scanner blurs, shades, remaps and adds noise its own way.

The scanner's random draws do not depend on `shift`; shift only scales how far each setting
moves from the common reference scanner, so shift=0 gives identical scanners everywhere and
larger shifts give the same hospitals' quirks, only stronger.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedsim.data import fields


@dataclass(frozen=True)
class Scanner:
    contrast: float         # gain around the mid-grey pivot
    brightness: float       # intensity offset
    gamma: float            # power-law response
    noise: float            # std of additive Gaussian noise
    blur: float             # Gaussian PSF std, in pixels of a 32-pixel image
    vignette: float         # fall-off of the bias field towards the corners
    tilt: tuple[float, float]  # linear bias field (x, y) slope
    gains: tuple[float, ...]   # per-channel gain (colour cast for RGB)


def make_scanner(rng: np.random.Generator, shift: float, channels: int) -> Scanner:
    z = np.clip(rng.standard_normal(8 + 3), -2.5, 2.5)  # fixed number of draws for any channel count
    s = float(shift)
    return Scanner(
        contrast=float(np.exp(0.22 * s * z[0])),
        brightness=float(0.07 * s * z[1]),
        gamma=float(np.exp(0.22 * s * z[2])),
        noise=float(0.035 * np.exp(0.45 * s * z[3])),
        blur=float(min(0.6 * np.exp(0.45 * s * z[4]), 2.0)),
        vignette=float(0.12 * s * abs(z[5])),
        tilt=(float(0.06 * s * z[6]), float(0.06 * s * z[7])),
        gains=tuple(float(np.exp(0.08 * s * g)) for g in z[8:8 + channels]) if channels > 1 else (1.0,),
    )


def acquire(clean: np.ndarray, scanner: Scanner, rng: np.random.Generator) -> np.ndarray:
    """Scan clean (n, S, S) intensities into (n, C, S, S) float32 images in [0, 1]."""
    size = clean.shape[-1]
    img = fields.blur(clean.astype(np.float32, copy=False), scanner.blur * size / 32)
    x, y = fields.grid(size)
    bias = 1.0 - scanner.vignette * (x ** 2 + y ** 2) / 2 + scanner.tilt[0] * x + scanner.tilt[1] * y
    img = img * bias * rng.uniform(0.94, 1.06, (clean.shape[0], 1, 1)).astype(np.float32)  # per-scan gain
    img = img[:, None] * np.asarray(scanner.gains, dtype=np.float32)[None, :, None, None]
    img = np.clip(scanner.contrast * (img - 0.3) + 0.3 + scanner.brightness, 0.0, 1.0) ** scanner.gamma
    img = img + scanner.noise * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32)
