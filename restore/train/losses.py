"""GAN losses for inpainting, after LaMa.

The discriminator is told that patches overlapping the hole are fake and the rest real, so
it judges the fill, not the untouched context; the generator's adversarial term is
likewise counted only on the hole.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_mask(mask: torch.Tensor, like: torch.Tensor, fake_patches: str = "any") -> torch.Tensor:
    """The mask at the discriminator's score resolution.

    ``"any"``: a score cell is 1 if any hole pixel falls in it. ``"share"``: its share of hole
    pixels, so a cell that only grazes the hole is mostly real.
    """
    if mask.shape[-1] <= like.shape[-1]:
        return mask
    pool = F.adaptive_avg_pool2d if fake_patches == "share" else F.adaptive_max_pool2d
    return pool(mask, like.shape[-2:])


def hole_depth(mask: torch.Tensor, limit: int) -> torch.Tensor:
    """Chessboard distance of each hole pixel to the nearest known one (1 at the border), capped."""
    depth = torch.zeros_like(mask)
    inside = mask
    for _ in range(limit):
        depth = depth + inside
        inside = -F.max_pool2d(-inside, 3, 1, 1)  # erode by one pixel
    return depth


def reconstruction_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor,
                        hole_weight: float = 6.0, hole_lowpass: int = 1,
                        hole_pixel_weight: float = 1.0, hole_border: float = 0.0) -> torch.Tensor:
    """L1 weighted towards the hole; the known area still counts so borders blend.

    ``hole_lowpass`` > 1 compares the hole as averages over blocks of that side, with a hole
    pixel's own L1 weighted only ``hole_pixel_weight`` and the rest of ``hole_weight`` going to
    its block. Per-pixel L1 in a hole asks for the mean of every texture that could be there,
    which is a blur; on block means it still pins colour and tone (a cast costs what it did), and leaves the
    detail inside a block to the adversarial and feature-matching terms. A little per-pixel
    weight keeps patterns that average out within a block (an outline traced along the hole's
    edge) from being free.

    ``hole_border`` > 0 (pixels) gives hole pixels near the border back their full per-pixel
    weight, fading as exp(-depth / hole_border): next to the known area the photo's content is
    nearly determined by what surrounds it, deep inside it is not (DeepFill's spatially
    discounted loss makes the same argument).
    """
    if hole_lowpass <= 1:
        weights = 1.0 + (hole_weight - 1.0) * mask
        return (weights * (fake - real).abs()).mean() / weights.mean()
    own = torch.full_like(mask, hole_pixel_weight)
    if hole_border > 0:
        near = torch.exp(-(hole_depth(mask, int(5 * hole_border) + 1) - 1).clamp(min=0) / hole_border)
        own = own + max(0.0, hole_weight - hole_pixel_weight) * near
    pixel = 1.0 - mask + own * mask
    coarse_weight = F.avg_pool2d(mask * (hole_weight - own).clamp(min=0), hole_lowpass, ceil_mode=True)
    coarse_diff = (F.avg_pool2d(fake, hole_lowpass, ceil_mode=True)
                   - F.avg_pool2d(real, hole_lowpass, ceil_mode=True)).abs()
    total = (pixel * (fake - real).abs()).mean() + (coarse_weight * coarse_diff).mean()
    return total / (pixel.mean() + coarse_weight.mean())


def generator_adversarial(fake_score: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss on patches that overlap the hole."""
    m = resize_mask(mask, fake_score)
    return (F.softplus(-fake_score) * m).sum() / m.sum().clamp(min=1.0)


def discriminator_loss(real_score: torch.Tensor, fake_score: torch.Tensor,
                       mask: torch.Tensor, fake_patches: str = "any") -> torch.Tensor:
    """Real photos are real; in a repaired image, hole patches are fake and the rest real.

    With ``fake_patches="share"`` a cell's target is its share of hole pixels (a soft label);
    under ``"any"`` a cell with a single hole pixel in it is wholly fake.
    """
    m = resize_mask(mask, fake_score, fake_patches)
    real_term = F.softplus(-real_score).mean()
    fake_term = (F.softplus(fake_score) * m + F.softplus(-fake_score) * (1 - m)).mean()
    return real_term + fake_term


def r1_penalty(real_score: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Gradient penalty on real images: keeps the discriminator smooth so training stays stable."""
    (grad,) = torch.autograd.grad(real_score.float().sum(), real, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


def feature_matching(fake_feats: list[torch.Tensor], real_feats: list[torch.Tensor]) -> torch.Tensor:
    """L1 between discriminator features of the repaired and the real image."""
    return sum((f - r.detach()).abs().mean() for f, r in zip(fake_feats, real_feats, strict=True)) / len(
        fake_feats
    )
