"""Burnt-in overlays (timestamps, clocks, channel logos) found from a clip's first frames, once.

An overlay stays put while the picture changes under it, so its edges keep their place and
direction from frame to frame while the scene's come and go. Per low-resolution pixel the
finder sums the gradient vector and its length over the frames it is shown:

- **coherence** ``|sum g| / sum |g|`` is near 1 for an edge that never moves and near
  ``1/sqrt(n)`` for the moving scene; a semi-transparent logo, whose edge adds a constant
  gradient to the scene's, keeps most of it. The edge must also be there in nearly every
  sub-window (a window frame that stood still, then went away, is not) and be **steady**: the
  pixels on it change by less than its contrast (a scene edge drifting a pixel changes them by
  1.5-2.5x its contrast, and stays coherent), or, behind a half-transparent logo where the
  picture shows through, by up to 1.5x its contrast but clearly less than the picture around
  them changes (a drifting scene edge changes as much as its surroundings);
- such edges, closed into shapes, are kept if they are letters or a logo (edges across and
  along, not one straight line) and the picture **changes around them**: most of the ring
  around the shape that can show change (has edges, or changes) does; where nothing around can
  (text on a plain wall), the camera's motion decides (most of the textured picture changed).
  A still camera's wall, a letterbox bar, the still background beside someone walking past are
  never an overlay; there the damage detector or ``--mask`` has to find them.
- each kept shape then **grows along weaker edges inside its own box**: where the picture
  behind a half-transparent logo is as bright as the logo, that part of its edge vanishes for a
  while and its pixels change with the picture, so it fails the tests above on its own;
- a **clock**'s digits change every second, so over the whole window they are not coherent;
  but they are over a short sub-window. Next to found text (a box one and a half text heights
  to either side), edges as strong as the text's that were coherent over any sub-window are
  added, so the union over time of every digit shown is masked.

The mask is computed from the first ``frames`` frames (the job reads them once ahead) and
reused for the whole clip: memory and time do not depend on the clip's length.

Those shapes are closed and filled, so they also hold the picture between the letters and
inside a logo's ring, which is not damaged. Given the frames at full resolution too, each
frame's mask keeps, inside each shape, only the overlay's own pixels: those that stayed
**steady** over the first frames (an opaque glyph barely changes; the picture between the
glyphs changes as the scene moves, and a half-transparent logo changes less than what shows
through it), and those as bright or dark as the steady ones are in this frame (a clock's digit
that was not there in every frame). A shape with too few steady pixels to tell by (a
half-transparent logo over a busy picture) stays whole, and so, in effect, does one over a still
picture, where every pixel is steady. On a 720p clip this kept as much of the overlay as the
whole shapes did and flagged 71% fewer of its neighbours' pixels (docs/experiments.md, "video:
the overlay's own strokes").
"""

from __future__ import annotations

import cv2
import numpy as np

from restore.inpaint.windows import components

COHERENT = 0.6  # coherence above which an edge is "in the same place all along"
MIN_EDGE = 10.0  # mean gradient (grey levels per pixel) an overlay's edge has at least
SUB_WINDOW = 6  # frames per sub-window for edges that change now and then (a clock's digits)
SUB_COHERENT = 0.85
PERSIST = 0.8  # share of sub-windows in which an overlay's edge is there
RING = 4  # pixels around a candidate shape where the picture must change
MOVING_SHARE = 0.7  # share of the ring that must change
STEADY = 1.0  # an overlay's edge pixels change less than its contrast (a drifting scene edge: 1.5-2.5x)
# ... or, half-transparent: under LOGO_STEADY x its contrast and LOGO_SHARE x the mean change within
# 4 px. 0.9 flagged a false overlay on a clean clip (realshort.mp4); 0.7 and 0.8 did not.
LOGO_STEADY, LOGO_SHARE = 1.5, 0.7
# Weaker edges that extend a found shape inside its own box: coherent, changing by under
# WEAK_STEADY x their contrast, there in WEAK_PERSIST of the sub-windows.
WEAK_STEADY, WEAK_PERSIST = 2.0, 0.5
# Strokes inside a found shape (full resolution): a pixel is the overlay's if its spread over the
# first frames is under STROKE_SHARE of the shape's upper-quartile spread (and under STROKE_MIN
# grey levels at least), or if it is within STROKE_TONE grey levels of the steady pixels' tone in
# this frame. A shape with fewer than STROKE_KNOWN steady pixels is kept whole.
STROKE_SHARE, STROKE_MIN, STROKE_TONE, STROKE_KNOWN = 0.6, 12.0, 40.0, 0.2
STROKE_GROW = 2  # px: the glyphs' anti-aliased and codec-smeared rims (1 left bright halos: -9 dB)
_RIM = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * STROKE_GROW + 1,) * 2)
# Frames whose spread tells strokes from the picture: from 30 (a 1.5 s clip) the strokes lost
# 0.5 dB against the whole shapes; from 40 and 150 they gained 0.6 and 0.9 dB.
STROKE_FRAMES = 40


