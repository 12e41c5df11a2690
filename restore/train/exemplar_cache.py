"""Exemplar fills of training crops, computed once and stored, for training the refiner.

Why a cache: the refiner (a generator with ``refine=True``) learns to correct the exemplar
stage's fill (restore/inpaint/exemplar.py), which takes a few tenths of a second per 256-px
crop on a CPU core, longer than a training step spends per crop. So the fills are made once,
in the background and in parallel shards, as the engine makes them at run time (the shipped
network's fill guides the synthesis); training then reads (crop, mask, fill) triples and only
flips and transposes them.

A cache folder holds ``chunk-<n>.npz`` files of ``crops`` (N x S x S x 3 uint8),
``masks`` (N x S x S uint8, 1 = hole) and ``fills`` (N x S x S x 3 uint8, the exemplar fill
composited over the crop). Chunks are written atomically as they fill, so an interrupted
build keeps what it made and training can start on a partial cache.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from restore.inpaint.exemplar import synthesize
from restore.model.generator import InpaintGenerator
from restore.train.data import random_crop, step_rng
from restore.train.masks import training_mask

CHUNK = 32  # samples per file: a few minutes of one core's work, lost at most on a crash


def network_fills(generator: InpaintGenerator, crops: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The network's fills of uint8 crops (float RGB in [0, 1], known pixels kept): the guide."""
    image = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    hole = torch.from_numpy(masks)[:, None].float()
    with torch.inference_mode():
        out = generator(image * (1 - hole), hole)
    out = out * hole + image * (1 - hole)
    return ((out.permute(0, 2, 3, 1).numpy() + 1.0) / 2.0).clip(0, 1)


def make_samples(generator: InpaintGenerator, photos: list[np.ndarray], size: int, seed: int,
                 index: int, count: int) -> dict[str, np.ndarray]:
    """``count`` samples, the ``index``-th onwards: each a function of (seed, its index) alone."""
    crops, masks = [], []
    for i in range(index, index + count):
        rng = step_rng(seed, 0, i)
        crops.append(random_crop(photos[int(rng.integers(len(photos)))], size, rng))
        masks.append(training_mask(size, size, rng).astype(np.uint8))
    crops_np, masks_np = np.stack(crops), np.stack(masks)
    guides = network_fills(generator, crops_np, masks_np)
    fills = synthesize([c.astype(np.float32) / 255 for c in crops_np], [m.astype(bool) for m in masks_np],
                       list(guides))
    fills_np = np.stack([np.round(f * 255).astype(np.uint8) for f in fills])
    fills_np[masks_np == 0] = crops_np[masks_np == 0]
    return {"crops": crops_np, "masks": masks_np, "fills": fills_np}


def build_cache(generator: InpaintGenerator, photos: list[np.ndarray], out: Path, samples: int,
                size: int = 256, seed: int = 0, shard: int = 0, shards: int = 1) -> int:
    """Write this shard's chunks of ``samples`` in all under ``out``; chunks already there are kept
    (a rerun resumes). Returns how many samples this call made."""
    out.mkdir(parents=True, exist_ok=True)
    made = 0
    for n, start in enumerate(range(0, samples, CHUNK)):
        if n % shards != shard:
            continue
        path = out / f"chunk-{n:05d}.npz"  # by number alone: any split resumes any other
        if path.exists():
            continue
        arrays = make_samples(generator, photos, size, seed, start, min(CHUNK, samples - start))
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{path.name}.", suffix=".tmp.npz")
        os.close(fd)
        try:
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        made += len(arrays["crops"])
    return made


def cache_batch(cache: dict[str, np.ndarray], batch: int, rng: np.random.Generator, transpose: float = 0.0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crops, masks, fills) of ``batch`` random samples, each mirrored (half of them) and turned
    on its side (a ``transpose`` share), the three arrays alike."""
    crops, masks, fills = [], [], []
    for i in rng.integers(len(cache["crops"]), size=batch):
        c, m, f = cache["crops"][i], cache["masks"][i], cache["fills"][i]
        if rng.random() < 0.5:
            c, m, f = c[:, ::-1], m[:, ::-1], f[:, ::-1]
        if rng.random() < transpose:
            c, m, f = c.transpose(1, 0, 2), m.T, f.transpose(1, 0, 2)
        crops.append(c)
        masks.append(m)
        fills.append(f)
    return np.stack(crops), np.stack(masks), np.stack(fills)


def make_cache_batch(cache: dict[str, np.ndarray], args: tuple[int, float, int, int], step: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The refiner's batch for ``BatchStream``: ``args`` is (batch, transpose, seed, rank)."""
    batch, transpose, seed, rank = args
    return cache_batch(cache, batch, step_rng(seed, rank, step), transpose)


def load_cache(folder: Path) -> dict[str, np.ndarray]:
    """Every finished chunk under ``folder``, concatenated."""
    paths = sorted(Path(folder).glob("chunk-*.npz"))
    if not paths:
        raise ValueError(f"no exemplar-fill chunks under {folder}")
    parts = [dict(np.load(p)) for p in paths]
    return {key: np.concatenate([p[key] for p in parts]) for key in ("crops", "masks", "fills")}
