"""Where to run the model: windows around the damage, tiles for large regions.

Compute goes only where there is damage. A spot (a small hole on its own, such as a dust
speck) gets a small window of its own, sized from its extent, that is never merged: each
writes only its own spot's pixels, so a scan with a thousand specks costs a thousand small
windows, not the whole frame (``plan_spots``). Every other connected hole gets a square window
with at least as much context around it as the hole is large; windows that overlap are merged
into regions; a region larger than one tile is covered by overlapping tiles whose seams are
feathered, and only tiles that contain holes are run. Window sides are rounded to
multiples of 64 (spots: one of ``SPOT_SIDES``) so windows from many images share a few shapes
and batch together.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIDE_STEP = 64
SPOT_EXTENT = 32  # holes whose bounding box fits in this many px are spots
SPOT_SIDES = (32, 48, 64, 96)  # spot window sides: context proportional to the spot
SPOT_CONTEXT = 12  # px of context on every side of a spot, at least (and at least its extent)
SPOT_MAX_HOLE = 0.3  # a spot whose window is more hole than this joins the regions instead
CLASSICAL_DEPTH = 3.0  # px: holes at most this deep (local depth) get a classical fill, no window
# Video: the generator fills only what no frame shows, mostly the leftovers of thin damage, and
# this deeper limit costs 0.1 dB there for a sixth of the time with no masks (docs/experiments.md,
# "video: one detector view, deeper classical fill").
VIDEO_CLASSICAL_DEPTH = 8.0


@dataclass(frozen=True)
class Box:
    """Half-open pixel rectangle [y0, y1) x [x0, x1)."""

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def overlaps(self, other: Box) -> bool:
        return self.y0 < other.y1 and other.y0 < self.y1 and self.x0 < other.x1 and other.x0 < self.x1

    def shift(self, dy: int, dx: int) -> Box:
        return Box(self.y0 + dy, self.x0 + dx, self.y1 + dy, self.x1 + dx)

    def union(self, other: Box) -> Box:
        return Box(min(self.y0, other.y0), min(self.x0, other.x0),
                   max(self.y1, other.y1), max(self.x1, other.x1))


def _span(centre0: int, centre1: int, side: int, limit: int) -> tuple[int, int]:
    """A ``side``-long interval covering [centre0, centre1), shifted to stay inside [0, limit)."""
    if side >= limit:
        return 0, limit
    start = (centre0 + centre1 - side) // 2
    start = min(max(0, start), limit - side)
    return start, start + side


def _round_side(n: int, tile: int) -> int:
    return min(tile, max(SIDE_STEP * 2, -(-n // SIDE_STEP) * SIDE_STEP))


def _window_around(box: Box, shape: tuple[int, int], tile: int, min_context: int) -> Box:
    """A window with ``box`` in the middle and context at least the box's own size."""
    extent = max(box.height, box.width)
    side_h = _round_side(box.height + 2 * max(min_context, extent // 2), tile)
    side_w = _round_side(box.width + 2 * max(min_context, extent // 2), tile)
    side = max(side_h, side_w)
    y0, y1 = _span(box.y0, box.y1, max(side, box.height), shape[0])
    x0, x1 = _span(box.x0, box.x1, max(side, box.width), shape[1])
    return Box(y0, x0, y1, x1)


def components(mask: np.ndarray, connectivity: int = 8) -> tuple[int, np.ndarray, np.ndarray]:
    """OpenCV's connected components of a mask (bool or uint8): (count, labels, stats).

    Labels are 16-bit whenever fewer than 65,535 pixels are set (so there cannot be more
    components): on a 720p frame OpenCV then takes about a third of the time, which matters
    where video looks at every frame's masks several times.
    """
    m = np.ascontiguousarray(mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8, copy=False))
    ltype = cv2.CV_16U if cv2.countNonZero(m) < 65535 else cv2.CV_32S
    count, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=connectivity, ltype=ltype)
    return count, labels, stats


def plan_regions(mask: np.ndarray, tile: int = 512, min_context: int = 48) -> list[Box]:
    """Non-overlapping regions that together hold every hole pixel, each with context."""
    count, _, stats = components(mask)
    boxes = []
    for x, y, w, h, _area in stats[1:count]:
        hole = Box(int(y), int(x), int(y + h), int(x + w))
        boxes.append(_window_around(hole, mask.shape, tile, min_context))
    merged = True
    while merged:
        merged = False
        boxes.sort(key=lambda b: (b.y0, b.x0))
        out: list[Box] = []
        for box in boxes:
            for i, other in enumerate(out):
                if box.overlaps(other):
                    joined = box.union(other)
                    if joined.height <= tile and joined.width <= tile:
                        joined = _window_around(joined, mask.shape, tile, 0)
                    out[i] = joined
                    merged = True
                    break
            else:
                out.append(box)
        boxes = out
    return boxes


def _starts(start: int, stop: int, tile: int, overlap: int) -> list[int]:
    if stop - start <= tile:
        return [start]
    step = tile - overlap
    positions = list(range(start, stop - tile, step)) + [stop - tile]
    return sorted(set(positions))


def split_tiles(region: Box, mask: np.ndarray, tile: int = 512, overlap: int = 64) -> list[Box]:
    """Tiles (at most ``tile`` square, overlapping by ``overlap``) covering the region's holes."""
    tiles = []
    for y in _starts(region.y0, region.y1, tile, overlap):
        for x in _starts(region.x0, region.x1, tile, overlap):
            box = Box(y, x, min(y + tile, region.y1), min(x + tile, region.x1))
            if mask[box.slices].any():
                tiles.append(box)
    return tiles


def feather(tile: Box, region: Box, overlap: int) -> np.ndarray:
    """Blend weights for a tile: a linear ramp over ``overlap`` pixels on sides inside the region."""
    ramp_len = max(1, overlap)

    def axis(n: int, at_start: bool, at_end: bool) -> np.ndarray:
        w = np.ones(n, np.float32)
        ramp = (np.arange(1, ramp_len + 1, dtype=np.float32) / (ramp_len + 1))[:n]
        if not at_start:
            w[: len(ramp)] = np.minimum(w[: len(ramp)], ramp)
        if not at_end:
            w[n - len(ramp) :] = np.minimum(w[n - len(ramp) :], ramp[::-1])
        return w

    wy = axis(tile.height, tile.y0 == region.y0, tile.y1 == region.y1)
    wx = axis(tile.width, tile.x0 == region.x0, tile.x1 == region.x1)
    return wy[:, None] * wx[None, :]


def deep_hole(mask: np.ndarray, reach: int) -> np.ndarray:
    """Hole pixels farther than ``reach`` from any known pixel: too far for one tile's context."""
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    return dist > reach


@dataclass(frozen=True)
class Spot:
    """A small hole with a window of its own; ``own`` marks its pixels within ``window``."""

    window: Box
    own: np.ndarray


def _spot_window(box: Box, shape: tuple[int, int]) -> Box:
    extent = max(box.height, box.width)
    need = extent + 2 * max(SPOT_CONTEXT, extent)
    side = next((s for s in SPOT_SIDES if s >= need), SPOT_SIDES[-1])
    y0, y1 = _span(box.y0, box.y1, side, shape[0])
    x0, x1 = _span(box.x0, box.x1, side, shape[1])
    return Box(y0, x0, y1, x1)


def plan_spots(mask: np.ndarray) -> tuple[list[Spot], np.ndarray]:
    """Spots (holes at most ``SPOT_EXTENT`` px across, with a window mostly known) and the
    rest of ``mask``, which goes to ``plan_regions``.

    Why: a speck of dust needs a few dozen pixels of context, not a tile. Merged with its
    neighbours' windows (``plan_regions``), 1,500 specks on a 24 MP scan made regions that
    covered the frame: the model ran on the whole picture, 25x slower than on long scratches.
    """
    count, labels, stats = components(mask)
    spots: list[Spot] = []
    rest = mask.astype(bool, copy=True)
    for label in range(1, count):
        x, y, w, h, _area = (int(v) for v in stats[label])
        if max(w, h) > SPOT_EXTENT:
            continue
        box = Box(y, x, y + h, x + w)
        window = _spot_window(box, mask.shape)
        if min(window.height, window.width) < 8 or mask[window.slices].mean() > SPOT_MAX_HOLE:
            continue
        own = np.zeros((window.height, window.width), bool)
        inner = slice(y - window.y0, y + h - window.y0), slice(x - window.x0, x + w - window.x0)
        own[inner] = labels[box.slices] == label
        rest[box.slices] &= ~own[inner]
        spots.append(Spot(window, own))
    return spots, rest
