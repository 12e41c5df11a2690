"""Where to repair, frame by frame: given masks, and the temporal cues a single photo lacks.

Two kinds of damage are easier to see in time than in one picture:

- a **static overlay** (burnt-in timestamp, clock, channel logo) stays put while the scene
  changes under it: ``overlay.py`` finds it once from the clip's first frames.
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
