"""Differentiable augmentation of what the discriminator sees (DiffAugment, Zhao et al. 2020).

With about a thousand photos a discriminator can memorise the training set, and then its
verdict on a fill says "not one of my photos" rather than "not a photo". DiffAugment shows it
only randomly recoloured, shifted and cut-out images, real and repaired alike, and the
generator's gradient flows back through the same operations, so nothing about the generator's
target changes. Our patch discriminator's labels follow the hole, so the mask is shifted and
cut out with the images.

One draw of parameters serves a whole training step (the real batch, the repaired batch in the
discriminator's step and in the generator's): the two sides then differ only by the fill, and
feature matching compares like with like.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


@dataclass(frozen=True)
class Augment:
    """One step's random parameters; call it on images in [-1, 1] (N, C, H, W)."""

    brightness: torch.Tensor  # (N, 1, 1, 1), added
    saturation: torch.Tensor  # (N, 1, 1, 1), scales the distance from the pixel's grey
    contrast: torch.Tensor  # (N, 1, 1, 1), scales the distance from the image mean
    shift: torch.Tensor  # (N, 2) integer dy, dx
    keep: torch.Tensor  # (N, 1, H, W) 0 inside the cut-out square

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images + self.brightness.to(images.dtype)
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * self.saturation.to(x.dtype) + grey
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * self.contrast.to(x.dtype) + mean
        return self.geometry(x)

    def geometry(self, images: torch.Tensor) -> torch.Tensor:
        """Shift and cut-out only: what the hole mask gets, so the labels follow the pixels."""
        return _translate(images, self.shift) * self.keep.to(images.dtype)


def draw(n: int, height: int, width: int, device: torch.device, policies: tuple[str, ...] = POLICIES,
         generator: torch.Generator | None = None) -> Augment:
    """Random parameters after DiffAugment's defaults (shift 1/8, cut-out half the side)."""
    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(device)

    ones = torch.ones(n, 1, 1, 1, device=device)
    color = "color" in policies
    brightness = rand(n, 1, 1, 1) - 0.5 if color else torch.zeros_like(ones)
    saturation = rand(n, 1, 1, 1) * 2 if color else ones
    contrast = rand(n, 1, 1, 1) + 0.5 if color else ones
    if "translation" in policies:
        limit = torch.tensor([height // 8, width // 8])
        shift = (torch.rand(n, 2, generator=generator) * (2 * limit + 1)).long() - limit
    else:
        shift = torch.zeros(n, 2, dtype=torch.long)
    keep = torch.ones(n, 1, height, width, device=device)
    if "cutout" in policies:
        ch, cw = height // 2, width // 2
        ys = (torch.rand(n, generator=generator) * (height - ch + 1)).long()
        xs = (torch.rand(n, generator=generator) * (width - cw + 1)).long()
        for i in range(n):
            keep[i, :, ys[i]:ys[i] + ch, xs[i]:xs[i] + cw] = 0
    return Augment(brightness, saturation, contrast, shift, keep)


def _translate(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each image moved by its (dy, dx), zeros shifted in."""
    _, _, h, w = images.shape
    pad_y, pad_x = int(shift[:, 0].abs().max()), int(shift[:, 1].abs().max())
    if pad_y == 0 and pad_x == 0:
        return images
    padded = F.pad(images, (pad_x, pad_x, pad_y, pad_y))
    out = [padded[i:i + 1, :, pad_y - int(dy):pad_y - int(dy) + h, pad_x - int(dx):pad_x - int(dx) + w]
           for i, (dy, dx) in enumerate(shift.tolist())]
    return torch.cat(out).contiguous(memory_format=torch.channels_last)
