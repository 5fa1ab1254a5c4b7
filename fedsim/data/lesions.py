"""Procedural anatomy and lesions for synthmed, rendered for a whole batch at once.

Coordinates are normalised to [-1, 1] across the image, so shapes scale with the image size.
Every random parameter is drawn for all n images (even those that do not use it), which keeps
the random streams aligned and each image a pure function of (seed, node, index in batch).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedsim.data.fields import grid, smooth_fields

# Lesion families; each is drawn at one of SIZES and one of LOCATIONS inside the organ.
FAMILIES = ("round nodule", "spiculated mass", "ring lesion", "calcification cluster",
            "linear streak", "cyst", "ground-glass opacity", "reticular pattern")
SIZES = ("large", "small")
LOCATIONS = ("central", "upper", "lower", "left", "right")

# Lesion radius range (normalised units) per size; direction of each location's sector of the organ
# rim ("central" is a disc around the organ centre instead). Image rows grow downwards: "upper" is -y.
_RADIUS = np.array([(0.20, 0.27), (0.11, 0.15)])
_SECTOR = np.array([0.0, -np.pi / 2, np.pi / 2, np.pi, 0.0])
_MAX_DOTS = 6


def _col(v: np.ndarray) -> np.ndarray:
    return v.astype(np.float32)[:, None, None]


def _norm(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.sqrt(u * u + v * v)  # several times faster than np.hypot on float32


@dataclass
class Anatomy:
    image: np.ndarray  # (n, S, S) clean intensities, roughly in [0, 0.7]
    mask: np.ndarray   # (n, S, S) soft organ mask in [0, 1]
    cx: np.ndarray     # organ centre and semi-axes, each (n,)
    cy: np.ndarray
    a: np.ndarray
    b: np.ndarray


def anatomy(rng: np.random.Generator, n: int, size: int) -> Anatomy:
    """A body with one elliptical organ: smooth parenchyma texture, a brighter capsule, a vessel."""
    x, y = grid(size)
    cx, cy = rng.uniform(-0.08, 0.08, n), rng.uniform(-0.08, 0.08, n)
    a, b = rng.uniform(0.66, 0.80, n), rng.uniform(0.70, 0.86, n)
    rot = rng.uniform(-0.3, 0.3, n)
    dx, dy = x - _col(cx), y - _col(cy)
    cos, sin = _col(np.cos(rot)), _col(np.sin(rot))
    r = _norm((dx * cos + dy * sin) / _col(a), (dy * cos - dx * sin) / _col(b))
    mask = 1.0 / (1.0 + np.exp((r - 1.0) * 14.0))
    body = 1.0 / (1.0 + np.exp((_norm(x, y) - 1.25) * 10.0))  # faint body outline around the organ
    coarse, fine = smooth_fields(rng, n, size, (3.0, 8.0))
    texture = 0.05 * coarse + 0.03 * fine
    capsule = 0.10 * np.exp(-(((r - 1.0) / 0.07) ** 2))
    # A gently curving vessel across the organ, present in every class so it is no label cue.
    ang, off = rng.uniform(0, np.pi, n), rng.uniform(-0.4, 0.4, n)
    amp, freq, phase = rng.uniform(0.05, 0.2, n), rng.uniform(1.5, 3.5, n), rng.uniform(0, 2 * np.pi, n)
    along = dx * _col(np.cos(ang)) + dy * _col(np.sin(ang))
    across = dy * _col(np.cos(ang)) - dx * _col(np.sin(ang))
    bend = across - _col(off) - _col(amp) * np.sin(_col(freq) * along + _col(phase))
    vessel = _col(rng.uniform(0.04, 0.09, n)) * np.exp(-((bend / 0.045) ** 2))
    image = 0.07 * body + mask * (0.42 + texture + vessel) + capsule
    return Anatomy(image.astype(np.float32), mask.astype(np.float32), cx, cy, a, b)


def _soft_disc(d: np.ndarray, radius: np.ndarray, edge: float = 0.25) -> np.ndarray:
    return 1.0 / (1.0 + np.exp((d - radius) / (edge * radius + 0.02)))


@dataclass
class _Lesion:
    """Geometry and shape parameters of the lesions of one family, ready to broadcast over (m, S, S)."""

    dx: np.ndarray      # (m, S, S) offsets of each pixel from the lesion centre
    dy: np.ndarray
    d: np.ndarray       # (m, S, S) distance to the centre
    r: np.ndarray       # (m, 1, 1) radius
    angle: np.ndarray   # (m, 1, 1) orientation
    phase: np.ndarray   # (m, 1, 1)
    spikes: np.ndarray  # (m, 1, 1) spicule count
    dots: np.ndarray    # (m, _MAX_DOTS, 2) speck offsets in units of the radius
    n_dots: np.ndarray  # (m,) specks actually drawn
    grain: np.ndarray   # (m, S, S) fine texture


def lesions(rng: np.random.Generator, family: np.ndarray, size_idx: np.ndarray, loc_idx: np.ndarray,
            anat: Anatomy) -> np.ndarray:
    """Additive lesion layer (n, S, S); family -1 (healthy) gets zeros. Contrast varies per image."""
    n, size = family.shape[0], anat.image.shape[-1]
    x, y = grid(size)
    # Centre: a point of the location's region in organ-relative polar coordinates.
    loc = np.clip(loc_idx, 0, None)
    central = loc == 0
    rho = np.where(central, rng.uniform(0.0, 0.22, n), rng.uniform(0.42, 0.62, n))
    phi = np.where(central, rng.uniform(0, 2 * np.pi, n), _SECTOR[loc] + rng.uniform(-0.55, 0.55, n))
    lx, ly = anat.cx + anat.a * rho * np.cos(phi), anat.cy + anat.b * rho * np.sin(phi)
    bounds = _RADIUS[np.clip(size_idx, 0, None)]
    radius = rng.uniform(bounds[:, 0], bounds[:, 1])
    contrast = rng.uniform(0.16, 0.34, n)
    angle, phase = rng.uniform(0, np.pi, n), rng.uniform(0, 2 * np.pi, n)
    spikes = rng.integers(5, 9, n)
    dots = rng.uniform(-1, 1, (n, _MAX_DOTS, 2)).astype(np.float32)
    n_dots = rng.integers(3, _MAX_DOTS + 1, n)
    # Only ground-glass lesions use grain; drawn last, so skipping it elsewhere shifts no other draw.
    grain = np.zeros((n, size, size), dtype=np.float32)
    glass = np.flatnonzero(family == FAMILIES.index("ground-glass opacity"))
    if glass.size:
        grain[glass] = smooth_fields(rng, glass.size, size, (10.0,))[0]

    out = np.zeros((n, size, size), dtype=np.float32)
    for f, render in enumerate(_RENDER):
        sel = np.flatnonzero(family == f)
        if sel.size == 0:
            continue
        dx, dy = x - _col(lx[sel]), y - _col(ly[sel])
        les = _Lesion(dx, dy, _norm(dx, dy), _col(radius[sel]), _col(angle[sel]), _col(phase[sel]),
                      _col(spikes[sel]), dots[sel], n_dots[sel], grain[sel])
        out[sel] = _col(contrast[sel]) * render(les)
    return out * anat.mask


def _round(g: _Lesion) -> np.ndarray:
    return _soft_disc(g.d, g.r)


def _spiculated(g: _Lesion) -> np.ndarray:
    # A dense core with thin straight spicules radiating to twice its radius.
    sector = 2 * np.pi / g.spikes
    delta = np.mod(np.arctan2(g.dy, g.dx) - g.phase, sector) - sector / 2  # angle to the nearest spicule
    rays = np.exp(-((g.d * np.sin(delta) / 0.045) ** 2)) * _soft_disc(g.d, 2.0 * g.r, edge=0.1)
    return np.maximum(_soft_disc(g.d, 0.55 * g.r), 0.9 * rays)


def _ring(g: _Lesion) -> np.ndarray:
    return 1.2 * np.exp(-(((g.d - g.r) / (0.3 * g.r + 0.02)) ** 2))


def _calcifications(g: _Lesion) -> np.ndarray:
    # Up to _MAX_DOTS tiny, very bright specks scattered within the lesion radius.
    off = g.dots * g.r.reshape(-1, 1, 1)
    live = (np.arange(_MAX_DOTS)[None, :] < g.n_dots[:, None]).astype(np.float32)
    dd = (g.dx[:, None] - off[..., 0, None, None]) ** 2 + (g.dy[:, None] - off[..., 1, None, None]) ** 2
    return 2.2 * np.einsum("nm,nmhw->nhw", live, np.exp(-dd / (2 * 0.045 ** 2)))


def _streak(g: _Lesion) -> np.ndarray:
    ux, uy = np.cos(g.angle), np.sin(g.angle)
    t = np.clip(g.dx * ux + g.dy * uy, -1.6 * g.r, 1.6 * g.r)  # closest point on the segment
    return 1.2 * np.exp(-((_norm(g.dx - t * ux, g.dy - t * uy) / 0.07) ** 2))


def _cyst(g: _Lesion) -> np.ndarray:
    return -1.4 * _soft_disc(g.d, g.r, edge=0.12)  # fluid: darker than the parenchyma, sharp wall


def _ground_glass(g: _Lesion) -> np.ndarray:
    # Hazy, flat-topped and mottled: a plateau with fuzzy edges, modulated by fine grain.
    return 0.55 * np.exp(-((g.d / (1.6 * g.r)) ** 4)) * (1.0 + 0.8 * g.grain)


def _reticular(g: _Lesion) -> np.ndarray:
    # Crossing gratings (a net) inside a soft window; the period is fixed in normalised units.
    ux, uy = np.cos(g.angle), np.sin(g.angle)
    k = 2 * np.pi / 0.28
    net = np.cos(k * (g.dx * ux + g.dy * uy) + g.phase) + np.cos(k * (g.dy * ux - g.dx * uy))
    return 0.6 * np.exp(-((g.d / (1.7 * g.r)) ** 2)) * np.maximum(net, 0.0)


# Renderer of each family, in FAMILIES order.
_RENDER = (_round, _spiculated, _ring, _calcifications, _streak, _cyst, _ground_glass, _reticular)
