"""Synthetic damage painted over clean photos: the detector's training data and its exam.

Each damage type is drawn as a coverage map (how much of each pixel the damage hides) and
a colour layer, and blended over the photo; the label is where coverage is substantial.
The shapes follow what scanned prints, negatives and film actually carry: scratches and
hairlines (bright or dark, straight or curved), dust and specks, hairs, creases with a
cracked-emulsion line, torn or missing corners (paper-white or black), stains with soft
borders, and solid-filled holes.

Hard negatives are drawn too, *unlabelled* and *before* the photo's own blur and noise, so
they look like part of the scene: power lines and branches, text, stars, signs and plates,
small manufactured parts. The detector has to learn that damage sits on top of the picture
(sharper, flatter, other colour) while a thin dark line that shares the photo's blur is
content. Scan blur, grain and JPEG go on last, over everything, as a scanner would add them.

All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

DAMAGE_TYPES = ("scratch", "dust", "hair", "crease", "tear", "stain", "hole")
LABEL_COVERAGE = 0.35  # coverage above which a pixel counts as damaged
# Training labels may also ask that the damage changed the pixel visibly (largest channel
# change, 0-1 scale): a grey scratch crossing a grey wall is there in the coverage map but
# not in the picture, and labelling it teaches the network to flag lines it cannot see.
# 0 = coverage only (the exam's rule).
LABEL_VISIBLE = 0.0

Layer = tuple[np.ndarray, np.ndarray]  # (coverage H x W float32 in [0, 1], colour H x W x 3)


# Of scratches and dust, the share drawn in a random colour instead of near-white or near-black;
# the rest keep those two in the ratio 45 : 40. The exam uses it as it is; a fine-tune
# at 0.4 did not teach coloured scratches (docs/experiments.md, 'coloured scratches').
TINT_SHARE = 0.15


# Of scratches, the share drawn straight, level or upright, as film scratches and cine "rain" run.
# The exam keeps 0 (any other value changes its draws); the preview finds such lines far less
# often than slanted ones (docs/experiments.md, 'axis-aligned lines'), so training can raise it.
AXIS_SHARE = 0.0


def _tone(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Damage colour: mostly near-white or near-black, sometimes a grey or a tint."""
    r = rng.random()
    if r < 0.45 / 0.85 * (1 - TINT_SHARE):
        base = np.full(3, rng.uniform(0.82, 1.0))
    elif r < 1 - TINT_SHARE:
        base = np.full(3, rng.uniform(0.0, 0.18))
    else:
        base = rng.uniform(0.0, 1.0, 3)
    return np.broadcast_to(base.astype(np.float32), (h, w, 3)).copy()


def _curve(rng: np.random.Generator, h: int, w: int, length: float, bend: float,
           points: int = 32, angle: float | None = None) -> np.ndarray:
    x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
    angle = rng.uniform(0, np.pi) if angle is None else angle
    t = np.linspace(-0.5, 0.5, points)
    wobble = np.cumsum(rng.normal(0, 0.002, points)) * length
    xs = x0 + t * length * np.cos(angle) - (bend * length * t**2 + wobble) * np.sin(angle)
    ys = y0 + t * length * np.sin(angle) + (bend * length * t**2 + wobble) * np.cos(angle)
    return np.stack([xs, ys], 1)


def _draw_polyline(cov: np.ndarray, pts: np.ndarray, width: int, value: float = 1.0) -> None:
    shift = 4  # sub-pixel precision for smooth anti-aliased curves
    cv2.polylines(cov, [np.round(pts * (1 << shift)).astype(np.int32)], False, value, max(1, width),
                  lineType=cv2.LINE_AA, shift=shift)


def _soften(cov: np.ndarray, rng: np.random.Generator, max_sigma: float) -> np.ndarray:
    sigma = rng.uniform(0.0, max_sigma)
    return cv2.GaussianBlur(cov, (0, 0), sigma) if sigma > 0.2 else cov


