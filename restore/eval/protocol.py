"""The evaluation protocol: which crops, which holes, and what a method gets to see.

Everything is a pure function of (seed, mask class, photo's relative path), hashed with
SHA-256, so a result can be reproduced on any machine and adding or removing a photo never
changes another photo's mask. Hole pixels are overwritten with seeded noise before any method
sees the input: a method that reads them (instead of treating them as unknown) is fed garbage
and shows it in the scores.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from restore.inpaint.composite import to_colour
from restore.io.discover import find_inputs
from restore.io.images import ImageError, read_image
from restore.train.masks import make_mask


@dataclass(frozen=True)
class Photo:
    """One ground-truth crop."""

    relative: str  # posix path relative to DATA_DIR: the key every seed is derived from
    truth: np.ndarray  # size x size x 3 uint8 RGB
    upscaled: bool  # the photo's short side was below ``size`` and was enlarged (INTER_CUBIC)


@dataclass(frozen=True)
class Case:
    """One photo with one mask class applied: the exact input every method receives."""

    photo: Photo
    cls: str
    mask: np.ndarray  # bool size x size, True = hole
    masked: np.ndarray  # uint8 RGB: truth outside the hole, seeded uniform noise inside

    @property
    def relative(self) -> str:
        return self.photo.relative

    @property
    def truth(self) -> np.ndarray:
        return self.photo.truth


def rng_for(seed: int, cls: str, relative: str, purpose: str) -> np.random.Generator:
    """A generator that depends only on its arguments (not on Python's salted ``hash``)."""
    key = json.dumps([int(seed), cls, relative, purpose]).encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:16], "little"))


def find_photos(data_dir: str | os.PathLike[str], limit: int | None = None) -> list[tuple[Path, str]]:
    """(path, relative posix path) of every image under ``data_dir``, sorted; the first ``limit``."""
    found = [(path, rel.as_posix()) for path, rel in find_inputs(str(data_dir), None)]
    return found[:limit] if limit is not None else found


def centre_crop(pixels: np.ndarray, size: int) -> tuple[np.ndarray, bool]:
    """Square ``size`` crop from the centre as RGB uint8; small photos are enlarged first.

    A photo whose short side is below ``size`` is upscaled (INTER_CUBIC) so that side equals
    ``size``. Upscaled crops are smoother than real ones and so easier to fill: callers record it.
    """
    rgb = np.rint(to_colour(pixels) * 255).astype(np.uint8)
    h, w = rgb.shape[:2]
    upscaled = min(h, w) < size
    if upscaled:
        scale = size / min(h, w)
        new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
        rgb = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_CUBIC)
        h, w = rgb.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(rgb[y : y + size, x : x + size]), upscaled


def load_photos(data_dir: str | os.PathLike[str], size: int = 512, limit: int | None = None) -> list[Photo]:
    """Every photo of the protocol as a ``size`` crop, in protocol order."""
    photos = []
    for path, relative in find_photos(data_dir, limit):
        try:
            pixels = read_image(path).pixels
        except ImageError as exc:  # a broken ground-truth file must stop the run, not shrink it
            raise ImageError(f"{path}: {exc}") from None
        crop, upscaled = centre_crop(pixels, size)
        photos.append(Photo(relative, crop, upscaled))
    return photos


def make_case(photo: Photo, cls: str, seed: int) -> Case:
    """The mask of ``cls`` for this photo, and its input with noise in the hole."""
    size = photo.truth.shape[0]
    mask = make_mask(cls, size, size, rng_for(seed, cls, photo.relative, "mask")) > 0
    noise = rng_for(seed, cls, photo.relative, "noise").integers(0, 256, photo.truth.shape, dtype=np.uint8)
    masked = photo.truth.copy()
    masked[mask] = noise[mask]
    return Case(photo, cls, mask, masked)


def iter_cases(photos: list[Photo], cls: str, seed: int) -> Iterator[Case]:
    """The cases of one class in protocol order, made lazily (masks are cheap, memory is not)."""
    for photo in photos:
        yield make_case(photo, cls, seed)


def kid_crop_side(size: int) -> int:
    """Side of the KID crops: 256 px, at most half the crop so that a photo's crops differ."""
    return min(256, size // 2)


def kid_boxes(case: Case, count: int, side: int, seed: int) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` seeded ``side`` crops, each centred on a hole pixel.

    Crops centred on the holes make KID/FID measure the filled areas rather than the untouched
    surroundings, and several per photo give the estimator enough samples from few photos.
    """
    ys, xs = np.nonzero(case.mask)
    limit = case.mask.shape[0] - side
    if len(ys) == 0:  # make_mask never returns an empty mask, but a crop is still defined
        return [(limit // 2, limit // 2)] * count
    rng = rng_for(seed, case.cls, case.relative, "kid-crops")
    picks = rng.choice(len(ys), count, replace=len(ys) < count)
    return [(int(np.clip(ys[i] - side // 2, 0, limit)), int(np.clip(xs[i] - side // 2, 0, limit)))
            for i in picks]
