"""Between file pixels and model colours: conversion in, and a bit-exact paste back out.

Only hole pixels are ever written, so everything outside the mask, and every alpha value,
comes back exactly as it was read, at the file's own bit depth. A fill never holds a colour
the photo itself lacks: its chroma is clamped to the range of the known pixels', so a black-
and-white or sepia photo stored as RGB gets a fill in its own tones, without a tinted patch.
"""

from __future__ import annotations

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601, as the grey-file path writes
CHROMA_MARGIN = 0.5 / 255  # beyond the percentiles (which already hold JPEG and scan noise)
# Pixels looked at per image, at most (a bigger one is strided): percentiles of 65k pixels are
# as good a colour range and cost a 720p video frame 5 ms, not 24.
CHROMA_SAMPLES = 1 << 16


def to_colour(pixels: np.ndarray) -> np.ndarray:
    """H x W x C uint8/uint16 (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) -> RGB float32 in [0, 1]."""
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    colour = pixels[..., :1] if pixels.shape[-1] in (1, 2) else pixels[..., :3]
    colour = colour.astype(np.float32) / scale
    return np.repeat(colour, 3, axis=-1) if colour.shape[-1] == 1 else colour


def chroma_range(pixels: np.ndarray, hole: np.ndarray) -> np.ndarray | None:
    """2 x 2 [low, high] of (R - Y, B - Y) over the known pixels (0.1-99.9th percentile, plus a
    margin); None for grey files, which are written as luma anyway, or when nothing is known."""
    if pixels.shape[-1] in (1, 2):
        return None
    step = max(1, int(np.sqrt(hole.size / CHROMA_SAMPLES)))
    known = ~hole[::step, ::step]
    if not known.any():
        return None
    rgb = to_colour(pixels[::step, ::step])[known]
    luma = rgb @ LUMA
    chroma = np.stack([rgb[:, 0] - luma, rgb[:, 2] - luma], axis=1)
    low, high = np.percentile(chroma, [0.1, 99.9], axis=0)
    return np.stack([low - CHROMA_MARGIN, high + CHROMA_MARGIN]).astype(np.float32)


def clamp_chroma(rgb: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """``rgb`` (..., 3 float) with its chroma clamped into ``bounds`` (``chroma_range``), luma kept."""
    luma = rgb @ LUMA
    red = luma + np.clip(rgb[..., 0] - luma, bounds[0, 0], bounds[1, 0])
    blue = luma + np.clip(rgb[..., 2] - luma, bounds[0, 1], bounds[1, 1])
    green = (luma - LUMA[0] * red - LUMA[2] * blue) / LUMA[1]
    return np.clip(np.stack([red, green, blue], axis=-1), 0, 1)


def composite(pixels: np.ndarray, filled: np.ndarray, hole: np.ndarray,
              chroma: np.ndarray | None = None) -> np.ndarray:
    """Write ``filled`` (RGB float) into the hole pixels of a copy of ``pixels``; alpha untouched.

    ``chroma``: the photo's colour range (``chroma_range``) the fill is clamped into.
    """
    out = pixels.copy()
    top = 65535.0 if pixels.dtype == np.uint16 else 255.0
    values = filled[hole]
    if chroma is not None:
        values = clamp_chroma(values, chroma)
    if pixels.shape[-1] in (1, 2):
        values = values @ LUMA
        values = values[:, None]
    quantised = np.clip(np.rint(values * top), 0, top).astype(pixels.dtype)
    colour_channels = 1 if pixels.shape[-1] in (1, 2) else 3
    out[..., :colour_channels][hole] = quantised
    return out
