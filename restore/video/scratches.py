"""Line scratches on film: thin upright lines that stay put on the screen while the scene moves.

A scratch in the emulsion runs along the film, so in every frame it is a thin line from top to
bottom (or most of the way), at nearly the same column from one frame to the next: it wanders
a few pixels, whatever the camera does. The per-frame detector finds level and upright lines
about half as often as slanted ones (docs/experiments.md, 'axis-aligned lines'), and the speck
cue misses a scratch that stays put (the neighbours show it too), so this cue looks for exactly
that shape, as film restoration has since Kokaram's line-scratch model: a thin ridge or valley
across the row, held in nearly every row of a long vertical run.

Thin upright things in the scene (a mast, a pole, a window frame) have that shape too. They
move with the scene; a scratch does not. So a line is kept only where the scene around it moved
and the neighbouring frames show no such line where the scene went. Where the scene did not
move (a still camera), nothing is decided and nothing is flagged: a missed scratch there is
better than a pole painted out of every frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from restore.inpaint.windows import components
from restore.video.propagate import FrameSlot, Propagator, bilinear

MAX_WIDTH = 4  # px: a line up to this wide is brighter (darker) than the row 3-5 px beyond it
MIN_CONTRAST = 14  # grey levels the line stands above (below) the brightest (darkest) of those
MIN_RUN = 0.3  # share of the frame's height over which a line holds in nearly every row
DENSITY = 0.85  # share of the rows of such a run in which the line stands out
SLANT = 1  # px a line may be off its column and still count (it wanders, and is not quite upright)
SIDE_BAND = (8, 24)  # px left and right of a line where the scene's own motion is read
MIN_MOTION = 1.5  # px the scene must move across the line, in some neighbour, to judge it
SHOWN = 0.5  # a neighbour "shows the line" where its ridge is this share of ours
MEMORY = 12  # frames a scratch found by the motion test is looked for again at its column
MEMORY_RUN = 0.08  # ... where a shorter run of line (share of the height) is enough
MEMORY_REACH = SLANT + 2  # px either side of the remembered columns


def line_ridges(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far each pixel of a grey frame (uint8) stands above the brightest pixel 3-5 px to its
    left and the brightest 3-5 px to its right (bright ridges), and below the darkest (dark
    valleys); uint8, 0 where it does not. Stricter than a morphological top-hat: in busy
    texture about 5% of pixels pass 14 grey levels, against half with a 15 px top-hat."""
    g = grey.astype(np.int16)
    w = g.shape[1]
    pad = np.pad(g, ((0, 0), (6, 6)), mode="edge")
    sides = [pad[:, 6 + k : 6 + k + w] for k in (-5, -4, -3)], [pad[:, 6 + k : 6 + k + w] for k in (3, 4, 5)]
    out = []
    for reduce, sign in ((np.maximum, 1), (np.minimum, -1)):
        left, right = (reduce(reduce(a, b), c) for a, b, c in sides)
        ridge = np.minimum(sign * (g - left), sign * (g - right))
        out.append(np.clip(ridge, 0, 255).astype(np.uint8))
    return out[0], out[1]


def line_bands(ridge: np.ndarray, min_run: float = MIN_RUN) -> np.ndarray:
    """Where a thin near-upright line holds over a run of ``min_run`` of the height: bool, a few
    px wide around it."""
    h = ridge.shape[0]
    binary = (ridge >= MIN_CONTRAST).astype(np.float32)
    if not binary.any():
        return binary > 0
    wide = cv2.dilate(binary, np.ones((1, 2 * SLANT + 1), np.uint8))
    run = max(16, int(min_run * h)) | 1
    density = cv2.boxFilter(wide, -1, (1, run), borderType=cv2.BORDER_CONSTANT)
    held = (density >= DENSITY).astype(np.uint8)
    # Every row of a run that holds, and the columns the line may wander over.
    return cv2.dilate(held, np.ones((run, 2 * SLANT + 1), np.uint8)) > 0


