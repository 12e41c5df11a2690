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

from restore.inpaint.windows import components
from restore.io.images import ImageError, read_mask
from restore.video.reader import FrameReader, VideoError, list_frames, probe_video

CUES = ("overlay", "specks", "scratches")
# Views the detector averages on video frames: one, not the three photos get. On video it found
# more damage (the three views' average, under its stricter threshold, missed specks on
# compressed frames) and flickered less: 3.3 dB better at 720p (docs/experiments.md, "video:
# one detector view, deeper classical fill"). Build the Detector with ``views=DETECTOR_VIEWS``.
DETECTOR_VIEWS = 1


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

    ``valid`` excludes pixels whose motion is not trusted (frame borders), where "unlike both
    neighbours" is just as likely to be something that appeared. Where the flow is wrong, the two
    warped neighbours rarely agree, so that test doubles as the check on the motion.
    """
    # Saturating uint8 arithmetic (OpenCV's, several times faster than int16 NumPy at 720p): a
    # pixel brighter than both neighbours by ``lighter`` (the smaller of the two steps), or
    # darker by ``darker``; at most one of them is non-zero.
    lighter = cv2.min(cv2.subtract(current, previous), cv2.subtract(current, following))
    darker = cv2.min(cv2.subtract(previous, current), cv2.subtract(following, current))
    step = cv2.max(lighter, darker)
    strong = cv2.compare(step, int(np.floor(threshold)), cv2.CMP_GT)  # 255 where step > threshold
    agree = cv2.compare(cv2.absdiff(previous, following), step >> 1, cv2.CMP_LT)
    hits = strong & agree & valid.view(np.uint8)  # 0 or 1
    found = hits.view(bool)
    if not found.any():
        return found
    h, w = found.shape
    max_side = max_side or max(12, min(h, w) // 30)
    count, labels, stats = components(hits)
    widths, heights = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    too_big = (widths > max_side) | (heights > max_side)
    # A film scratch: a thin line down the frame, somewhere new (or a few pixels off) in the next.
    scratch = (heights >= 4 * widths) & (stats[:, cv2.CC_STAT_AREA] <= 3 * heights)  # a few pixels wide
    keep = ~too_big | scratch
    if keep[1:].all():  # the usual case: every speck stays (no full-frame gather needed)
        return found
    keep[0] = False  # background
    return keep[labels]


def damage_boxes(mask: np.ndarray, margin: int, min_side: int = 32) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) boxes around a detection's finds, ``margin`` wider, merged where they meet.

    Speck-sized finds are left out: a speck is in one frame only, so there is nothing to look
    for near it in the next; ``single_frame_defects`` finds specks in every frame anyway.
    """
    h, w = mask.shape
    count, _, stats = components(mask)
    speck = max(6, min(h, w) // 30)
    area = np.zeros((h, w), np.uint8)
    for x, y, bw, bh, _ in stats[1:count]:
        if bw > speck or bh > speck:
            area[max(0, y - margin):y + bh + margin, max(0, x - margin):x + bw + margin] = 1
    count, _, stats = components(area)
    boxes = []
    for x, y, bw, bh, _ in stats[1:count]:
        gx, gy = max(0, min_side - bw) // 2 + 1, max(0, min_side - bh) // 2 + 1
        boxes.append((max(0, y - gy), min(h, y + bh + gy), max(0, x - gx), min(w, x + bw + gx)))
    return boxes


def stepped_box(box: tuple[int, int, int, int], shape: tuple[int, int],
                step: int = 64) -> tuple[int, int, int, int]:
    """``box`` (y0, y1, x0, x1) widened about its middle to sides that are multiples of ``step``
    (at most the frame's), inside the frame. The detector looks at these, not at boxes of any
    size: every new input shape costs the network library memory it keeps (oneDNN's cache of
    compiled primitives; 300 shapes, 55 MB)."""
    y0, y1 = _stepped(box[0], box[1], shape[0], step)
    x0, x1 = _stepped(box[2], box[3], shape[1], step)
    return y0, y1, x0, x1


def _stepped(start: int, end: int, size: int, step: int) -> tuple[int, int]:
    side = min(size, -(-(end - start) // step) * step)
    start = min(max(0, (start + end - side) // 2), size - side)
    return start, start + side


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
