"""Where to repair, frame by frame: given masks, and the temporal cues a single photo lacks.

Two kinds of damage are easier to see in time than in one picture:

- a **static overlay** (burnt-in timestamp, channel logo) stays put while the scene moves under
  it. ``OverlayCue`` collects evidence per pixel while the camera moves (median flow over 1 px):
  where the local scene motion (flow averaged over 16x16 blocks) is clearly non-zero, a pixel
  that keeps its value although following the motion would have changed it votes "overlay";
  one that changes votes "scene". Flat areas (sky, walls) cast no vote either way, and a still
  camera casts none at all, so a static scene (or the still background beside someone walking
  past) is never mistaken for an overlay: there, the detector or ``--mask`` has to find it.
  Votes decay slowly, so an overlay that goes away is forgotten.
- a **single-frame defect** (dust, a speck, a dropout) is in one frame and not its neighbours:
  ``single_frame_defects`` flags pixels that differ, in the same direction, from both
  motion-compensated neighbours while those two agree with each other (Kokaram's spike
  detector), keeping only speck-sized blobs, since large ones are usually motion the flow missed.

The damage detector (a network, per frame) finds the rest; the job merges all three.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from restore.io.images import ImageError, read_mask
from restore.video.reader import FrameReader, VideoError, list_frames, probe_video

CUES = ("overlay", "specks")


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate with a round kernel (damage has soft edges)."""
    if pixels <= 0 or not mask.any():
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


class OverlayCue:
    """Evidence, per low-resolution pixel, that something is burnt in over a moving scene."""

    def __init__(self, shape: tuple[int, int], decay: float = 0.995, min_votes: float = 8.0,
                 ratio: float = 4.0, still: float = 8.0, changed: float = 24.0, motion: float = 1.0) -> None:
        self.shape = shape  # (h, w) of the grey frames it is given
        self.decay, self.min_votes, self.ratio = decay, min_votes, ratio
        self.still, self.changed, self.motion = still, changed, motion
        self.votes_for = np.zeros(shape, np.float32)
        self.votes_against = np.zeros(shape, np.float32)
        self._mask: np.ndarray | None = None
        h, w = shape
        self._grid = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    def update(self, previous: np.ndarray, current: np.ndarray, flow: np.ndarray) -> None:
        """Add one pair of consecutive grey frames and the flow current -> previous."""
        h, w = self.shape
        self.votes_for *= self.decay
        self.votes_against *= self.decay
        self._mask = None
        # Only while the camera moves (most of the frame does): with a still camera, the still
        # background beside someone walking past would look just like an overlay.
        if np.median(np.hypot(flow[::4, ::4, 0], flow[::4, ::4, 1])) <= self.motion:
            return
        # Scene motion per pixel: flow averaged over 16x16 blocks, so a thin overlay is outvoted.
        small = (max(1, w // 16), max(1, h // 16))
        scene = cv2.resize(cv2.resize(flow, small, interpolation=cv2.INTER_AREA), (w, h),
                           interpolation=cv2.INTER_LINEAR)
        moving = np.hypot(scene[..., 0], scene[..., 1]) > self.motion
        cur = current.astype(np.float32)
        still = np.abs(cur - previous.astype(np.float32))
        moved = cv2.remap(previous, self._grid[0] + scene[..., 0], self._grid[1] + scene[..., 1],
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        followed = np.abs(cur - moved.astype(np.float32))
        self.votes_for += moving & (still < self.still) & (followed > self.changed)
        self.votes_against += moving & (still > self.changed)

    def mask(self) -> np.ndarray:
        """Low-resolution overlay mask: outlines closed, enclosed small gaps filled."""
        if self._mask is None:
            found = (self.votes_for >= self.min_votes) & (self.votes_for >= self.ratio * self.votes_against)
            if found.any():
                kernel = np.ones((5, 5), np.uint8)
                found = cv2.morphologyEx(found.astype(np.uint8), cv2.MORPH_CLOSE, kernel) > 0
                found = _fill_enclosed(found, max_area=found.size // 50)
            self._mask = found
        return self._mask

    def full_mask(self, height: int, width: int, grow_by: int = 2) -> np.ndarray:
        mask = self.mask()
        if not mask.any():
            return np.zeros((height, width), bool)
        up = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
        return grow(up, grow_by)


def _fill_enclosed(mask: np.ndarray, max_area: int) -> np.ndarray:
    """Fill holes inside found shapes (the flat inside of a logo casts no vote), if small."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    h, w = mask.shape
    out = mask.copy()
    for label in range(1, count):
        x, y, bw, bh, area = stats[label]
        if x > 0 and y > 0 and x + bw < w and y + bh < h and area <= max_area:
            out[labels == label] = True
    return out


def single_frame_defects(current: np.ndarray, previous: np.ndarray, following: np.ndarray,
                         valid: np.ndarray, threshold: float = 30.0,
                         max_side: int | None = None) -> np.ndarray:
    """Specks: pixels unlike both motion-compensated neighbours (grey uint8), which agree.

    ``valid`` excludes pixels whose motion is not trusted (occlusions, frame borders), where
    "unlike both neighbours" is just as likely to be something that appeared.
    """
    cur = current.astype(np.int16)
    before = cur - previous.astype(np.int16)
    after = cur - following.astype(np.int16)
    agree = np.abs(previous.astype(np.int16) - following.astype(np.int16))
    found = (valid & (np.abs(before) > threshold) & (np.abs(after) > threshold)
             & (np.sign(before) == np.sign(after)) & (agree < np.minimum(np.abs(before), np.abs(after)) // 2))
    if not found.any():
        return found
    h, w = found.shape
    max_side = max_side or max(6, min(h, w) // 30)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(found.astype(np.uint8), connectivity=8)
    too_big = (stats[:, cv2.CC_STAT_WIDTH] > max_side) | (stats[:, cv2.CC_STAT_HEIGHT] > max_side)
    too_big[0] = True  # background
    keep = ~too_big
    return keep[labels]


# --------------------------------------------------------------------------- given masks


def static_masks(path: Path, shape: tuple[int, int]) -> Iterator[np.ndarray]:
    """One mask for every frame (a logo, a date stamp)."""
    try:
        mask = read_mask(path, shape)
    except ImageError as exc:
        raise VideoError(str(exc)) from None
    return itertools.repeat(mask)


def folder_masks(folder: Path, shape: tuple[int, int]) -> Iterator[np.ndarray]:
    """One mask per frame, in the folder's natural order (frame2 before frame10)."""
    files = list_frames(folder)
    if not files:
        raise VideoError(f"no mask images in {folder}")
    for path in files:
        try:
            yield read_mask(path, shape)
        except ImageError as exc:
            raise VideoError(str(exc)) from None
    raise VideoError(f"{folder} has {len(files)} masks but the clip has more frames")


def video_masks(path: Path, shape: tuple[int, int]) -> Iterator[np.ndarray]:
    """One mask per frame from a mask video (white = repair), e.g. one --save-masks wrote."""
    info = probe_video(path)
    if (info.height, info.width) != tuple(shape):
        raise VideoError(f"mask video {path.name} is {info.width}x{info.height} but the clip is "
                         f"{shape[1]}x{shape[0]}; masks are never resized")
    reader = FrameReader(info)
    yield from (frame.max(axis=2) > 127 for frame in reader)
    raise VideoError(f"mask video {path.name} has {reader.count} frames but the clip has more")
