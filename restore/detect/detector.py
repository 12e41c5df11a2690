"""Finding damage in whole photos: the network applied at full resolution, in tiles.

``Detector.detect`` takes images (uint8 or uint16, 1-4 channels) and returns one boolean
mask per image, the same size. Large images are cut into tiles with a margin of context
that is thrown away afterwards, so tile borders leave no seams and memory stays bounded
whatever the scan's size. Tiles of equal shape from all images share a batch.

A second, coarse look finds large damage: the network sees about 280 px around a pixel and
was trained on 256 px crops, so inside a torn-off corner or a stain wider than that it
cannot tell damage from a flat part of the scene. The photo is also scanned shrunk to
``coarse_side`` px on its short side, where such damage fits the network's view, and what
it flags there with high confidence (``coarse_threshold``) is added.

Each tile is seen in several views (as is, transposed, mirrored) and the probabilities
averaged: the network's confident false alarms on scene content it never
trained on come and go with the orientation, damage is found in every view. The weights
file says how many views its threshold was calibrated for; tiles where the first view
flags nothing near the threshold skip the others.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from restore.detect.model import VIEWS, average_views
from restore.detect.weights import load_detector
from restore.inpaint.composite import to_colour
from restore.inpaint.device import cpu_has_fast_bf16, pick_device
from restore.inpaint.windows import Box


def sensitivity_threshold(sensitivity: float, base: float = 0.5) -> float:
    """Probability above which a pixel is damage.

    Sensitivity 0.5 is ``base`` (the shipped detector's is calibrated so that clean photos are
    almost never flagged); each 0.1 of sensitivity moves the threshold by 0.6 in logit, so 0
    and 1 are about 20x stricter and looser in odds.
    """
    base = float(np.clip(base, 1e-4, 1 - 1e-4))
    logit = np.log(base / (1 - base)) - 6.0 * (sensitivity - 0.5)
    return float(1 / (1 + np.exp(-logit)))


COARSE_AT_MOST = 0.75  # the coarse scan runs only where it shrinks the photo at least this much
COARSE_SIDE = 256  # px on the short side the coarse scan shrinks photos to


def core_tiles(height: int, width: int, core: int) -> list[Box]:
    """Non-overlapping boxes of side at most ``core`` covering the image."""
    return [Box(y, x, min(height, y + core), min(width, x + core))
            for y in range(0, height, core) for x in range(0, width, core)]


class Detector:
    """A loaded damage detector plus how to apply it; no per-image state survives a call."""

    def __init__(self, model: str | Path | None = None, device: str = "auto", precision: str = "auto",
                 sensitivity: float = 0.5, tile: int = 1024, margin: int = 32, batch_size: int = 4,
                 coarse_side: int | None = COARSE_SIDE, views: int | None = None) -> None:
        self.device = pick_device(device)
        if precision == "auto":
            precision = "fp16" if self.device.type in {"cuda", "mps"} else (
                "bf16" if cpu_has_fast_bf16() else "fp32")
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self.model = load_detector(model, self.device).to(memory_format=torch.channels_last)
        if self.dtype == torch.float16:
            self.model.half()
        # Views averaged per tile (None: as many as the weights file says), with the
        # threshold calibrated for that many (a file without per-view ones has a single one).
        self.views = int(views or getattr(self.model, "views", 1))
        if not 1 <= self.views <= len(VIEWS):
            raise ValueError(f"views must be 1 to {len(VIEWS)}, not {self.views}")
        base = getattr(self.model, "thresholds", {}).get(self.views, getattr(self.model, "threshold", 0.5))
        self.threshold = sensitivity_threshold(sensitivity, base)
        # The coarse look: its own threshold where the weights file has one (calibrated on clean
        # training photos shrunk as the coarse scan shrinks them); else 20x as sure in odds as the
        # full-resolution look, which flagged no more pixels of clean training photos
        # (docs/experiments.md, 'coarse second scan').
        coarse = getattr(self.model, "coarse_thresholds", {}).get(self.views)
        self.coarse_threshold = (sensitivity_threshold(sensitivity, coarse) if coarse is not None
                                 else sensitivity_threshold(sensitivity - 0.5, base))
        self.coarse_side = coarse_side
        self.tile, self.margin = tile, margin
        self.batch_size = max(1, batch_size)
        self.model_name = str(model) if model else "default"

    def probabilities(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Per-pixel damage probability (float32 H x W) for each image: the full-resolution
        scan's, raised to the coarse scan's where that is above ``coarse_threshold``."""
        colours = [to_colour(img) for img in images]
        outputs = self._scan(colours, self.threshold)
        if not self.coarse_side:
            return outputs
        shrunk = [i for i, c in enumerate(colours) if self.coarse_side / min(c.shape[:2]) <= COARSE_AT_MOST]
        smalls = []
        for i in shrunk:
            h, w = colours[i].shape[:2]
            scale = self.coarse_side / min(h, w)
            smalls.append(cv2.resize(colours[i], (max(1, round(w * scale)), max(1, round(h * scale))),
                                     interpolation=cv2.INTER_AREA))
        for i, coarse in zip(shrunk, self._scan(smalls, self.coarse_threshold), strict=True):
            h, w = colours[i].shape[:2]
            coarse = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
            sure = coarse > self.coarse_threshold
            outputs[i][sure] = np.maximum(outputs[i][sure], coarse[sure])
        return outputs

    @torch.inference_mode()
    def _scan(self, colours: list[np.ndarray], threshold: float) -> list[np.ndarray]:
        """The network's probabilities over float RGB images at their own size, in tiles, each
        tile averaged over ``self.views`` views of itself (``VIEWS``).

        The extra views run only on tiles where the first could still take the average above
        ``threshold`` (it is at most 1 in every other view), so a clean region costs one pass
        and the mask is the same as with every view everywhere."""
        core = self.tile - 2 * self.margin
        multiple = self.model.multiple
        # Below this in the first view, no pixel's average over the views can pass the threshold.
        bound = self.views * threshold - (self.views - 1)
        work: dict[tuple[int, int], list[tuple[int, Box, Box, np.ndarray]]] = {}
        outputs = [np.zeros(colour.shape[:2], np.float32) for colour in colours]
        for i, colour in enumerate(colours):
            h, w = colour.shape[:2]
            for box in core_tiles(h, w, core):
                window = Box(max(0, box.y0 - self.margin), max(0, box.x0 - self.margin),
                             min(h, box.y1 + self.margin), min(w, box.x1 + self.margin))
                crop = colour[window.slices]
                work.setdefault(crop.shape[:2], []).append((i, box, window, crop))
        for (h, w), items in work.items():
            ph, pw = (-h) % multiple, (-w) % multiple
            for start in range(0, len(items), self.batch_size):
                chunk = items[start : start + self.batch_size]
                x = torch.from_numpy(np.stack([c[3] for c in chunk])).permute(0, 3, 1, 2)
                if ph or pw:
                    # Reflect needs the pad smaller than the side; replicate covers tiny images.
                    mode = "reflect" if ph < h and pw < w else "replicate"
                    x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
                io_dtype = torch.float16 if self.dtype == torch.float16 else torch.float32
                x = (x * 2 - 1).to(self.device, io_dtype).contiguous(memory_format=torch.channels_last)
                inners = [Box(box.y0 - window.y0, box.x0 - window.x0, box.y1 - window.y0, box.x1 - window.x0)
                          for _, box, window, _ in chunk]
                prob = self._run(x)
                if self.views > 1:
                    doubtful = [j for j, inner in enumerate(inners)
                                if (prob[j, 0, inner.y0 : inner.y1, inner.x0 : inner.x1] > bound).any()]
                    if doubtful:
                        prob[doubtful] = average_views(self._run, x[doubtful], self.views,
                                                       first=prob[doubtful])
                prob = prob[:, 0, :h, :w].cpu().numpy()
                for (i, box, _, _), inner, p in zip(chunk, inners, prob, strict=True):
                    outputs[i][box.slices] = p[inner.slices]
        return outputs

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities (N x 1 x H x W, float32, on the device) for a prepared batch (or a
        turned view of one: made channels-last again)."""
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16):
            return torch.sigmoid(self.model(x).float())

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Boolean damage mask for each image (True = repair)."""
        return [p > self.threshold for p in self.probabilities(images)]
