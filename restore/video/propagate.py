"""Filling a frame's holes from its neighbours, along dense optical flow (OpenCV's DIS).

Damage in old footage moves (dust, scratches) or the scene moves under it (a logo on a pan), so
most of what a frame hides is visible a frame or two away. Copying it from there is both more
faithful than any generator and stable from frame to frame, which per-frame inpainting is not.

Flow is computed on grey frames scaled to at most ``FLOW_SIDE`` pixels, with the holes pre-filled
so the damage itself does not attract the flow, then filled inside the holes by normalized
convolution from the surrounding motion. A copy is trusted where the forward-backward check
passes (the two flows agree, Sundaram et al. 2010), the target lies inside the frame and is not a
hole there. Each copy is corrected by its misfit on a band of known pixels around the hole
(slightly wrong motion or a change of light is off by an amount that varies slowly), and the
copies from all neighbours are averaged with weights that favour the ones that fit that band
best and the nearest frames. Pairs of frames that mostly fail the check are treated as different
shots (a cut) and never copy.

All per-pixel work is on the list of hole pixels, so thin damage costs little at any resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

FLOW_SIDE = 640  # flow resolution (long side); DIS at 640x360 takes ~4 ms on one core
FB_ALPHA, FB_BETA = 0.01, 1.5  # forward-backward check (Sundaram et al.), in flow pixels
SAME_SHOT = 0.5  # a pair of frames with fewer consistent flow vectors than this is a cut
RING = 3  # width of the known band around a hole on which each copy's misfit is measured
SOFT = 2 / 255  # fit weights: misfits below this count as equally good
FIT = 6 / 255  # a copy the flow check rejected is still taken if the band around fits this well
TRACE_REACH = 40  # trace_later: ring pixels this near the pixels followed judge them (spread <= ~34 px)
OUTLIER = 40 / 255  # a copy this far from the median of three or more is damage the cues missed


def to_grey(pixels: np.ndarray) -> np.ndarray:
    """uint8 grey of any frame (1-4 channels, 8 or 16 bit), for flow and cues."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[2] >= 3:
        return cv2.cvtColor(np.ascontiguousarray(pixels[..., :3]), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(pixels[..., 0])


def normalized_fill(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown pixels with a locally weighted mean of known ones, coarser until all are filled.

    Cheap (a few resizes, whatever the hole's size) and smooth: right for flow fields and for the
    grey images flow is computed on, where only the broad shape of the fill matters.
    """
    missing = ~known
    if not missing.any():
        return values
    out = values.astype(np.float32, copy=True)
    if not known.any():
        out[:] = 0
        return out
    weight = known.astype(np.float32)
    weighted = out * (weight[..., None] if out.ndim == 3 else weight)
    h, w = known.shape
    channels = out.shape[2] if out.ndim == 3 else 1
    flat = out.reshape(h * w, channels)
    todo = np.flatnonzero(missing)  # gathers by flat index: holes are a few % of the picture
    factor = 1
    while len(todo):
        if factor >= 4 * max(h, w):  # nothing known anywhere near: the mean of what is known
            flat[todo] = out[known].reshape(-1, channels).mean(axis=0)
            break
        if factor == 1:
            num = cv2.GaussianBlur(weighted, (5, 5), 1.5)
            den = cv2.GaussianBlur(weight, (5, 5), 1.5)
        else:
            small = (max(1, w // factor), max(1, h // factor))
            num = cv2.resize(cv2.resize(weighted, small, interpolation=cv2.INTER_AREA), (w, h),
                             interpolation=cv2.INTER_LINEAR)
            den = cv2.resize(cv2.resize(weight, small, interpolation=cv2.INTER_AREA), (w, h),
                             interpolation=cv2.INTER_LINEAR)
        d = den.reshape(-1).take(todo)
        ok = d > 1e-3
        at = todo[ok]
        flat[at] = num.reshape(h * w, channels).take(at, 0) / d[ok][:, None]
        todo = todo[~ok]
        factor *= 4
    return out


def bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``image`` (H x W or H x W x C) at float coordinates, clamped to the frame; float32.

    Gathers by flat index (``take``), which is several times faster than 2-D fancy indexing on
    the hundreds of thousands of points a 720p frame's holes and rings need per neighbour.
    """
    h, w = image.shape[:2]
    x = np.clip(x, 0, w - 1).astype(np.float32, copy=False)
    y = np.clip(y, 0, h - 1).astype(np.float32, copy=False)
    x0 = np.minimum(x.astype(np.intp), max(w - 2, 0))
    y0 = np.minimum(y.astype(np.intp), max(h - 2, 0))
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    flat = image.reshape(h * w, -1) if image.ndim == 3 else image.reshape(-1)
    if image.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    at = y0 * w + x0
    right, down = (1 if w > 1 else 0), (w if h > 1 else 0)
    a, b = flat.take(at, 0).astype(np.float32), flat.take(at + right, 0).astype(np.float32)
    c, d = flat.take(at + down, 0).astype(np.float32), flat.take(at + down + right, 0).astype(np.float32)
    top = a + (b - a) * fx
    return top + (c + (d - c) * fx - top) * fy


@dataclass
class FrameSlot:
    """One frame while it is in the sliding window."""

    index: int
    pixels: np.ndarray  # H x W x C, the decoded frame
    hole: np.ndarray  # bool H x W, what to repair (grows while cues come in)
    grey: np.ndarray | None = None  # low-resolution grey with the holes pre-filled, for flow
    raw_grey: np.ndarray | None = None  # low-resolution grey as decoded, for the overlay cue
    out: np.ndarray | None = None  # the repaired frame once propagation ran
    pending: np.ndarray | None = None  # pixels of ``out`` not known yet (waiting for the generator)
    final: bool = False  # hole complete: no cue will add to it any more
    overlaid: bool = False  # the burnt-in overlay's strokes are in ``hole`` already
    _hole_low: np.ndarray | None = field(default=None, repr=False)
    _blocked: np.ndarray | None = field(default=None, repr=False)
    _grey_full: np.ndarray | None = field(default=None, repr=False)

    def set_final(self) -> None:
        self.final = True
        self._hole_low = self._blocked = None

    def grey_full(self) -> np.ndarray:
        """Full-resolution grey of the decoded frame (computed once: flow, specks, scratches)."""
        if self._grey_full is None:
            self._grey_full = to_grey(self.pixels)
        return self._grey_full

    def blocked(self) -> np.ndarray:
        """Hole grown by one pixel: a bilinear sample touching it would mix in damage."""
        if self._blocked is None:
            self._blocked = cv2.dilate(self.hole.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        return self._blocked


@dataclass
class Track:
    """Where some pixels of one frame are in another: coordinates and which ones to trust."""

    x: np.ndarray
    y: np.ndarray
    ok: np.ndarray  # inside the frame and the flow passes the forward-backward check
    inside: np.ndarray  # inside the frame


class Propagator:
    """Flow between frames of one clip (cached per pair), and the copying of pixels along it."""

    def __init__(self, height: int, width: int, side: int = FLOW_SIDE) -> None:
        self.height, self.width = height, width
        self.scale = min(1.0, side / max(height, width))
        self.low = (max(8, round(width * self.scale)), max(8, round(height * self.scale)))  # (w, h)
        # The scale actually used in each direction (sizes are rounded).
        self.sx, self.sy = self.low[0] / width, self.low[1] / height
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._raw: dict[tuple[int, int], np.ndarray] = {}
        self._filled: dict[tuple[int, int], np.ndarray] = {}
        self._shot: dict[tuple[int, int], bool] = {}
        self._low_holes: dict[int, np.ndarray] = {}

    # -- per frame -----------------------------------------------------------------------

    def prepare(self, slot: FrameSlot, also: np.ndarray | None = None) -> None:
        """Low-resolution greys of a new frame: as decoded, and with its current holes pre-filled.

        ``also``: full-resolution pixels to pre-fill as well, not grown like the holes (a burnt-in
        overlay's strokes: grown by a pixel at this resolution, 0.6 dB lost on a 640x480 clip)."""
        grey = slot.grey_full()
        small = cv2.resize(grey, self.low, interpolation=cv2.INTER_AREA) if self.scale < 1 else grey
        slot.raw_grey = small
        hole = self.hole_low(slot, cache=False)
        if also is not None:
            hole = hole | (cv2.resize(also.astype(np.uint8), self.low, interpolation=cv2.INTER_AREA) > 0
                           if self.scale < 1 else also)
        slot.grey = self._prefill(small, hole)

    def hole_low(self, slot: FrameSlot, cache: bool = True) -> np.ndarray:
        if cache and slot.final and slot.index in self._low_holes:
            return self._low_holes[slot.index]
        hole = slot.hole
        if self.scale < 1:
            hole = cv2.resize(hole.astype(np.uint8), self.low, interpolation=cv2.INTER_AREA) > 0
        hole = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        if cache and slot.final:
            self._low_holes[slot.index] = hole
        return hole

    @staticmethod
    def _prefill(grey: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if not hole.any():
            return grey
        return np.clip(normalized_fill(grey.astype(np.float32), ~hole), 0, 255).astype(np.uint8)

    # -- flow ------------------------------------------------------------------------------

    def flow(self, a: FrameSlot, b: FrameSlot) -> np.ndarray:
        """Raw flow a -> b at low resolution: b(p + flow(p)) ~ a(p)."""
        key = (a.index, b.index)
        if key not in self._raw:
            self._raw[key] = self.dis.calc(a.grey, b.grey, None)
        return self._raw[key]

    def filled_flow(self, a: FrameSlot, b: FrameSlot) -> np.ndarray:
        """Flow a -> b with the values inside a's holes replaced by the motion around them."""
        key = (a.index, b.index)
        if key not in self._filled:
            self._filled[key] = normalized_fill(self.flow(a, b), ~self.hole_low(a))
        return self._filled[key]

    def consistent(self, forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
        """Forward-backward check of a whole low-resolution flow pair (bool per pixel of the first)."""
        h, w = forward.shape[:2]
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        back = cv2.remap(backward, gx + forward[..., 0], gy + forward[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        return _fb_ok(forward, back)

    def same_shot(self, a: FrameSlot, b: FrameSlot) -> bool:
        """False across a cut: then most flow vectors fail the forward-backward check."""
        key = (min(a.index, b.index), max(a.index, b.index))
        if key not in self._shot:
            forward = self.flow(a, b)[::4, ::4]  # a sparse grid is plenty for a fraction
            h, w = forward.shape[:2]
            gy, gx = np.mgrid[0:h * 4:4, 0:w * 4:4].astype(np.float32)
            back = bilinear(self.flow(b, a), (gx + forward[..., 0]).ravel(), (gy + forward[..., 1]).ravel())
            self._shot[key] = bool(_fb_ok(forward.reshape(-1, 2), back).mean() >= SAME_SHOT)
        return self._shot[key]

    def full_flow(self, a: FrameSlot, b: FrameSlot) -> np.ndarray:
        """Raw flow a -> b at full resolution, in full-resolution pixels (for the speck cue)."""
        flow = self.flow(a, b)
        if self.scale >= 1:
            return flow
        flow = cv2.resize(flow, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] /= self.sx
        flow[..., 1] /= self.sy
        return flow

    def track(self, a: FrameSlot, b: FrameSlot, y: np.ndarray, x: np.ndarray) -> Track:
        """Where full-resolution pixels (y, x) of frame a are in frame b, and whether to trust it."""
        lx = (x + 0.5) * self.sx - 0.5
        ly = (y + 0.5) * self.sy - 0.5
        forward = bilinear(self.filled_flow(a, b), lx, ly)
        back = bilinear(self.filled_flow(b, a), lx + forward[:, 0], ly + forward[:, 1])
        tx = x + forward[:, 0] / self.sx
        ty = y + forward[:, 1] / self.sy
        inside = (tx >= 0) & (ty >= 0) & (tx <= self.width - 1) & (ty <= self.height - 1)
        return Track(tx, ty, _fb_ok(forward, back) & inside, inside)

    def forget(self, before: int) -> None:
        """Drop everything about frames older than ``before``: memory stays flat."""
        for cache in (self._raw, self._filled, self._shot):
            for key in [k for k in cache if min(k) < before]:
                del cache[key]
        for index in [i for i in self._low_holes if i < before]:
            del self._low_holes[index]


def _fb_ok(forward: np.ndarray, back: np.ndarray) -> np.ndarray:
    err = ((forward + back) ** 2).sum(-1)
    return err < FB_ALPHA * ((forward ** 2).sum(-1) + (back ** 2).sum(-1)) + FB_BETA


@dataclass
class Pending:
    """What propagation left: pixels only the generator can fill (``root``), and pixels to copy
    from the previous frame's output once that frame is complete (``chain``)."""

    root: np.ndarray  # bool H x W
    chain_y: np.ndarray
    chain_x: np.ndarray
    from_x: np.ndarray  # where, in the previous frame
    from_y: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        mask = self.root.copy()
        mask[self.chain_y, self.chain_x] = True
        return mask


def _full_scale(dtype: np.dtype) -> float:
    """The pixel value of full white: thresholds are given as fractions of it."""
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def _as_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def _ring(hole: np.ndarray, width: int = RING) -> tuple[np.ndarray, np.ndarray]:
    """Known pixels within ``width`` of the hole: where a copy's misfit can be measured."""
    size = 2 * width + 1
    grown = cv2.dilate(hole.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))) > 0
    return np.nonzero(grown & ~hole)


def _correction(slot: FrameSlot, source: np.ndarray, track: Track, blocked: np.ndarray | None,
                ys: np.ndarray, xs: np.ndarray,
                ring: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """How much to add to copies at (ys, xs), and how well the copy fits (mean absolute misfit).

    The correction is the copy's misfit on the ring around the hole, spread inward.

    A copy along a slightly wrong flow, or from a frame a little brighter, is off by an amount
    that varies slowly; measuring it on the known pixels around the hole and interpolating it
    inside (normalized box filters, a cheap stand-in for Poisson blending) removes most of it.
    """
    channels = slot.pixels.shape[2]
    correction = np.zeros((len(ys), channels), np.float32)
    fit = np.full(len(ys), np.inf, np.float32)
    ry, rx = ring
    ok = track.inside.copy()
    if blocked is not None:
        ok[ok] &= ~_at(blocked, track, ok)
    if not ok.any() or not len(ys):
        return correction, fit
    ry, rx = ry[ok], rx[ok]
    misfit = (slot.pixels[ry, rx].reshape(-1, channels).astype(np.float32)
              - bilinear(source, track.x[ok], track.y[ok]).reshape(-1, channels))
    y0, x0 = max(0, int(ys.min()) - RING), max(0, int(xs.min()) - RING)
    y1, x1 = int(ys.max()) + RING + 1, int(xs.max()) + RING + 1
    inside = (ry >= y0) & (ry < y1) & (rx >= x0) & (rx < x1)
    # Sums over 2x2 cells: the misfit varies slowly, and the box filters run on a quarter of the pixels.
    h, w = (min(y1, slot.hole.shape[0]) - y0 + 1) // 2, (min(x1, slot.hole.shape[1]) - x0 + 1) // 2
    cells = ((ry[inside] - y0) // 2) * w + (rx[inside] - x0) // 2
    weight = np.bincount(cells, minlength=h * w).astype(np.float32).reshape(h, w)
    total = np.stack([np.bincount(cells, misfit[inside, c], minlength=h * w) for c in range(channels)],
                     axis=-1).astype(np.float32).reshape(h, w, channels)
    spread = np.bincount(cells, np.abs(misfit[inside]).max(-1), minlength=h * w)
    spread = spread.astype(np.float32).reshape(h, w)
    cy, cx = (ys - y0) // 2, (xs - x0) // 2
    need = np.ones(len(ys), bool)
    for size in (RING + 2, 4 * RING + 5):  # ~10 px, then ~34 px for the middle of wider holes
        num = cv2.blur(total, (size, size)).reshape(h, w, channels)
        den = cv2.blur(weight, (size, size))
        at = den[cy, cx]
        take = need & (at > 1e-6)
        correction[take] = num[cy[take], cx[take]] / at[take, None]
        fit[take] = cv2.blur(spread, (size, size))[cy[take], cx[take]] / at[take]
        need &= ~take
        if not need.any():
            break
    return correction, fit


def _at(grid: np.ndarray, track: Track, where: np.ndarray) -> np.ndarray:
    """``grid`` at the nearest pixel to where the tracked points ``where`` land."""
    return grid[np.rint(track.y[where]).astype(np.intp), np.rint(track.x[where]).astype(np.intp)]


class _Tracks:
    """Where one frame's hole pixels and the ring around them land in other frames, each found
    once per frame: propagation asks about the same pairs in several passes (a fifth of its
    time went on tracking the same points again)."""

    def __init__(self, slot: FrameSlot, prop: Propagator, ys: np.ndarray, xs: np.ndarray,
                 ring: tuple[np.ndarray, np.ndarray]) -> None:
        self.slot, self.prop, self.ys, self.xs, self.ring_at = slot, prop, ys, xs, ring
        self._hole: dict[int, Track] = {}
        self._ring: dict[int, Track] = {}

    def hole(self, other: FrameSlot, which: np.ndarray) -> Track:
        """The tracks of hole pixels ``which`` (indices into the slot's hole pixels)."""
        if other.index not in self._hole:
            self._hole[other.index] = self.prop.track(self.slot, other, self.ys, self.xs)
        t = self._hole[other.index]
        return Track(t.x[which], t.y[which], t.ok[which], t.inside[which])

    def ring(self, other: FrameSlot) -> Track:
        if other.index not in self._ring:
            self._ring[other.index] = self.prop.track(self.slot, other, *self.ring_at)
        return self._ring[other.index]


def _copies(slot: FrameSlot, other: FrameSlot, prop: Propagator, tracks: _Tracks, which: np.ndarray,
            trusted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Candidate values for hole pixels (ys, xs) copied from ``other``: (which, values, fit).

    ``trusted``: only where the flow passed the forward-backward check; otherwise wherever it
    lands inside the frame (the caller then judges by ``fit`` alone). Never from pixels that
    are damaged in ``other``. None when ``other`` gives nothing.
    """
    if not prop.same_shot(slot, other):
        return None
    ys, xs = tracks.ys[which], tracks.xs[which]
    track = tracks.hole(other, which)
    blocked = other.blocked()
    ok = (track.ok if trusted else track.inside).copy()
    ok[ok] &= ~_at(blocked, track, ok)
    if not ok.any():
        return None
    correction, fit = _correction(slot, other.pixels, tracks.ring(other), blocked, ys[ok], xs[ok],
                                  tracks.ring_at)
    values = bilinear(other.pixels, track.x[ok], track.y[ok]).reshape(-1, slot.pixels.shape[2]) + correction
    return ok, values, fit


def propagate(slot: FrameSlot, neighbours: list[list[FrameSlot]], previous: FrameSlot | None,
              prop: Propagator, later: list[FrameSlot] | None = None) -> tuple[np.ndarray, Pending, int]:
    """Fill ``slot``'s holes from neighbours; returns (pixels, what is left, pixels copied).

    ``neighbours`` is grouped by distance (nearest first), each group the frames before and after.
    ``later``: the frames after the slot, in order, beyond which the near neighbours reach; a
    pixel none of them shows is followed through them (``trace_later``).
    ``previous`` is the frame just before, already repaired (its ``out``), used last: content no
    original frame shows is then carried along the motion instead of being invented again.
    """
    out = slot.pixels.copy()
    ys, xs = np.nonzero(slot.hole)
    left = np.ones(len(ys), bool)
    channels = out.shape[2]
    scale = _full_scale(out.dtype)
    ring = _ring(slot.hole) if len(ys) else (ys, xs)
    tracks = _Tracks(slot, prop, ys, xs, ring)
    todo = np.nonzero(left)[0]
    if len(todo):
        # Every trusted copy from the neighbours, weighted by how well the band around the hole
        # fits it: a copy along good motion fits closely and wins; several good ones are averaged,
        # which also averages out the noise of the codec.
        candidates = []
        soft = SOFT * scale
        for distance, group in enumerate(neighbours, start=1):
            for other in group:
                found = _copies(slot, other, prop, tracks, todo, trusted=True)
                if found is None:
                    continue
                ok, values, fit = found
                candidates.append((ok, values, 1.0 / ((np.minimum(fit, 1e6) + soft) ** 2 * distance)))
        total, weight = _robust_mean(
            candidates, len(todo), channels, OUTLIER * scale,
            lambda at: _spatial(slot, ys[todo[at]], xs[todo[at]]),
            lambda at: _from_previous(slot, previous, prop, tracks, todo[at]))
        got = weight > 0
        idx = todo[got]
        out[ys[idx], xs[idx]] = _as_dtype(total[got] / weight[got, None], out.dtype)
        left[idx] = False
    todo = np.nonzero(left)[0]
    if len(todo) and later:
        got, values = trace_later(slot, later, prop, ys[todo], xs[todo], ring, skip=len(neighbours))
        out[ys[todo[got]], xs[todo[got]]] = _as_dtype(values[got], out.dtype)
        left[todo[got]] = False
    copied = int(len(ys) - left.sum())
    chain = np.zeros(0, np.intp)
    from_x = from_y = np.zeros(0, np.float32)
    todo = np.nonzero(left)[0]
    if len(todo) and previous is not None and previous.out is not None and prop.same_shot(slot, previous):
        track = tracks.hole(previous, todo)
        ok = track.ok
        waiting = np.zeros(len(todo), bool)
        if previous.pending is not None:
            grown = cv2.dilate(previous.pending.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            waiting[ok] = _at(grown, track, ok)
        now = ok & ~waiting
        idx = todo[now]
        values = bilinear(previous.out, track.x[now], track.y[now]).reshape(-1, channels)
        if now.any():
            values += _correction(slot, previous.out, tracks.ring(previous), None, ys[idx], xs[idx], ring)[0]
        out[ys[idx], xs[idx]] = _as_dtype(values, out.dtype)
        deferred = ok & waiting
        chain = todo[deferred]
        from_x, from_y = track.x[deferred], track.y[deferred]
        left[todo[ok]] = False
        copied += int(now.sum())
    todo = np.nonzero(left)[0]
    if len(todo) and neighbours:
        # Last chance before the generator: where the flow check failed (flat areas, where flow is
        # ambiguous, fail it most) a copy from the nearest frames is still taken if the known pixels
        # around the hole fit that frame closely.
        best = np.full(len(todo), FIT * scale, np.float32)
        values = np.zeros((len(todo), channels), np.float32)
        for other in neighbours[0]:
            found = _copies(slot, other, prop, tracks, todo, trusted=False)
            if found is None:
                continue
            ok, candidate, fit = found
            better = fit < best[ok]
            sel = np.nonzero(ok)[0][better]
            best[sel] = fit[better]
            values[sel] = candidate[better]
        got = best < FIT * scale
        out[ys[todo[got]], xs[todo[got]]] = _as_dtype(values[got], out.dtype)
        left[todo[got]] = False
        copied += int(got.sum())
    root = np.zeros(slot.hole.shape, bool)
    root[ys[left], xs[left]] = True
    return out, Pending(root, ys[chain], xs[chain], from_x, from_y), copied


def trace_later(slot: FrameSlot, later: list[FrameSlot], prop: Propagator, ys: np.ndarray, xs: np.ndarray,
                ring: tuple[np.ndarray, np.ndarray], skip: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Follow hole pixels (ys, xs) frame by frame through ``later`` (the frames after the slot, in
    order) along the flow, to the first frame where each is not damaged; (found, values).

    Under a burnt-in logo the scene slides by a pixel or two a frame, so the middle of a 40 px
    shape is seen only ten or twenty frames on, beyond the near neighbours' reach; at the start
    of a shot no earlier repair can carry it in either, and the generator's guess was kept for
    a second (docs/experiments.md, "video: following the picture under a logo"). Step by step
    the motion inside each frame's holes is the flow filled from around them, which drifts on
    shaky footage: the known ``ring`` around the hole is followed too, and a copy is taken only
    where the ring fits the frame it came from as closely as a near copy must (``FIT``), with the
    ring's misfit spread inward as for near copies. The first ``skip`` frames are only passed
    through (the near neighbours had their say there).
    """
    count, channels = len(ys), slot.pixels.shape[2]
    scale = _full_scale(slot.pixels.dtype)
    found = np.zeros(count, bool)
    values = np.zeros((count, channels), np.float32)
    # Only the ring near these pixels can judge them (the misfit is spread at most ~34 px).
    near = np.zeros(slot.hole.shape, np.uint8)
    near[ys, xs] = 1
    near = cv2.dilate(near, np.ones((2 * TRACE_REACH + 1, 2 * TRACE_REACH + 1), np.uint8))
    keep = near[ring[0], ring[1]] > 0
    ring = (ring[0][keep], ring[1][keep])
    points = [np.concatenate([xs, ring[1]]).astype(np.float32),
              np.concatenate([ys, ring[0]]).astype(np.float32)]
    on = np.ones(len(points[0]), bool)  # still inside the frame
    here = slot
    for step, other in enumerate(later, start=1):
        if found.all() or not prop.same_shot(here, other):
            break
        x, y = points
        flow = bilinear(prop.filled_flow(here, other), (x + 0.5) * prop.sx - 0.5, (y + 0.5) * prop.sy - 0.5)
        x, y = x + flow[:, 0] / prop.sx, y + flow[:, 1] / prop.sy
        points = [x, y]
        on &= (x >= 0) & (y >= 0) & (x <= prop.width - 1) & (y <= prop.height - 1)
        here = other
        if step <= skip or ((step - skip) % 2 == 0 and step < len(later)):
            continue  # judged every other frame: a pixel seen once is seen in the next one too
        hx, hy = np.clip(x[:count], 0, prop.width - 1), np.clip(y[:count], 0, prop.height - 1)
        damaged = other.blocked()[np.rint(hy).astype(np.intp), np.rint(hx).astype(np.intp)]
        clear = ~found & on[:count] & ~damaged
        if not clear.any():
            continue
        ring_on = on[count:]
        track = Track(np.where(ring_on, x[count:], 0), np.where(ring_on, y[count:], 0), ring_on, ring_on)
        at = np.nonzero(clear)[0]
        correction, fit = _correction(slot, other.pixels, track, other.blocked(), ys[at], xs[at], ring)
        good = fit < FIT * scale
        take = at[good]
        values[take] = bilinear(other.pixels, hx[take], hy[take]).reshape(-1, channels) + correction[good]
        found[take] = True
    return found, values


def _spatial(slot: FrameSlot, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """A smooth guess of hole pixels (ys, xs) from the frame's own known pixels around them,
    made at half resolution (it is only a referee, and a full-frame fill costs ~35 ms at 720p)."""
    y0, y1 = max(0, int(ys.min()) - 8), int(ys.max()) + 9
    x0, x1 = max(0, int(xs.min()) - 8), int(xs.max()) + 9
    box = slot.pixels[y0:y1, x0:x1]
    h, w = box.shape[:2]
    size = (max(1, w // 2), max(1, h // 2))
    small = cv2.resize(box.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    small = small.reshape(size[1], size[0], -1)
    known = ~slot.hole[y0:y1, x0:x1]
    known = cv2.resize(known.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.99
    filled = normalized_fill(small, known)
    sx, sy = size[0] / w, size[1] / h
    return bilinear(filled, (xs - x0 + 0.5) * sx - 0.5, (ys - y0 + 0.5) * sy - 0.5).reshape(len(ys), -1)


def _from_previous(slot: FrameSlot, previous: FrameSlot | None, prop: Propagator, tracks: _Tracks,
                   which: np.ndarray) -> np.ndarray:
    """Hole pixels ``which`` (indices into ``tracks``' points) as the previous frame's repair
    shows them along the motion; NaN where that is unknown (no repair yet, a cut, off the frame,
    or still waiting for the generator)."""
    values = np.full((len(which), slot.pixels.shape[2]), np.nan, np.float32)
    if previous is None or previous.out is None or not prop.same_shot(slot, previous):
        return values
    track = tracks.hole(previous, which)
    ok = track.inside.copy()  # only a referee: the motion around the hole is good enough
    if previous.pending is not None:
        ok[ok] &= ~_at(previous.pending, track, ok)
    values[ok] = bilinear(previous.out, track.x[ok], track.y[ok]).reshape(-1, values.shape[1])
    return values


def _robust_mean(candidates: list[tuple[np.ndarray, np.ndarray, np.ndarray]], count: int, channels: int,
                 outlier: float, spatial: Callable[[np.ndarray], np.ndarray],
                 previous: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Weighted sum and total weight of each pixel's copies, without the odd one out.

    ``candidates``: (which pixels, their values, their weights) from each neighbour. Damage the
    cues missed in a neighbour (a scratch that wandered into this frame's hole there) fits the
    band around the hole as well as a clean copy, so the fit weights cannot tell; but it is
    unlike the other copies. A copy far from the median is dropped (Kokaram's temporal median,
    used only to reject): the median of the copies where there are three or more; where there
    are one or two and one of them is far from the frame's own smooth fill of the hole
    (``spatial``), the median of the copies, that fill and the previous frame's repair
    (``previous``; both take indices into the pixels). A lone copy is kept unless the previous
    repair is there to side with the smooth fill: real detail is often far from a smooth fill.
    """
    total = np.zeros((count, channels), np.float32)
    weight = np.zeros(count, np.float32)
    if not candidates:
        return total, weight
    stack = np.full((len(candidates), count, channels), np.nan, np.float32)
    weights = np.zeros((len(candidates), count), np.float32)
    for k, (ok, values, w) in enumerate(candidates):
        stack[k, ok] = values
        weights[k, ok] = w
    number = (weights > 0).sum(0)

    def drop(at: np.ndarray, median: np.ndarray) -> None:
        far = np.nan_to_num(np.abs(stack[:, at] - median), nan=0.0).max(-1) > outlier
        weights[:, at] = np.where(far, 0.0, weights[:, at])

    several = np.nonzero(number >= 3)[0]
    if len(several):
        drop(several, np.nanmedian(stack[:, several], axis=0))
    few = np.nonzero((number == 1) | (number == 2))[0]
    if len(few):
        guess = spatial(few)
        off = np.nan_to_num(np.abs(stack[:, few] - guess), nan=0.0).max(-1).max(0)
        doubt = off > outlier
        if doubt.any():
            at = few[doubt]
            before = previous(at)
            lone = (number[at] == 1) & np.isnan(before).any(-1)
            at, guess, before = at[~lone], guess[doubt][~lone], before[~lone]
            if len(at):
                votes = np.concatenate([stack[:, at], guess[None], before[None]])
                drop(at, np.nanmedian(votes, axis=0))
    values = np.nan_to_num(stack)
    return (values * weights[..., None]).sum(0), weights.sum(0)


def resolve_chain(out: np.ndarray, pending: Pending, previous_out: np.ndarray) -> None:
    """Copy the pixels that waited for the previous frame's generator fill (in place)."""
    if len(pending.chain_y):
        values = bilinear(previous_out, pending.from_x, pending.from_y).reshape(-1, out.shape[2])
        out[pending.chain_y, pending.chain_x] = _as_dtype(values, out.dtype)
