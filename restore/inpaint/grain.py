"""Grain: the photo's own fine texture carried into the edge of a repair.

A network fill is smooth at the finest scale: film grain, sensor noise, fur and foliage
detail are missing, and a smooth stroke across a grainy photo shows as a smear even when its
colours are right. Film restorers re-grain their paintwork for the same reason. Here the
high-frequency part of the picture (what a 1-pixel Gaussian blur removes) just outside the
hole is mirrored about the hole's border into it, at full strength up to ``depth`` pixels
deep and fading out by twice that. Thin damage is covered whole; deep inside a large hole
the fill stays as the network made it (mirrored detail from far away drew ghost outlines of
the surrounding objects there). Where the fill already has fine texture of its own, grain
only tops it up to the level of the photo's around it. Only hole pixels change.

Measured on the val photos (docs/MODEL.md, "Grain"): ST-LPIPS and KID fall in every mask
class, PSNR and SSIM a little; the default strength keeps SSIM above Telea's in thick holes.
"""

from __future__ import annotations

import cv2
import numpy as np

from restore.inpaint.windows import Box, split_tiles

GRAIN_STRENGTH = 0.7  # default for repairs; docs/MODEL.md, Grain, has the measurements
GRAIN_SIGMA = 1.0  # the Gaussian whose residual counts as grain, in pixels
GRAIN_DEPTH = 6.0  # full strength this deep into the hole; none beyond twice as deep
GRAIN_TILE = 256  # regions larger than twice this are grained tile by tile
ENERGY_SIGMA = 3.0  # neighbourhood over which the fill's and the photo's grain energy are compared


def _local_energy(energy: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Mean of ``energy`` over the ``where`` pixels of a Gaussian neighbourhood."""
    weight = where.astype(np.float32)
    total = cv2.GaussianBlur(energy * weight, (0, 0), ENERGY_SIGMA)
    return total / np.maximum(cv2.GaussianBlur(weight, (0, 0), ENERGY_SIGMA), 1e-6)


def add_grain(colour: np.ndarray, hole: np.ndarray, strength: float = 1.0,
              depth: float = GRAIN_DEPTH, sigma: float = GRAIN_SIGMA) -> np.ndarray:
    """``colour`` (H x W x 3 float, the fill already in the hole) with the grain of the known
    pixels mirrored into the hole. Returns a new array; pixels outside ``hole`` are unchanged.

    A large region is worked on in tiles with enough margin for every pixel a hole pixel's
    grain depends on, so that the context around long thin scratches on a big scan (most of
    their windows) costs nothing; the result is the same as one pass over the whole region.
    """
    out = colour.copy()
    if strength <= 0 or not hole.any() or hole.all():
        return out
    for window, core in grain_tiles(hole, depth, sigma):
        grained = grain_core(colour[window.slices], hole[window.slices], core, strength, depth, sigma)
        out[core.shift(window.y0, window.x0).slices] = grained[core.slices]
    return out


def grain_tiles(hole: np.ndarray, depth: float = GRAIN_DEPTH, sigma: float = GRAIN_SIGMA
                ) -> list[tuple[Box, Box]]:
    """(window, core) pairs whose cores hold every hole pixel; ``core`` is in the window's
    coordinates, and the window has all the margin a core pixel's grain depends on. One pair,
    the whole, for a region up to twice ``GRAIN_TILE``. Lets the engine build the float colour
    of one window at a time instead of a whole region's."""
    h, w = hole.shape
    if max(h, w) <= 2 * GRAIN_TILE:
        return [(Box(0, 0, h, w), Box(0, 0, h, w))]
    # Mirror sources lie at most 2 * (2 * depth) from the hole pixel; the detail and energy
    # blurs reach about 4 sigma further.
    margin = int(np.ceil(4 * depth + 4 * ENERGY_SIGMA + 4 * sigma))
    pairs = []
    for core in split_tiles(Box(0, 0, h, w), hole, GRAIN_TILE, overlap=0):
        ya, xa = max(0, core.y0 - margin), max(0, core.x0 - margin)
        yb, xb = min(h, core.y1 + margin), min(w, core.x1 + margin)
        pairs.append((Box(ya, xa, yb, xb), Box(core.y0 - ya, core.x0 - xa, core.y1 - ya, core.x1 - xa)))
    return pairs


def grain_core(colour: np.ndarray, hole: np.ndarray, core: Box, strength: float,
               depth: float = GRAIN_DEPTH, sigma: float = GRAIN_SIGMA) -> np.ndarray:
    """A copy of the window ``colour`` with grain added to the hole pixels inside ``core``."""
    out = colour.copy()
    todo = np.zeros(hole.shape, bool)
    todo[core.slices] = True
    _grain_window(colour, hole, todo, out, strength, depth, sigma)
    return out


def _grain_window(colour: np.ndarray, hole: np.ndarray, todo: np.ndarray, out: np.ndarray,
                  strength: float, depth: float, sigma: float) -> None:
    """Add grain to the ``hole & todo`` pixels of ``out`` (a view), from ``colour``'s known pixels."""
    if hole.all():
        return  # nothing known here: every todo pixel is too deep for grain anyway
    detail = colour - cv2.GaussianBlur(colour, (0, 0), sigma)
    # For every hole pixel, the nearest known pixel (labels number the known pixels in raster
    # order), and the mirror image of the hole pixel about it.
    dist, labels = cv2.distanceTransformWithLabels(hole.astype(np.uint8), cv2.DIST_L2, 5,
                                                   labelType=cv2.DIST_LABEL_PIXEL)
    known_y, known_x = np.nonzero(~hole)
    ys, xs = np.nonzero(hole & todo & (dist < 2 * depth))
    nearest = labels[ys, xs] - 1
    ny, nx = known_y[nearest], known_x[nearest]
    my, mx = 2 * ny - ys, 2 * nx - xs
    h, w = hole.shape
    inside = (my >= 0) & (my < h) & (mx >= 0) & (mx < w)
    my, mx = np.clip(my, 0, h - 1), np.clip(mx, 0, w - 1)
    usable = inside & ~hole[my, mx]  # the mirror image may land in another hole or off the picture
    sy, sx = np.where(usable, my, ny), np.where(usable, mx, nx)
    weight = strength * np.clip(2.0 - dist[ys, xs] / depth, 0.0, 1.0)
    # Top the fill's own fine texture up to the photo's level rather than stack more on it.
    energy = (detail**2).sum(axis=-1)
    fill_energy = _local_energy(energy, hole)[ys, xs]
    known_energy = _local_energy(energy, ~hole)[sy, sx]
    weight *= np.sqrt(np.clip(1.0 - fill_energy / np.maximum(known_energy, 1e-8), 0.0, 1.0))
    # From colour, not out: where two tiles' cores overlap, the second writes the same values.
    out[ys, xs] = np.clip(colour[ys, xs] + weight[:, None] * detail[sy, sx], 0.0, 1.0)