class OverlayFinder:
    """Per-pixel edge statistics of grey frames (all one size), and the overlay mask they give."""

    def __init__(self, shape: tuple[int, int], frames: int = 150) -> None:
        self.shape, self.frames = shape, frames
        h, w = shape
        self.count = 0
        self._g = np.zeros((h, w, 2), np.float32)  # sum of gradient vectors
        self._abs = np.zeros((h, w), np.float32)  # sum of gradient lengths
        self._v = np.zeros((h, w), np.float64)  # sum and sum of squares of the grey values
        self._v2 = np.zeros((h, w), np.float64)
        self._sub_g = np.zeros((h, w, 2), np.float32)
        self._sub_abs = np.zeros((h, w), np.float32)
        self._sub_count = 0
        self._sub_best = np.zeros((h, w), np.float32)  # strongest edge coherent over a sub-window
        self._first: np.ndarray | None = None  # each pixel's edge direction in the first sub-window
        self._kept = np.zeros((h, w), np.uint16)  # sub-windows where that edge was still there
        self._windows = 0
        self._mask: np.ndarray | None = None
        self._full: tuple[tuple[int, int, int, int], np.ndarray] | None = None
        # Full-resolution sums of the grey values (``add``'s ``full``), for the strokes.
        self._f: np.ndarray | None = None
        self._f2: np.ndarray | None = None
        self._fn = 0
        self._strokes: tuple[tuple[int, int, int, int], list[_Stroke]] | None = None

    @property
    def done(self) -> bool:
        return self.count >= self.frames

    def finish(self) -> None:
        """Fix the mask now (the warm-up pass saw the whole of a short clip)."""
        self.frames = self.count

    def add(self, grey: np.ndarray, full: np.ndarray | None = None) -> None:
        """Add one grey uint8 frame (ignored once ``frames`` were seen: the mask is then fixed);
        ``full``, the same frame's grey at full resolution, lets ``full_mask`` keep only strokes."""
        if self.done:
            return
        if full is not None:
            if self._f is None or self._f.shape != full.shape:
                self._f, self._f2, self._fn = np.zeros(full.shape), np.zeros(full.shape), 0
            value_full = full.astype(np.float64)
            self._f += value_full
            self._f2 += value_full * value_full
            self._fn += 1
        value = grey.astype(np.float32)
        gx = cv2.Sobel(value, cv2.CV_32F, 1, 0, ksize=3, scale=0.25)
        gy = cv2.Sobel(value, cv2.CV_32F, 0, 1, ksize=3, scale=0.25)
        length = cv2.magnitude(gx, gy)
        for sums, lengths in ((self._g, self._abs), (self._sub_g, self._sub_abs)):
            sums[..., 0] += gx
            sums[..., 1] += gy
            lengths += length
        self._v += value
        self._v2 += np.square(value, dtype=np.float64)
        self.count += 1
        self._sub_count += 1
        if self._sub_count == SUB_WINDOW:
            strength = cv2.magnitude(self._sub_g[..., 0], self._sub_g[..., 1])
            coherent = strength > SUB_COHERENT * self._sub_abs
            np.maximum(self._sub_best, np.where(coherent, strength / SUB_WINDOW, 0), out=self._sub_best)
            if self._first is None:
                self._first = self._sub_g / np.maximum(strength, 1e-3)[..., None]
            along = (self._sub_g * self._first).sum(-1) / SUB_WINDOW
            self._kept += along > MIN_EDGE / 2
            self._windows += 1
            self._sub_g[:] = 0
            self._sub_abs[:] = 0
            self._sub_count = 0
        self._mask = None

    def mask(self) -> np.ndarray:
        """Low-resolution bool mask of what is burnt in (empty until enough frames were seen)."""
        if self._mask is None:
            self._mask = self._find()
        return self._mask

    def full_mask(self, height: int, width: int, grow_by: int = 2,
                  grey: np.ndarray | None = None) -> np.ndarray:
        """The mask at frame size, grown a little (the low-resolution one is coarse); cached once fixed.

        With ``grey`` (this frame at full resolution) and full-resolution frames given to ``add``,
        only the overlay's own strokes inside each shape (see the module docstring)."""
        shapes = self._shapes(height, width, grow_by)
        if (grey is None or self._f is None or self._f.shape != (height, width) or not shapes.any()
                or self._fn < STROKE_FRAMES):
            return shapes
        key = (height, width, grow_by, self.count)
        if self._strokes is None or self._strokes[0] != key:
            self._strokes = (key, self._stroke_parts(shapes))
        out = np.zeros((height, width), bool)
        for part in self._strokes[1]:
            out[part.box] |= part.pixels(grey[part.box])
        return out

    def _stroke_parts(self, shapes: np.ndarray) -> list[_Stroke]:
        """Per shape: its pixels, the steady ones and their tone (from the full-resolution sums)."""
        n = max(self._fn, 1)
        assert self._f is not None and self._f2 is not None
        mean = self._f / n
        spread = np.sqrt(np.maximum(self._f2 / n - mean * mean, 0))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(shapes.astype(np.uint8), connectivity=8)
        parts = []
        for label in range(1, count):
            x, y, bw, bh, _ = (int(v) for v in stats[label])
            box = np.s_[y:y + bh, x:x + bw]
            shape = labels[box] == label
            s = spread[box][shape]
            steady = shape & (spread[box] < max(STROKE_MIN, STROKE_SHARE * float(np.percentile(s, 75))))
            if steady.sum() < STROKE_KNOWN * shape.sum():
                parts.append(_Stroke(box, shape, shape, None))  # nothing steady to tell by: keep it whole
            else:
                # The overlay's tone: of the steady pixels, those farthest from the shape's usual
                # value (a flat, still picture between the letters is steady too).
                values = mean[box][steady]
                far = np.abs(values - np.median(mean[box][shape]))
                parts.append(_Stroke(box, shape, steady, float(np.median(values[far >= np.median(far)]))))
        return parts

    def _shapes(self, height: int, width: int, grow_by: int) -> np.ndarray:
        key = (height, width, grow_by, self.count)
        if self._full is not None and self._full[0] == key:
            return self._full[1]
        mask = self.mask()
        up = np.zeros((height, width), bool)
        if mask.any():
            up = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_LINEAR) > 0
            if grow_by > 0:
                kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_by + 1, 2 * grow_by + 1))
                up = cv2.dilate(up.astype(np.uint8), kernel) > 0
        self._full = (key, up)
        return up

    # -- the decision ------------------------------------------------------------------------

    def _find(self) -> np.ndarray:
        h, w = self.shape
        empty = np.zeros((h, w), bool)
        n = self.count
        if n < 2 * SUB_WINDOW:
            return empty
        strength = cv2.magnitude(self._g[..., 0], self._g[..., 1]) / n
        # Coherent over the whole window, and there in nearly every sub-window: the edge of a window
        # frame that stood still for most of the window and then went away has the first, not the
        # second; a half-transparent logo fades only while something as bright passes under it.
        mean = self._v / n
        spread = np.sqrt(np.maximum(self._v2 / n - mean * mean, 0)).astype(np.float32)
        # And still where it is: a scene edge that drifts a pixel stays coherent, but the pixels on
        # it change by about its contrast, an overlay's by much less.
        # Behind a half-transparent logo the picture shows through: its edge's pixels change, but
        # by clearly less than the picture around them does.
        around = cv2.blur(spread, (9, 9))
        steady = ((spread < STEADY * strength)
                  | ((spread < LOGO_STEADY * strength) & (spread < LOGO_SHARE * around)))
        edges = ((strength > COHERENT * self._abs / n) & (strength > MIN_EDGE)
                 & (self._kept >= PERSIST * self._windows) & steady)
        if not edges.any():
            return empty
        # What "changes" means: well above noise and codec. The clip's calmest pixels say how much
        # that is with a still camera; with a moving one they change too, hence the cap.
        moving = spread > 2.5 * min(max(float(np.percentile(spread, 5)), 1.6), 4.0)
        # Did the camera move? Then the scene's textured pixels (not the coherent ones) changed.
        textured = (self._abs / n > MIN_EDGE / 2) & ~edges
        camera_moved = bool(textured.sum() > 100 and moving[textured].mean() >= 0.5)
        shapes = cv2.morphologyEx(edges.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
        shapes = _fill_enclosed(shapes, max_area=shapes.size // 50)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(shapes.astype(np.uint8), connectivity=8)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING + 1, 2 * RING + 1))
        across = np.abs(self._g[..., 0]) > np.abs(self._g[..., 1])  # edge seen across (vertical stroke)
        found = np.zeros((h, w), bool)
        boxes = np.zeros((h, w), bool)
        for label in range(1, count):
            x, y, bw, bh, area = stats[label]
            if area < 12 or bw >= 0.9 * w or bh >= 0.9 * h:  # a speck of noise, a frame-wide bar edge
                continue
            y0, y1 = max(0, y - RING - 1), min(h, y + bh + RING + 1)
            x0, x1 = max(0, x - RING - 1), min(w, x + bw + RING + 1)
            part = labels[y0:y1, x0:x1] == label
            strokes = part & edges[y0:y1, x0:x1]
            share = across[y0:y1, x0:x1][strokes].mean() if strokes.any() else 0.0
            if not 0.15 <= share <= 0.85:  # one straight edge (a horizon on a pan), not letters or a logo
                continue
            # Still where its edges are: a scene edge that drifts a pixel stays coherent, but the
            # pixels on it change by about its contrast.
            if not _changes_around(part, shapes[y0:y1, x0:x1], textured[y0:y1, x0:x1], moving[y0:y1, x0:x1],
                                   kernel, camera_moved):
                continue
            found[y0:y1, x0:x1] |= part
            if bw < 2.5 * bh:  # not a line of text: no clock digits beside it
                continue
            reach, pad = int(1.5 * bh) + 2, bh // 4
            boxes[max(0, y - pad):min(h, y + bh + pad + 1), max(0, x - reach):min(w, x + bw + reach)] = True
        if not found.any():
            return empty
        found = self._complete(found, strength, spread)
        # A clock: next to found text, edges as strong as the text's, coherent over a sub-window.
        reference = float(np.median(strength[found & edges])) if (found & edges).any() else MIN_EDGE
        digits = boxes & (self._sub_best > max(MIN_EDGE, 0.6 * reference)) & (moving | found)
        if digits.any():
            digits = cv2.morphologyEx(digits.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
            found |= _fill_enclosed(digits, max_area=digits.size // 50)
        return found

    def _complete(self, found: np.ndarray, strength: np.ndarray, spread: np.ndarray) -> np.ndarray:
        """Grow each found shape along weaker edges inside its own box: where the picture behind a
        half-transparent logo is as bright as the logo, its edge vanishes for a while and the
        pixels on it change with the picture (the arc of a ring missed on a 720p clip)."""
        n = self.count
        weak = ((strength > COHERENT * self._abs / n) & (strength > MIN_EDGE)
                & (spread < WEAK_STEADY * strength) & (self._kept >= WEAK_PERSIST * self._windows))
        count, _, stats = components(found)
        h, w = found.shape
        near = np.zeros_like(found)
        for label in range(1, count):
            x, y, bw, bh, _ = stats[label]
            near[max(0, y - RING):min(h, y + bh + RING), max(0, x - RING):min(w, x + bw + RING)] = True
        grown = cv2.morphologyEx(((weak & near) | found).astype(np.uint8), cv2.MORPH_CLOSE,
                                 np.ones((5, 5), np.uint8)) > 0
        count, labels, _ = components(grown)
        touching = np.zeros(count, bool)
        touching[np.unique(labels[found])] = True
        touching[0] = False
        return found | touching[labels]


class _Stroke:
    """One found shape at full resolution: which of its pixels are the overlay in a given frame."""

    def __init__(self, box: tuple[slice, slice], shape: np.ndarray, steady: np.ndarray, tone: float | None):
        self.box, self.shape, self.steady, self.tone = box, shape, steady, tone

    def pixels(self, grey: np.ndarray) -> np.ndarray:
        if self.tone is None:
            return self.shape
        near = self.steady | (np.abs(grey.astype(np.float32) - self.tone) < STROKE_TONE)
        return (cv2.dilate((near & self.shape).astype(np.uint8), _RIM) > 0) & self.shape


def _changes_around(part: np.ndarray, shapes: np.ndarray, textured: np.ndarray, moving: np.ndarray,
                    kernel: np.ndarray, camera_moved: bool) -> bool:
    """Does the picture change around a shape? Ring pixels that change, or have edges, vote; flat
    still ones (a plain wall under the text) cannot tell, and if none can, the camera's motion
    decides. The still background beside someone walking past has edges that do not change."""
    ring = (cv2.dilate(part.astype(np.uint8), kernel) > 0) & ~shapes
    votes = ring & (textured | moving)
    if votes.sum() < max(8, ring.sum() // 4):
        return camera_moved
    return bool(moving[votes].mean() >= MOVING_SHARE)


def _fill_enclosed(mask: np.ndarray, max_area: int) -> np.ndarray:
    """Fill holes inside found shapes (a letter's or a logo's flat inside has no edge), if small."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    h, w = mask.shape
    out = mask.copy()
    small = np.zeros(count, bool)
    for label in range(1, count):
        x, y, bw, bh, area = stats[label]
        small[label] = x > 0 and y > 0 and x + bw < w and y + bh < h and area <= max_area
    out |= small[labels]
    return out