def scratch(h: int, w: int, rng: np.random.Generator, scale: float) -> Layer:
    """Long hairlines across much of the frame; several, parallel-ish as film scratches run."""
    cov = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 6))):
        width = max(1, int(round(rng.choice([1, 1, 1, 2, 2, 3, 4]) * max(1.0, scale * rng.uniform(0.6, 1)))))
        length, bend = rng.uniform(0.2, 1.3) * max(h, w), rng.normal(0, 0.12)
        if AXIS_SHARE > 0 and rng.random() < AXIS_SHARE:  # no draw at 0: the exam's lines stay as they were
            bend, angle = bend * 0.1, int(rng.integers(2)) * np.pi / 2 + rng.normal(0, 0.01)
        else:
            angle = None
        pts = _curve(rng, h, w, length, bend, angle=angle)
        layer = np.zeros_like(cov)
        _draw_polyline(layer, pts, width)
        if rng.random() < 0.4:  # broken scratch: gaps along its length
            layer *= cv2.resize(rng.random((8, 8)).astype(np.float32), (w, h)) > 0.3
        cov = np.maximum(cov, layer * rng.uniform(0.55, 1.0))
    return _soften(cov, rng, 0.8), _tone(rng, h, w)


def dust(h: int, w: int, rng: np.random.Generator, scale: float) -> Layer:
    """Specks and blobs, a heavy-tailed size mix: many tiny, a few large."""
    cov = np.zeros((h, w), np.float32)
    colour = _tone(rng, h, w)
    for _ in range(int(rng.integers(5, 80))):
        r = max(1.0, rng.pareto(2.2) * 1.5 * scale + 0.6)
        centre = (rng.uniform(0, w), rng.uniform(0, h))
        axes = (r, max(0.6, r * rng.uniform(0.35, 1.0)))
        s = 16
        cv2.ellipse(cov, (round(centre[0] * s), round(centre[1] * s)),
                    (round(axes[0] * s), round(axes[1] * s)),
                    rng.uniform(0, 180), 0, 360, float(rng.uniform(0.6, 1.0)), -1, cv2.LINE_AA, 4)
    if rng.random() < 0.3:  # some specks the other way (dark dust on a print, bright on a negative)
        flip = (rng.random((h, w)) < 0.5).astype(np.float32)
        colour = colour * (1 - flip[..., None]) + (1 - colour) * flip[..., None]
    return _soften(cov, rng, 0.7), colour


def hair(h: int, w: int, rng: np.random.Generator, scale: float) -> Layer:
    """Short curly fibres, one or two pixels wide."""
    cov = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 6))):
        pts = [np.array([rng.uniform(0, w), rng.uniform(0, h)])]
        angle, turn = rng.uniform(0, 2 * np.pi), rng.normal(0, 0.15)
        for _ in range(int(rng.integers(10, 40))):
            turn = 0.8 * turn + rng.normal(0, 0.12)
            angle += turn
            step = rng.uniform(2, 5) * scale
            pts.append(pts[-1] + step * np.array([np.cos(angle), np.sin(angle)]))
        _draw_polyline(cov, np.array(pts), int(rng.choice([1, 1, 2])), float(rng.uniform(0.6, 1.0)))
    return _soften(cov, rng, 0.6), _tone(rng, h, w)


def crease(h: int, w: int, rng: np.random.Generator, scale: float) -> Layer:
    """A fold: a jagged cracked-emulsion line (labelled) with shading beside it (not labelled)."""
    pts = _curve(rng, h, w, 2.0 * max(h, w), rng.normal(0, 0.05), points=64)
    pts += rng.normal(0, 0.6 * scale, pts.shape)
    cov = np.zeros((h, w), np.float32)
    _draw_polyline(cov, pts, max(1, int(round(rng.uniform(1, 3.5) * scale))), float(rng.uniform(0.7, 1.0)))
    colour = np.broadcast_to(np.float32(rng.uniform(0.8, 1.0)), (h, w, 3)).copy()  # paper shows through
    return _soften(cov, rng, 0.6), colour


