"""Which lines does the detector find? Recall of one drawn line by width, softness and tone.

A quality probe, not a timing: the exam (`restore eval --task detect`) mixes every kind of
scratch, so it says how much is missed but not which. Here each photo gets one straight
line (seeded position and angle, 0.8 of the photo's long side) of a given width in pixels,
Gaussian softness and tone (near-black or near-white), and recall is counted on the pixels
that the line covers by more than 35% *and* changes by more than 25 levels (so a white line
on a white wall does not count as missed).

With `--behind`, each line is drawn as the training synthesiser draws a power line: seen only
against the photo's open, smooth parts (sky, walls) and passing behind everything else
(`restore.detect.synth.open_background`). Such a line is scene content, so the share found
should be low; the same definition trains the detector, so this checks that it learnt the
difference, not that it leaves every real wire alone.

    python benchmarks/probe_detect_lines.py ../shared/data/val --detector preview
    python benchmarks/probe_detect_lines.py ../shared/data/val --views 1 --widths 1,2,4,7 --sigmas 0,0.8,1.5
    python benchmarks/probe_detect_lines.py ../shared/data/val --behind --tones 0.05
    python benchmarks/probe_detect_lines.py ../shared/data/val --tones 0.95 --sigmas 0 --angles 0,45,90
    python benchmarks/probe_detect_lines.py ../shared/data/val --grey --widths 2 --sigmas 0 \
        --tones 0.05,0.95,0.3/0.75/0.3
"""

from __future__ import annotations

import argparse
import itertools

import cv2
import numpy as np

from restore.detect.detector import Detector
from restore.detect.synth import open_background
from restore.eval.protocol import find_photos
from restore.inpaint.composite import to_colour
from restore.io.images import read_image

VISIBLE = 0.1  # a counted pixel changes by more than this (0-1 scale, largest channel)


def draw_line(photo: np.ndarray, seed: int, width: int, sigma: float, tone: float | np.ndarray,
              behind: bool = False, degrees: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The photo (float RGB 0-1) with one line over it (``behind``: behind all but its open,
    smooth parts; ``degrees``: its angle, 0 level, 90 upright, default seeded), as uint8, and
    the pixels that count."""
    rng = np.random.default_rng(seed)
    h, w = photo.shape[:2]
    angle = rng.uniform(0, np.pi)
    if degrees is not None:
        angle = np.deg2rad(degrees)
    cx, cy, half = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h, 0.4 * max(h, w)
    dx, dy = half * np.cos(angle), half * np.sin(angle)
    cover = np.zeros((h, w), np.float32)
    cv2.line(cover, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 1.0, width, cv2.LINE_AA)
    if sigma:
        cover = cv2.GaussianBlur(cover, (0, 0), sigma)
    if behind:
        cover *= open_background(photo, rng)
    lined = photo * (1 - cover[..., None]) + tone * cover[..., None]
    counted = (cover > 0.35) & (np.abs(lined - photo).max(2) > VISIBLE)
    return (lined * 255 + 0.5).astype(np.uint8), counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="folder of clean photos (e.g. ../shared/data/val)")
    parser.add_argument("--detector", default="preview")
    parser.add_argument("--views", type=int, default=None, help="default: the weights file's")
    parser.add_argument("--widths", default="1,3")
    parser.add_argument("--sigmas", default="0,0.8")
    parser.add_argument("--tones", default="0.05,0.95",
                        help="line tones, 0 black to 1 white, or R/G/B colours (0.3/0.75/0.3: green)")
    parser.add_argument("--grey", action="store_true", help="make the photos grey first (old prints)")
    parser.add_argument("--every", type=int, default=2, help="use every Nth photo (sorted)")
    parser.add_argument("--angles", default=None,
                        help="line angles in degrees (0 level, 90 upright), comma-separated; default seeded")
    parser.add_argument("--behind", action="store_true",
                        help="lines pass behind the scene like power lines (should not be found)")
    args = parser.parse_args()
    detector = Detector(args.detector, views=args.views)
    photos = [to_colour(read_image(path).pixels).astype(np.float32)
              for path, _ in find_photos(args.data)][:: args.every]
    if args.grey:
        photos = [np.repeat(photo.mean(2, keepdims=True), 3, 2) for photo in photos]
    tones = {name: np.array([float(v) for v in name.split("/")], np.float32) if "/" in name else float(name)
             for name in args.tones.split(",")}
    print(f"{len(photos)} photos, {detector.views} view(s)")
    angles = [None] if args.angles is None else [float(a) for a in args.angles.split(",")]
    print("width  softness  tone  angle  " + ("flagged" if args.behind else "recall"))
    for width, sigma, tone, angle in itertools.product([int(v) for v in args.widths.split(",")],
                                                       [float(v) for v in args.sigmas.split(",")],
                                                       tones, angles):
        found = counted_total = 0
        for seed, photo in enumerate(photos):
            lined, counted = draw_line(photo, seed, width, sigma, tones[tone], args.behind, angle)
            found += int(detector.detect([lined])[0][counted].sum())
            counted_total += int(counted.sum())
        shown = "seeded" if angle is None else f"{angle:g}"
        print(f"{width:5d}  {sigma:8.1f}  {tone:>4s}  {shown:>5s}  {found / max(counted_total, 1):.2f}",
              flush=True)


if __name__ == "__main__":
    main()
