"""Rebuild examples/ from clean photos: paint realistic damage and keep the exact mask.

Maintainer tool (needs ../shared/data/train); users just use the files it made.
    python examples/make_examples.py ../shared/data/train
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from restore.detect.synth import PAINTERS

HERE = Path(__file__).parent
# Scratches (with a hair) and dust are drawn by the detector's own damage painters, so the bare
# `restore images examples/damaged OUT` shows what it finds and misses; the torn corner and the date
# stamp are for the two-step workflow with --masks.
DETECTABLE = {"scratches": ("scratch", "scratch", "hair"), "dust": ("dust", "dust")}
# (source file in the training set, output name, licence line, damage to paint)
PICKS = [
    ("enlightenment-data__Mountain.jpg", "mountain.jpg", "BSD-2-clause, enlightenment-data", "scratches"),
    ("enlightenment-data__Sea-of-Lanterns.jpg", "lanterns.jpg", "BSD-2-clause, enlightenment-data", "dust"),
    ("mate-backgrounds__Garden.jpg", "album/garden.png", "GPL-2+, mate-backgrounds", "corner"),
    ("plasma-workspace-wallpapers__2560x1600_5.jpg", "album/stamp.jpg", "GPL-2+, plasma-workspace-wallpapers",
     "datestamp"),
]


def paint(img: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Damage ``img`` (uint8 RGB); return (damaged, mask) with mask covering every changed pixel."""
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.float32)
    colour = np.zeros((h, w, 3), np.float32)
    if kind in DETECTABLE:  # the damage the detector is trained and measured on (restore.detect.synth)
        scale = max(0.5, min(h, w) / 256.0) ** 0.5
        damaged = img.astype(np.float32) / 255
        for painter in DETECTABLE[kind]:
            cov, tone = PAINTERS[painter](h, w, rng, scale)
            damaged = damaged * (1 - cov[..., None]) + tone * cov[..., None]
            layer = np.maximum(layer, cov)
        mask = cv2.dilate((layer > 0.02).astype(np.uint8), np.ones((3, 3), np.uint8)) * 255
        return (damaged * 255).round().clip(0, 255).astype(np.uint8), mask
    if kind == "corner":
        pts = np.array([(w, h), (w - int(w * 0.3), h), (w - int(w * 0.24), h - int(h * 0.1)),
                        (w - int(w * 0.12), h - int(h * 0.16)), (w, h - int(h * 0.35))], np.int32)
        cv2.fillPoly(layer, [pts], 1.0, cv2.LINE_AA)
        colour[:] = 245
    else:
        text = np.zeros((h, w), np.uint8)
        cv2.putText(text, "'98 7 14", (int(w * 0.62), int(h * 0.93)), cv2.FONT_HERSHEY_DUPLEX,
                    h / 300, 255, max(2, h // 200), cv2.LINE_AA)
        layer = text.astype(np.float32) / 255
        colour[:] = (255, 140, 30)
    layer = cv2.GaussianBlur(layer, (3, 3), 0.6)
    alpha = np.clip(layer * 0.95, 0, 1)[..., None]
    damaged = (img * (1 - alpha) + colour * alpha).round().astype(np.uint8)
    mask = cv2.dilate((layer > 0.02).astype(np.uint8), np.ones((3, 3), np.uint8)) * 255
    return damaged, mask


def main(train_dir: Path) -> None:
    rng = np.random.default_rng(7)
    lines = ["file\tsource\tlicence"]
    for source, name, licence, kind in PICKS:
        img = cv2.cvtColor(cv2.imread(str(train_dir / source)), cv2.COLOR_BGR2RGB)
        scale = 640 / max(img.shape[:2])
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        damaged, mask = paint(img, kind, rng)
        out = HERE / "damaged" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        bgr = cv2.cvtColor(damaged, cv2.COLOR_RGB2BGR)
        if out.suffix == ".png":  # a 16-bit scan, to show bit depth is kept
            bgr = bgr.astype(np.uint16) * 257
        cv2.imwrite(str(out), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92] if out.suffix == ".jpg" else [])
        mask_path = HERE / "masks" / Path(name).with_suffix(".png")
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(mask_path), mask)
        original = HERE / "originals" / Path(name).with_suffix(".jpg")
        original.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(original), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        lines.append(f"{name}\t{source}\t{licence}")
    (HERE / "LICENSES.tsv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/train"))
