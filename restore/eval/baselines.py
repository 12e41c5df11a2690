"""Classical hole fills the model has to beat: OpenCV's Telea and Navier-Stokes, and PatchMatch.

Each baseline is ``fill(image uint8 RGB, mask bool) -> uint8 RGB`` and leaves pixels outside
the mask bit-identical (the result is pasted into a copy of the input to guarantee it).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from restore.eval import EXTRA_HINT, MissingPackage

# OpenCV's tutorial value; larger radii blur more across a thin hole without helping wide ones.
INPAINT_RADIUS = 3
# PatchMatch patch radius (7x7 patches), as in the package's own examples. Its default (15) is
# ~10x slower at 512 px and filled no better on a spot check of the validation photos.
PATCHMATCH_PATCH = 3
PATCHMATCH_SEED = 0

BASELINES = ("telea", "ns", "patchmatch")

Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _paste(image: np.ndarray, filled: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = image.copy()
    out[mask] = filled[mask]
    return out


def _opencv(flag: int) -> Fill:
    def fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # cv2.inpaint reads a few hole pixels near the hole's edge; blank them so the score
        # cannot depend on what was in the hole.
        blank = image.copy()
        blank[mask] = 0
        return _paste(image, cv2.inpaint(blank, mask.astype(np.uint8), INPAINT_RADIUS, flag), mask)

    return fill


def _patchmatch() -> Fill:
    try:
        import patchmatch
    except ImportError:
        raise MissingPackage("the patchmatch baseline needs pypatchmatch: pip install pypatchmatch "
                             f"(or {EXTRA_HINT})") from None
    if not patchmatch.patchmatch_available:
        raise MissingPackage("pypatchmatch is installed but its native library did not load; reinstall it: "
                             "pip install --force-reinstall --no-deps --no-cache-dir pypatchmatch")

    def fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        patchmatch.set_random_seed(PATCHMATCH_SEED)  # the search is randomised: same input, same output
        return _paste(image, patchmatch.inpaint(image, mask, patch_size=PATCHMATCH_PATCH), mask)

    return fill


def get_baseline(name: str) -> Fill:
    """The fill function for ``name``; MissingPackage if its package is not installed."""
    if name == "telea":
        return _opencv(cv2.INPAINT_TELEA)
    if name == "ns":
        return _opencv(cv2.INPAINT_NS)
    if name == "patchmatch":
        return _patchmatch()
    raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