def crease_shading(h: int, w: int, cov: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative light/dark band along a crease: a fold is not flat. Not damage to repair."""
    band = cv2.GaussianBlur((cov > 0.1).astype(np.float32), (0, 0), rng.uniform(3, 10))
    band /= max(float(band.max()), 1e-6)
    return 1.0 + rng.uniform(-0.25, 0.2) * band


def _paper(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.65:
        base = rng.uniform(0.8, 1.0) * np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 1.0)])
    else:
        base = np.full(3, rng.uniform(0.0, 0.12))
    grain = cv2.GaussianBlur(rng.normal(0, 0.03, (h, w)).astype(np.float32), (0, 0), 1.2)
    return np.clip(base[None, None, :] + grain[..., None], 0, 1).astype(np.float32)


def tear(h: int, w: int, rng: np.random.Generator, scale: float) -> Layer:
    """A missing corner or edge bite with a ragged border, paper-white or black behind it."""
    cov = np.zeros((h, w), np.float32)
    corner = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)[int(rng.integers(0, 4))]
    size = rng.uniform(0.1, 0.45) * min(h, w)
    angles = np.linspace(0, np.pi / 2, 24)
    radius = size * (1 + np.cumsum(rng.normal(0, 0.06, angles.size)))
    quadrant = np.arctan2(h / 2 - corner[1], w / 2 - corner[0]) - np.pi / 4
    pts = corner + np.stack([np.cos(angles + quadrant), np.sin(angles + quadrant)], 1) * radius[:, None]
    pts += rng.normal(0, 1.5 * scale, pts.shape)
    poly = np.concatenate([corner[None], pts]).round().astype(np.int32)
    cv2.fillPoly(cov, [poly], 1.0, cv2.LINE_AA)
    return _soften(cov, rng, 0.8), _paper(h, w, rng)


def stain(h: int, w: int, rng: np.random.Generator, scale: float) -> Layer:
    """A water or chemical stain: soft-bordered blotch with a tint, often a darker rim."""
    noise = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), rng.uniform(8, 25) * scale)
    noise = (noise - noise.mean()) / (noise.std() + 1e-6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    r = rng.uniform(0.08, 0.3) * min(h, w)
    field = 1 - np.hypot((yy - cy) / r, (xx - cx) / (r * rng.uniform(0.6, 1.6))) + 0.25 * noise
    strength = rng.uniform(0.5, 0.9)
    cov = np.clip(field * 4, 0, 1) * strength
    if rng.random() < 0.5:  # tide line
        cov = np.maximum(cov, np.exp(-(field / 0.04) ** 2) * min(1.0, strength + 0.2))
    tint = np.array([rng.uniform(0.5, 0.9), rng.uniform(0.35, 0.75), rng.uniform(0.1, 0.45)], np.float32)
    if rng.random() < 0.3:
        tint = np.full(3, rng.uniform(0.1, 0.95), np.float32)
    return cv2.GaussianBlur(cov, (0, 0), 1.5), np.broadcast_to(tint, (h, w, 3)).copy()


def hole(h: int, w: int, rng: np.random.Generator, scale: float) -> Layer:
    """Solid-filled areas: dropouts, blanked regions, burnt-out spots."""
    cov = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        bw, bh = rng.uniform(0.03, 0.3, 2) * np.array([w, h])
        x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        if rng.random() < 0.5:
            cv2.rectangle(cov, (int(x), int(y)), (int(x + bw), int(y + bh)), 1.0, -1)
        else:
            cv2.ellipse(cov, (int(x + bw / 2), int(y + bh / 2)), (int(bw / 2), int(bh / 2)),
                        rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA)
    colour = np.broadcast_to(rng.choice([0.0, 1.0, rng.uniform(0, 1)]) * np.ones(3, np.float32),
                             (h, w, 3)).copy()
    if rng.random() < 0.3:
        colour = np.broadcast_to(rng.uniform(0, 1, 3).astype(np.float32), (h, w, 3)).copy()
    return cov, colour


PAINTERS: dict[str, Callable[[int, int, np.random.Generator, float], Layer]] = {
    "scratch": scratch, "dust": dust, "hair": hair, "crease": crease, "tear": tear, "stain": stain,
    "hole": hole,
}
# Scratches and dust are what most scans carry; large flat types (tear, stain) are rarer and
# easy to confuse with flat scene areas, so they are seen less.
TYPE_MIX = {"scratch": 0.3, "dust": 0.25, "hair": 0.1, "crease": 0.1, "tear": 0.07, "stain": 0.07,
            "hole": 0.11}


# -- hard negatives: scene content that looks like damage ------------------------------------------


# Power lines are seen only against open, smooth parts of the scene (sky, walls) and pass
# behind everything else, as real wires do; a scratch lies on top of the print and crosses
# anything. Painted over everything, a wire is a dark scratch with the label taken away.
WIRES_BEHIND_SCENE = True


def open_background(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Where ``img`` (H x W x 3 float, 0-1) is smooth enough for a wire to be seen against:
    low local contrast over a 7 x 7 window, opened so that small gaps in texture do not count;
    soft-edged (H x W float32 in [0, 1])."""
    grey = img.mean(2).astype(np.float32)
    mean = cv2.blur(grey, (7, 7))
    std = np.sqrt(np.maximum(cv2.blur(grey * grey, (7, 7)) - mean * mean, 0))
    smooth = (std < rng.uniform(0.015, 0.04)).astype(np.uint8)
    smooth = cv2.morphologyEx(smooth, cv2.MORPH_OPEN, np.ones((9, 9), np.uint8))
    return cv2.GaussianBlur(smooth.astype(np.float32), (0, 0), 0.7)


def power_lines(img: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Coverage (H x W float32) of long, gently sagging wires across ``img``; with
    ``WIRES_BEHIND_SCENE``, only where it is open and smooth enough to see them against."""
    h, w = img.shape[:2]
    cov = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 5))):
        pts = _curve(rng, h, w, 2.0 * max(h, w), rng.uniform(0.0, 0.1))
        _draw_polyline(cov, pts, max(1, int(round(rng.uniform(0.7, 2) * scale))))
    return cov * open_background(img, rng) if WIRES_BEHIND_SCENE else cov


def _branches(h: int, w: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Coverage (H x W float32) of one forking branch, thinning at each fork."""
    cov = np.zeros((h, w), np.float32)
    stack = [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, 2 * np.pi), 3.0 * scale, 0)]
    while stack:
        x, y, angle, width, depth = stack.pop()
        length = rng.uniform(20, 70) * scale / (1 + depth)
        nx, ny = x + length * np.cos(angle), y + length * np.sin(angle)
        _draw_polyline(cov, np.array([[x, y], [nx, ny]]), max(1, int(round(width))))
        if depth < 4:
            for _ in range(int(rng.integers(1, 3))):
                stack.append((nx, ny, angle + rng.normal(0, 0.6), width * 0.7, depth + 1))
    return cov


