"""Synthetic hole masks: the damage shapes the model learns to fill.

Shapes follow LaMa's training and evaluation masks (irregular brush strokes and boxes in
thin / medium / thick sizes) plus the shapes of real print and film damage: long thin
scratches and hairlines, and dust specks. Sizes scale with the crop so a mask drawn for a
512-pixel crop looks like the 256-pixel one, only larger. All randomness comes from the
``numpy.random.Generator`` passed in, so a seed gives the same mask everywhere.
"""

from __future__ import annotations

import cv2
import numpy as np

MASK_KINDS = ("thin", "medium", "thick", "scratch", "dust")

# Per kind, at a 256-pixel reference side: (strokes min/max, stroke width min/max,
# vertices min/max, segment length max, boxes min/max, box side min/max).
_STROKE_PARAMS = {
    "thin": ((4, 50), (2, 10), (2, 8), 40, (0, 0), (0, 0)),
    "medium": ((1, 5), (10, 50), (2, 6), 100, (0, 3), (30, 100)),
    "thick": ((1, 3), (50, 100), (2, 5), 200, (0, 3), (70, 150)),
}

MAX_HOLE_FRACTION = 0.5


def _strokes(mask: np.ndarray, rng: np.random.Generator, kind: str, scale: float) -> None:
    (n_lo, n_hi), (w_lo, w_hi), (v_lo, v_hi), max_len, _, _ = _STROKE_PARAMS[kind]
    h, w = mask.shape
    for _ in range(int(rng.integers(n_lo, n_hi + 1))):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        width = max(1, int(rng.uniform(w_lo, w_hi) * scale))
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(v_lo, v_hi + 1))):
            angle += rng.uniform(-1.2, 1.2)
            length = rng.uniform(5, max_len) * scale
            nx = int(np.clip(x + length * np.cos(angle), 0, w - 1))
            ny = int(np.clip(y + length * np.sin(angle), 0, h - 1))
            cv2.line(mask, (x, y), (nx, ny), 1, width, lineType=cv2.LINE_AA)
            cv2.circle(mask, (nx, ny), width // 2, 1, -1)
            x, y = nx, ny


def _boxes(mask: np.ndarray, rng: np.random.Generator, kind: str, scale: float) -> None:
    *_, (b_lo, b_hi), (s_lo, s_hi) = _STROKE_PARAMS[kind]
    h, w = mask.shape
    for _ in range(int(rng.integers(b_lo, b_hi + 1))):
        bw = int(rng.uniform(s_lo, s_hi) * scale)
        bh = int(rng.uniform(s_lo, s_hi) * scale)
        x, y = int(rng.integers(0, max(1, w - bw))), int(rng.integers(0, max(1, h - bh)))
        mask[y : y + bh, x : x + bw] = 1


def _scratches(mask: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """Long, nearly straight hairlines crossing much of the frame, like film or print scratches."""
    h, w = mask.shape
    for _ in range(int(rng.integers(1, 8))):
        width = max(1, int(round(rng.uniform(1, 4) * scale)))
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.3, 1.2) * max(h, w)
        bend = rng.normal(0, 0.15)
        t = np.linspace(-0.5, 0.5, 24)
        xs = x0 + t * length * np.cos(angle) - bend * length * (t**2) * np.sin(angle)
        ys = y0 + t * length * np.sin(angle) + bend * length * (t**2) * np.cos(angle)
        pts = np.stack([xs, ys], axis=1).round().astype(np.int32)
        cv2.polylines(mask, [pts], False, 1, width, lineType=cv2.LINE_AA)


def _dust(mask: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """Specks and small blobs of varied size; a few short curly hairs."""
    h, w = mask.shape
    for _ in range(int(rng.integers(10, 120))):
        r = max(1, int(rng.pareto(2.5) * 2 * scale + 1))
        axes = (r, max(1, int(r * rng.uniform(0.4, 1.0))))
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.ellipse(mask, centre, axes, rng.uniform(0, 180), 0, 360, 1, -1)
    for _ in range(int(rng.integers(0, 4))):
        pts = [(rng.uniform(0, w), rng.uniform(0, h))]
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(12):
            angle += rng.normal(0, 0.5)
            step = rng.uniform(2, 6) * scale
            pts.append((pts[-1][0] + step * np.cos(angle), pts[-1][1] + step * np.sin(angle)))
        cv2.polylines(mask, [np.array(pts, np.int32)], False, 1, 1, lineType=cv2.LINE_AA)


def make_mask(kind: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """One mask of the given kind as a float32 H x W array, 1 = hole, at most half the area."""
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; expected one of {MASK_KINDS}")
    scale = min(height, width) / 256.0
    for _ in range(10):
        mask = np.zeros((height, width), np.uint8)
        if kind in _STROKE_PARAMS:
            _strokes(mask, rng, kind, scale)
            _boxes(mask, rng, kind, scale)
        elif kind == "scratch":
            _scratches(mask, rng, scale)
        else:
            _dust(mask, rng, scale)
        fraction = float(mask.mean())
        if 0 < fraction <= MAX_HOLE_FRACTION:
            return mask.astype(np.float32)
    # Rare: every attempt was empty or too large. Fall back to a single centred box.
    mask = np.zeros((height, width), np.float32)
    mask[height // 4 : height // 2, width // 4 : width // 2] = 1
    return mask


TRAINING_MIX = {"thin": 0.25, "medium": 0.25, "thick": 0.2, "scratch": 0.15, "dust": 0.15}


def training_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A mask drawn from the training mix; sometimes two kinds overlaid, as real damage is."""
    kinds = list(TRAINING_MIX)
    probs = np.array(list(TRAINING_MIX.values()))
    mask = make_mask(str(rng.choice(kinds, p=probs / probs.sum())), height, width, rng)
    if rng.random() < 0.3:
        extra = make_mask(str(rng.choice(["scratch", "dust", "thin"])), height, width, rng)
        combined = np.maximum(mask, extra)
        if combined.mean() <= MAX_HOLE_FRACTION:
            mask = combined
    return mask
