"""Training crops from a folder of clean photos, held in memory.

A few hundred photos fit in RAM, and decoding JPEGs once instead of every step keeps both
CPU cores on the model. Each crop is taken after a random downscale, so the model sees
texture at the scales it meets in 512-pixel windows of larger scans.
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from restore.train.masks import training_mask

MakeBatch = Callable[[Any, tuple, int], Any]

PHOTO_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def load_photos(folder: Path, max_side: int = 1024) -> list[np.ndarray]:
    """Every readable photo under ``folder`` as RGB uint8, long side capped at ``max_side``."""
    photos = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in PHOTO_EXTENSIONS):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        scale = max_side / max(bgr.shape[:2])
        if scale < 1:
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        photos.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if not photos:
        raise ValueError(f"no readable photos under {folder}")
    return photos


def random_crop(photo: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` crop after a random downscale (0.5-1x) and horizontal flip.

    The window is cut first and only it is resized: resizing the whole photo for every crop
    took a quarter of the batch synthesis time of a detector step (0.20 -> 0.15 s per batch).
    """
    h, w = photo.shape[:2]
    low = max(0.5, size / min(h, w))
    scale = rng.uniform(low, max(low, 1.0))
    side = min(h, w, max(1, round(size / scale)))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = photo[y : y + side, x : x + side]
    if side != size:
        shrink = side > size
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def sample_crops(
    photos: list[np.ndarray], batch: int, size: int, rng: np.random.Generator, transpose: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(crops B x S x S x 3 uint8 RGB, masks B x S x S uint8, 1 = hole): a batch before conversion.

    uint8 is a quarter of float32's bytes, which matters when the batch crosses a process pipe.
    ``transpose``: the share of crops turned on their side (x and y swapped), so that no image
    axis is a free direction for the model to smear the hole's borders along.
    """
    idx = rng.integers(0, len(photos), batch)
    crops = [random_crop(photos[i], size, rng) for i in idx]
    if transpose > 0:  # no extra draws otherwise: runs without it replay exactly
        crops = [c.transpose(1, 0, 2) if rng.random() < transpose else c for c in crops]
    masks = np.stack([training_mask(size, size, rng) for _ in range(batch)]).astype(np.uint8)
    return np.stack(crops), masks


def to_model_input(crops: np.ndarray, masks: np.ndarray, *fills: np.ndarray) -> tuple[np.ndarray, ...]:
    """uint8 crops and masks from ``sample_crops`` -> (B x 3 x S x S in [-1, 1], B x 1 x S x S), and
    a refiner's uint8 first fills, if given, like the crops."""
    rgb = [a.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0 for a in (crops, *fills)]
    return rgb[0], masks[:, None].astype(np.float32), *rgb[1:]


def sample_batch(
    photos: list[np.ndarray], batch: int, size: int, rng: np.random.Generator, transpose: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(images B x 3 x S x S float32 in [-1, 1], masks B x 1 x S x S float32, 1 = hole)."""
    return to_model_input(*sample_crops(photos, batch, size, rng, transpose))


Draw = Callable[[np.random.Generator, int], tuple[np.ndarray, ...]]


def photo_draw(photos: list[np.ndarray], size: int) -> Draw:
    """``draw(rng, n)``: n model-input crops and masks from ``photos`` (BatchNorm calibration, previews)."""
    return lambda rng, n: sample_batch(photos, n, size, rng)


def step_rng(seed: int, rank: int, step: int) -> np.random.Generator:
    """The random stream of one training step's batch on one rank.

    A function of (seed, rank, step) alone: batches can be made ahead of time in other
    processes, and a resumed run draws exactly the batches an unbroken run would have.
    """
    return np.random.default_rng([seed, rank, step])


def batch_workers(asked: int | None, device_type: str, world: int = 1) -> int:
    """Batch-making processes for one rank: none on CPU (the model wants every core there)."""
    if asked is not None:
        return asked
    if device_type == "cpu":
        return 0
    return max(0, min(8, ((os.cpu_count() or 1) - world) // world))


_worker_shared: Any = None


def _init_worker(shared: Any) -> None:
    global _worker_shared
    _worker_shared = shared
    cv2.setNumThreads(1)  # one process per core already


def _in_worker(make: MakeBatch, args: tuple, step: int) -> Any:
    return make(_worker_shared, args, step)


def make_crops_batch(photos: list[np.ndarray], args: tuple[int, int, float, int, int], step: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The inpainting step's batch: ``args`` is (batch, size, transpose, seed, rank)."""
    batch, size, transpose, seed, rank = args
    return sample_crops(photos, batch, size, step_rng(seed, rank, step), transpose)


class BatchStream:
    """Batches for steps ``start``, ``start + 1``, ..., made by ``workers`` processes ahead of use.

    ``make(shared, args, step)`` makes one step's batch; it must be a module-level function
    and depend on nothing else (seed its randomness from ``step_rng``), so that a batch is the
    same in a worker and in this process, and a resumed run draws the batches an unbroken run
    would have. ``shared`` (the photos) goes to each worker once; ``args`` travels with each
    step and may be replaced between steps (the detector's mined false alarms): batches
    already submitted keep the old one.

    With ``workers=0`` each batch is made when asked for, in this process: on a 2-core CPU the
    model needs both cores and batch synthesis is a few percent of a step. On a GPU it is not:
    one core makes a 32 x 256² inpainting batch in ~0.11 s, a third of a whole step in the first
    H200 run (0.32 s at 101 img/s), and a 16 x 256² damage batch in ~0.14 s.
    """

    def __init__(self, make: MakeBatch, shared: Any, args: tuple, start: int, workers: int = 0) -> None:
        self._make = make
        self._shared = shared
        self.args = args
        self._next = start
        self._pool = None
        self._pending: collections.deque = collections.deque()
        if workers > 0:
            # spawn, not fork: forked workers hung at 0% CPU in the tests (a child inherits the
            # parent's OpenCV/OpenMP thread pools without their threads). Each worker gets
            # ``shared`` once, pickled (seconds for the photos).
            self._pool = mp.get_context("spawn").Pool(workers, _init_worker, (shared,))
            for _ in range(2 * workers):
                self._submit()

    def _submit(self) -> None:
        assert self._pool is not None
        self._pending.append(self._pool.apply_async(_in_worker, (self._make, self.args, self._next)))
        self._next += 1

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Any:
        if self._pool is None:
            step, self._next = self._next, self._next + 1
            return self._make(self._shared, self.args, step)
        batch = self._pending.popleft().get()
        self._submit()
        return batch

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