def _negative_lines(img: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """Power lines or branches, in a scene colour."""
    h, w = img.shape[:2]
    cov = power_lines(img, rng, scale) if rng.random() < 0.5 else _branches(h, w, rng, scale)
    cov = cv2.GaussianBlur(cov, (0, 0), rng.uniform(0.5, 1.2))  # the scene's own softness
    colour = np.full(3, rng.uniform(0.0, 0.35), np.float32) * rng.uniform(0.8, 1.2, 3).astype(np.float32)
    img[:] = img * (1 - cov[..., None]) + colour * cov[..., None]


def _negative_text(img: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """Signs and captions: thin strokes that belong to the picture."""
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.uint8)
    words = ["OPEN", "Cafe", "1923", "HOTEL", "Station", "No. 12", "PARIS", "exit", "Bakery", "ROAD"]
    for _ in range(int(rng.integers(1, 4))):
        font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
                               cv2.FONT_HERSHEY_SCRIPT_SIMPLEX]))
        size = rng.uniform(0.4, 1.6) * scale
        org = (int(rng.uniform(0, w * 0.8)), int(rng.uniform(h * 0.1, h)))
        cv2.putText(layer, str(rng.choice(words)), org, font, size, 255, max(1, int(size * 1.5)), cv2.LINE_AA)
    layer = cv2.GaussianBlur(layer.astype(np.float32) / 255, (0, 0), rng.uniform(0.4, 1.0))
    colour = rng.uniform(0, 1, 3).astype(np.float32)
    img[:] = img * (1 - layer[..., None]) + colour * layer[..., None]


