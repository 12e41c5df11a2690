"""Between file pixels and model colours: conversion in, and a bit-exact paste back out.

Only hole pixels are ever written, so everything outside the mask, and every alpha value,
comes back exactly as it was read, at the file's own bit depth.
"""

from __future__ import annotations

import numpy as np


def to_colour(pixels: np.ndarray) -> np.ndarray:
    """H x W x C uint8/uint16 (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) -> RGB float32 in [0, 1]."""
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    colour = pixels[..., :1] if pixels.shape[-1] in (1, 2) else pixels[..., :3]
    colour = colour.astype(np.float32) / scale
    return np.repeat(colour, 3, axis=-1) if colour.shape[-1] == 1 else colour


def composite(pixels: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Write ``filled`` (RGB float) into the hole pixels of a copy of ``pixels``; alpha untouched."""
    out = pixels.copy()
    top = 65535.0 if pixels.dtype == np.uint16 else 255.0
    values = filled[hole]
    if pixels.shape[-1] in (1, 2):
        values = values @ np.array([0.299, 0.587, 0.114], np.float32)
        values = values[:, None]
    quantised = np.clip(np.rint(values * top), 0, top).astype(pixels.dtype)
    colour_channels = 1 if pixels.shape[-1] in (1, 2) else 3
    out[..., :colour_channels][hole] = quantised
    return out