def remembered_scratches(ridges: tuple[np.ndarray, np.ndarray], columns: np.ndarray) -> np.ndarray:
    """Lines at the columns where a scratch was found in the last frames (bool per column), held
    over a shorter run, with no motion test: where the scene under it is flat or stands still for a
    moment, or the line fades over part of the frame, the motion test cannot see the scratch it
    found a few frames before. Only columns the motion test found are looked at, so a pole on a
    still camera, never found, is never remembered."""
    h, w = ridges[0].shape
    reach = cv2.dilate(columns.astype(np.uint8)[None, :], np.ones((1, 2 * MEMORY_REACH + 1), np.uint8))[0] > 0
    found = np.zeros((h, w), bool)
    if not reach.any():
        return found
    where = np.flatnonzero(reach)  # only the columns around remembered scratches are looked at
    x0, x1 = int(where[0]), int(where[-1]) + 1
    reach = reach[None, x0:x1]
    for full in ridges:
        ridge = np.where(reach, full[:, x0:x1], 0)
        found[:, x0:x1] |= line_bands(ridge, MEMORY_RUN) & (ridge >= MIN_CONTRAST // 2)
    return found


def _scene_motion(prop: Propagator, slot: FrameSlot, other: FrameSlot, ys: np.ndarray,
                  xs: np.ndarray) -> tuple[float, float]:
    """The scene's median motion (full-resolution px) from ``slot`` to ``other`` beside a line:
    read a little left and right of it, not on it, where the flow may cling to the line."""
    flow = prop.flow(slot, other)
    offsets = np.concatenate([np.arange(*SIDE_BAND), -np.arange(*SIDE_BAND)])
    step = max(1, len(ys) // 64)
    sy = np.repeat(ys[::step], len(offsets)).astype(np.float32)
    sx = (np.repeat(xs[::step], len(offsets)) + np.tile(offsets, len(ys[::step]))).astype(np.float32)
    keep = (sx >= 0) & (sx <= prop.width - 1)
    if not keep.any():
        return 0.0, 0.0
    lx, ly = (sx[keep] + 0.5) * prop.sx - 0.5, (sy[keep] + 0.5) * prop.sy - 0.5
    motion = bilinear(flow, lx, ly)
    return float(np.median(motion[:, 0]) / prop.sx), float(np.median(motion[:, 1]) / prop.sy)


def _shows_line(ridge: np.ndarray, ys: np.ndarray, xs: np.ndarray, dx: float, dy: float,
                ours: float) -> bool:
    """Whether ``ridge`` (a neighbour's) has our line where the scene moved it (give or take a px)."""
    h, w = ridge.shape
    ty = np.clip(np.round(ys + dy).astype(np.intp), 0, h - 1)
    tx = np.round(xs + dx).astype(np.intp)
    best = np.zeros(len(ys), np.float32)
    for nudge in (-1, 0, 1):
        best = np.maximum(best, ridge[ty, np.clip(tx + nudge, 0, w - 1)])
    return float(best.mean()) >= SHOWN * ours


def film_scratches(prop: Propagator, slot: FrameSlot, neighbours: list[FrameSlot],
                   ridges: dict[int, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Line scratches in ``slot`` (bool, full resolution): upright thin lines that the
    neighbouring frames (same shot) do not show where the scene around them went.

    ``ridges``: ``line_ridges`` of each frame's full-resolution grey, by frame index.
    """
    found = np.zeros(slot.hole.shape, bool)
    neighbours = [n for n in neighbours if prop.same_shot(slot, n)]
    if not neighbours:
        return found
    for polarity in (0, 1):
        ridge = ridges[slot.index][polarity]
        bands = line_bands(ridge)
        if not bands.any():
            continue
        count, labels, stats = components(bands)
        for label in range(1, count):
            x0, y0, w, h = (int(v) for v in stats[label, :4])
            box = np.s_[y0 : y0 + h, x0 : x0 + w]
            ys, xs = np.nonzero((labels[box] == label) & (ridge[box] >= MIN_CONTRAST // 2))
            if not len(ys):
                continue
            ys, xs = ys + y0, xs + x0
            ours = float(ridge[ys, xs].mean())
            judged = shown = 0
            for other in neighbours:
                dx, dy = _scene_motion(prop, slot, other, ys, xs)
                if abs(dx) < MIN_MOTION and abs(dy) < MIN_MOTION:
                    continue  # the scene did not move here: this neighbour cannot tell
                judged += 1
                shown += _shows_line(ridges[other.index][polarity], ys, xs, dx, dy, ours)
            if judged and shown * 2 < judged:
                found[ys, xs] = True
    return found