def _negative_stars(img: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """Point lights on dark areas, blurred like the rest of the photo."""
    h, w = img.shape[:2]
    dark = img.mean(2) < 0.25
    if dark.mean() < 0.05:
        return
    layer = np.zeros((h, w), np.float32)
    ys, xs = np.nonzero(dark)
    for i in rng.integers(0, len(ys), int(rng.integers(10, 80))):
        layer[ys[i], xs[i]] = rng.uniform(0.5, 1.0)
    layer = cv2.GaussianBlur(layer, (0, 0), rng.uniform(0.6, 1.2) * scale)
    layer = np.clip(layer / max(float(layer.max()), 1e-6) * rng.uniform(0.5, 1), 0, 1)
    img[:] = img * (1 - layer[..., None]) + layer[..., None]


def _random_words(rng: np.random.Generator) -> list[str]:
    """Made-up words and numbers: signs, labels and part numbers in Latin letters."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-./"
    count = int(rng.integers(1, 4))
    return ["".join(rng.choice(list(letters), int(rng.integers(2, 12)))) for _ in range(count)]


def _negative_signs(img: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """A sign, label or chip: a flat plate with a border line and lines of text or arrows on it.

    Photos of streets, shops and objects are full of these; they are the val photos' most
    common false alarm (white letters and plate borders read as scratches, flat plates as holes).
    """
    h, w = img.shape[:2]
    plate = np.zeros((h, w), np.float32)
    ink = np.zeros((h, w), np.uint8)
    pw, ph = rng.uniform(0.2, 0.9) * w, rng.uniform(0.1, 0.6) * h
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    box = cv2.boxPoints(((cx, cy), (pw, ph), rng.normal(0, 8))).astype(np.int32)
    cv2.fillPoly(plate, [box], 1.0, cv2.LINE_AA)
    if rng.random() < 0.6:  # a border line a little inside the plate's edge
        inner = cv2.boxPoints(((cx, cy), (pw * 0.94, ph * 0.9), 0)).astype(np.int32)
        cv2.polylines(ink, [inner], True, 255, max(1, int(rng.uniform(1, 3) * scale)), cv2.LINE_AA)
    lines = _random_words(rng)
    size = rng.uniform(0.4, 1.4) * scale
    for i, word in enumerate(lines):
        org = (int(cx - pw * 0.4), int(cy - ph * 0.3 + i * 30 * size))
        font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN]))
        cv2.putText(ink, word, org, font, size, 255, max(1, int(size * rng.uniform(1, 2.5))), cv2.LINE_AA)
    if rng.random() < 0.4:  # an arrow
        start = np.array([cx + pw * rng.uniform(-0.4, 0.4), cy + ph * rng.uniform(-0.3, 0.3)])
        end = start + rng.normal(0, 1, 2) * 25 * scale
        cv2.arrowedLine(ink, tuple(int(v) for v in start), tuple(int(v) for v in end), 255,
                        max(1, int(3 * scale)), cv2.LINE_AA, tipLength=0.4)
    ink_cov = ink.astype(np.float32) / 255
    light = cv2.resize(rng.uniform(0.8, 1.1, (2, 2)).astype(np.float32), (w, h))  # lit unevenly
    base = rng.uniform(0, 1, 3).astype(np.float32)
    text = np.clip(1 - base + rng.normal(0, 0.1, 3), 0, 1).astype(np.float32)
    colour = (base * (1 - ink_cov[..., None]) + text * ink_cov[..., None]) * light[..., None]
    # Real plates are painted metal, wood or plastic, never a perfectly flat colour: a share of
    # the scene's own fine detail shows through, which also keeps them apart from solid holes.
    detail = img - cv2.GaussianBlur(img, (0, 0), 2.0)
    colour = colour + detail * rng.uniform(0.15, 0.5)
    blur = rng.uniform(0.4, 1.0)
    cov = cv2.GaussianBlur(plate, (0, 0), blur)
    colour = cv2.GaussianBlur(colour, (0, 0), blur)
    img[:] = img * (1 - cov[..., None]) + colour * cov[..., None]


def _negative_parts(img: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """Small manufactured things: a grid of pads, chips, round caps and straight traces.

    Circuit boards, tiled walls, keyboards: many small bright or dark shapes with hard edges
    and a highlight, blurred and shaded like the rest of the scene.
    """
    h, w = img.shape[:2]
    tone = rng.uniform(0, 1, 3).astype(np.float32)
    cov = np.zeros((h, w), np.float32)
    colour = np.broadcast_to(tone, (h, w, 3)).copy()
    pitch = rng.uniform(8, 30) * scale
    x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
    for r in range(int(rng.integers(1, 8))):
        for c in range(int(rng.integers(2, 10))):
            if rng.random() < 0.2:
                continue
            x, y = int(x0 + c * pitch), int(y0 + r * pitch)
            size = max(1, int(pitch * rng.uniform(0.2, 0.45)))
            part = tuple(float(v) for v in np.clip(tone + rng.normal(0, 0.15, 3), 0, 1))
            if rng.random() < 0.5:
                cv2.circle(cov, (x, y), size, 1.0, -1, cv2.LINE_AA)
                cv2.circle(colour, (x, y), size, part, -1, cv2.LINE_AA)
            else:
                cv2.rectangle(cov, (x - size, y - size // 2), (x + size, y + size // 2), 1.0, -1)
                cv2.rectangle(colour, (x - size, y - size // 2), (x + size, y + size // 2), part, -1)
            if rng.random() < 0.5:  # a trace to the next part
                cv2.line(cov, (x, y), (x + int(pitch), y + int(rng.choice([0, pitch]))), 1.0,
                         max(1, int(scale)), cv2.LINE_AA)
    shade = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 6 * scale)
    colour = np.clip(colour * (1 + 0.3 * shade[..., None] / (np.abs(shade).max() + 1e-6)), 0, 1)
    blur = rng.uniform(0.4, 1.0)
    cov = cv2.GaussianBlur(cov, (0, 0), blur)
    colour = cv2.GaussianBlur(colour, (0, 0), blur)
    img[:] = img * (1 - cov[..., None]) + colour * cov[..., None]


NEGATIVES = (_negative_lines, _negative_text, _negative_stars, _negative_signs, _negative_parts)


def vary_content(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """New-looking scenes from the same photos: colours permuted or shifted, turned or flipped.

    For training only (the exam stays as it was): 185 photos of scenes, monuments and
    animals hold few of the colours and orientations the detector will meet.
    """
    if rng.random() < 0.3:
        img = img[..., rng.permutation(3)]
    if rng.random() < 0.2:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(rng.integers(0, 180))) % 180
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.random() < 0.25 and img.shape[0] == img.shape[1]:
        img = np.rot90(img, int(rng.integers(1, 4)))
    if rng.random() < 0.2:
        img = img[::-1]
    return np.ascontiguousarray(img)


# -- the whole picture -------------------------------------------------------------------------------


def _age(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Old photos are often monochrome or sepia and faded."""
    r = rng.random()
    if r < 0.2:
        grey = img.mean(2, keepdims=True)
        img = np.repeat(grey, 3, 2)
    elif r < 0.35:
        grey = img.mean(2, keepdims=True)
        img = grey * np.array([1.07, 0.95, 0.78], np.float32)
    if rng.random() < 0.3:
        lo = rng.uniform(0, 0.15)
        img = lo + img * rng.uniform(0.7, 1.0 - lo)
    return np.clip(img, 0, 1).astype(np.float32)


def _scan(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the scanner or camera adds over everything: softness, grain, JPEG."""
    if rng.random() < 0.4:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.8))
    if rng.random() < 0.6:
        img = img + rng.normal(0, rng.uniform(0.003, 0.03), img.shape).astype(np.float32)
    img = np.clip(img, 0, 1)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", (img * 255 + 0.5).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY,
                                                                           int(rng.integers(60, 96))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255
    return img


def paint_damage(photo: np.ndarray, rng: np.random.Generator, types: tuple[str, ...] | None = None,
                 count: int | None = None, negatives: float = 0.35, scale: float | None = None,
                 visible: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Damage a clean RGB uint8 photo.

    Returns (damaged RGB uint8, label H x W bool). ``types`` limits the damage to those
    types (default: a random mix, sometimes none, so clean photos are seen too); ``count``
    how many damage layers (default 0-3). ``negatives`` is the chance of drawing scene-like
    hard negatives first. ``scale`` is pixels per reference pixel (default from the size).
    ``visible``: a labelled pixel must also change by more than this (default
    ``LABEL_VISIBLE``).
    """
    visible = LABEL_VISIBLE if visible is None else visible
    h, w = photo.shape[:2]
    scale = scale if scale is not None else max(0.5, min(h, w) / 256.0) ** 0.5
    img = _age(photo.astype(np.float32) / 255.0, rng)
    if rng.random() < negatives:
        for painter in rng.permutation(np.array(NEGATIVES, dtype=object))[: int(rng.integers(1, 3))]:
            painter(img, rng, scale)
    if types is None:
        names, probs = list(TYPE_MIX), np.array(list(TYPE_MIX.values()))
        n = count if count is not None else int(rng.choice([0, 1, 1, 2, 2, 3]))
        chosen = [str(rng.choice(names, p=probs / probs.sum())) for _ in range(n)]
    else:
        n = count if count is not None else 1
        chosen = [str(rng.choice(types)) for _ in range(n)]
    label = np.zeros((h, w), bool)
    for name in chosen:
        cov, colour = PAINTERS[name](h, w, rng, scale)
        if name == "crease":
            img = np.clip(img * crease_shading(h, w, cov, rng)[..., None], 0, 1)
        if name in {"scratch", "dust", "hair", "hole"} and rng.random() < 0.3:
            # Damage that only partly hides the picture (a faint scratch) is still damage.
            cov = cov * rng.uniform(0.6, 0.9)
        before = img
        img = img * (1 - cov[..., None]) + colour * cov[..., None]
        damaged = cov > LABEL_COVERAGE
        if visible > 0:
            damaged &= np.abs(img - before).max(2) > visible
        label |= damaged
    img = _scan(img, rng)
    return (img * 255 + 0.5).clip(0, 255).astype(np.uint8), label
