"""Burnt-in overlays on real footage: a clock whose seconds tick, a semi-transparent logo; and what is
no overlay (a still camera's static picture, letterbox bars).

Clips are 2.5 s of ../shared/data/video/cockatoo.mp4 (a hand-held camera, a bird moving) at
320x180, with the overlay drawn on every frame; the true overlay mask is what was drawn and can be
seen (the half-transparent white logo vanishes over the white bird: nothing to find or repair there).
"""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest
from conftest import EXAMPLES, SHARED

from restore.video.job import RepairOptions, repair_frames
from restore.video.overlay import OverlayFinder
from restore.video.propagate import to_grey
from restore.video.reader import FrameReader, ffmpeg_exe, probe_video

COCKATOO = SHARED / "video" / "cockatoo.mp4"
FPS = 20
pytestmark = pytest.mark.skipif(not COCKATOO.exists(), reason="needs ../shared/data/video/cockatoo.mp4")


def draw_overlay(frames: np.ndarray, fps: int = FPS, alpha: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A camera's clock (white, top left, the seconds tick) and a half-transparent logo (bottom right)."""
    n, h, w = frames.shape[:3]
    scale = w / 533  # the text fills about 40% of the width at any size
    logo = np.zeros((h, w), np.uint8)
    cx, cy, r = w - int(30 * scale), h - int(28 * scale), int(14 * scale)
    cv2.circle(logo, (cx, cy), r, 255, max(2, int(3 * scale)))
    cv2.putText(logo, "TV", (cx - int(9 * scale), cy + int(5 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                0.45 * scale, 255, max(1, round(scale)) + 1)
    out, masks = [], []
    for i, frame in enumerate(frames):
        minute, second = divmod(8 * 60 + 59 + i // fps, 60)  # 17:08:59, 17:09:00, 17:09:01
        text = np.zeros((h, w), np.uint8)
        cv2.putText(text, f"2019-12-20  17:{minute:02d}:{second:02d}  CAM-03",
                    (int(6 * scale), int(16 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, 255,
                    max(1, round(scale)), cv2.LINE_AA)
        a = (text.astype(np.float32) / 255)[..., None]
        a = np.maximum(a, (logo > 0)[..., None] * alpha)
        out.append(np.clip(frame * (1 - a) + 255 * a, 0, 255).astype(np.uint8))
        masks.append((text > 64) | (logo > 0))
    return np.stack(out), np.stack(masks)


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> np.ndarray:
    """2.5 s of cockatoo.mp4 at 320x180 (50 frames, decoded once)."""
    path = tmp_path_factory.mktemp("overlay") / "cockatoo.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(COCKATOO), "-t", "2.5", "-vf", "scale=320:180",
                    "-c:v", "libx264", "-crf", "12", "-an", str(path)], check=True)
    return np.stack(list(FrameReader(probe_video(path))))


def find(frames: np.ndarray) -> np.ndarray:
    finder = OverlayFinder(frames.shape[1:3])
    for frame in frames:
        finder.add(to_grey(frame))
    return finder.full_mask(*frames.shape[1:3])


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of each frame's overlay pixels flagged, averaged over frames."""
    return float(np.mean([(found & t).sum() / t.sum() for t in truth]))


def visible(frames: np.ndarray, clean: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    return drawn & (np.abs(frames.astype(np.int16) - clean).max(-1) > 24)


def test_clock_and_logo_found_on_moving_footage(footage):
    frames, truth = draw_overlay(footage)
    found = find(frames)
    assert recall(found, visible(frames, footage, truth)) >= 0.9
    near = cv2.dilate(truth.any(0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert (found & ~near).mean() < 0.01, (found & ~near).mean()
    ticking = truth.any(0) & ~truth.all(0)  # where the clock ticks: each digit shows for 1 s only
    ys, xs = np.nonzero(ticking)
    box = (slice(None), slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    digits = np.zeros_like(truth)
    digits[box] = truth[box]
    assert digits.sum() > 200 and recall(found, digits) >= 0.9


def test_a_logo_is_found_whole_when_something_white_passes_behind_part_of_it(footage):
    """Over white, a half-transparent white logo's edge vanishes: that part of the ring is
    coherent in fewer sub-windows and changes with the picture. It is still the logo's."""
    clean = footage.copy()
    h, w = clean.shape[1:3]
    for i in range(len(clean)):
        if (i // 4) % 3 == 0:  # a third of the frames
            clean[i, h - 60:, w - 30:] = 250
    frames, truth = draw_overlay(clean)
    seen = visible(frames, clean, truth)
    logo = seen.copy()
    logo[:, :h - 60] = False
    logo[:, :, :w - 60] = False
    found = find(frames)
    assert (found[None] & logo).sum() >= 0.9 * logo.sum()
    near = cv2.dilate(truth.any(0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert (found & ~near).mean() < 0.01


def test_the_job_masks_the_overlay_from_its_warm_up_pass(footage):
    class NoDamage:
        model_name = "none"

        def detect(self, images):
            return [np.zeros(i.shape[:2], bool) for i in images]

    class Echo:
        model_name, device = "echo", "cpu"

        def repair(self, images, masks, grown=None):
            return images

    frames, truth = draw_overlay(footage)
    out = list(repair_frames(frames, Echo(), detector=NoDamage(), warmup=frames,
                             options=RepairOptions(cues=("overlay",))))
    masks = np.stack([r.mask for r in out])
    seen = visible(frames, footage, truth)
    assert recall(masks[:1], seen[:1]) >= 0.9  # from the first frame on
    assert recall(masks, seen) >= 0.9
    # Only the overlay's strokes, not the picture between the letters and inside the logo's ring
    # where that picture moves: the strokes flag as much of the overlay as the whole shapes, less
    # of the clean picture, and the ticking digits still.
    shapes = find(frames)
    assert (masks <= shapes).all()
    assert recall(shapes[None], seen) - recall(masks, seen) < 0.03
    assert (masks & ~truth).sum() < (shapes[None] & ~truth).sum()
    digits = seen & ~truth.all(0)
    assert recall(masks, digits) >= 0.9


def test_a_pan_under_the_overlay_is_copied_from_the_frames_beside(footage):
    """The flow is computed with the overlay's strokes pre-filled: left in, their edges (which do
    not move) hold the flow around them at zero, and the copies under the text come from the
    wrong place. With nothing but copies (no generator), most of the text must go."""

    class NoDamage:
        model_name = "none"

        def detect(self, images):
            return [np.zeros(i.shape[:2], bool) for i in images]

    class Echo:  # leaves what no frame showed as it was
        model_name, device = "echo", "cpu"

        def repair(self, images, masks, grown=None):
            return images

    photo = cv2.imread(str(EXAMPLES / "originals" / "mountain.jpg"))[..., ::-1]
    h, w = footage.shape[1:3]
    photo = cv2.resize(photo, (2 * w, round(photo.shape[0] * 2 * w / photo.shape[1])))
    clean = np.stack([photo[:h, 3 * i:3 * i + w] for i in range(60)])  # the camera pans 3 px a frame
    frames, truth = draw_overlay(clean)
    out = np.stack([r.pixels for r in repair_frames(frames, Echo(), detector=NoDamage(), warmup=frames,
                                                    options=RepairOptions(cues=("overlay",)))])
    before = np.abs(frames.astype(np.float32) - clean)[truth].mean()
    after = np.abs(out.astype(np.float32) - clean)[truth].mean()
    assert after < 0.2 * before, (after, before)


def test_no_overlay_on_a_still_camera_or_letterbox_bars(footage):
    rng = np.random.default_rng(0)
    still = np.stack([np.clip(footage[0] + rng.normal(0, 2, footage[0].shape), 0, 255).astype(np.uint8)
                      for _ in range(40)])
    assert not find(still).any()  # a still camera's picture: edges that never move, and no overlay
    bars = footage.copy()
    bars[:, :22] = 16
    bars[:, -22:] = 16
    assert find(bars).mean() < 0.002  # letterbox: still, but the picture changes on one side only
