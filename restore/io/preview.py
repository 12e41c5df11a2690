"""Files for people who review results: masks and before/after pictures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from restore.io.images import atomic_output

PREVIEW_SIDE = 1600


def _display_rgb(pixels: np.ndarray) -> np.ndarray:
    """Any picture as 8-bit RGB for viewing (alpha dropped, grey expanded)."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    colour = pixels[..., :1] if pixels.shape[-1] in (1, 2) else pixels[..., :3]
    return np.repeat(colour, 3, axis=-1) if colour.shape[-1] == 1 else colour


def write_mask(path: Path, mask: np.ndarray) -> None:
    """The mask actually used, as a white-on-black PNG the same size as the image."""
    with atomic_output(path) as tmp:
        if not cv2.imwrite(str(tmp), mask.astype(np.uint8) * 255):
            raise OSError(f"cannot write {path}")


def write_overlay(path: Path, pixels: np.ndarray, mask: np.ndarray) -> None:
    """The picture with the mask tinted red, for checking detections at a glance. Long side capped."""
    rgb = _display_rgb(pixels).copy()
    rgb[mask] = (0.45 * rgb[mask] + np.array([140, 0, 0])).astype(np.uint8)
    _write_preview(path, rgb)


def write_comparison(path: Path, before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> None:
    """Side by side: before with the repaired area outlined in red | after. Long side capped."""
    left = _display_rgb(before).copy()
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thickness = max(1, max(mask.shape) // 800)
    cv2.drawContours(left, contours, -1, (255, 0, 0), thickness)
    _write_preview(path, np.concatenate([left, _display_rgb(after)], axis=1))


def _write_preview(path: Path, rgb: np.ndarray) -> None:
    """An RGB picture as a PNG with its long side capped at PREVIEW_SIDE."""
    scale = PREVIEW_SIDE / max(rgb.shape[:2])
    if scale < 1:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    with atomic_output(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"cannot write {path}")
