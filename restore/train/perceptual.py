"""Perceptual loss: L1 between VGG16 features (the trunk shipped with ST-LPIPS), frozen.

L1 on pixels alone rewards the average of all plausible fills, which is a blur; a distance
between a trained network's features rewards edges and texture instead. Raw features, as in
pix2pixHD and most inpainting work, not LPIPS's unit-normalised ones: normalising makes flat
dark areas (tiny, noise-like features) count as much as detail, and as a loss it painted
colour casts and eye-like blobs into holes within a few hundred steps here.

The VGG trunk is used on purpose: the evaluation's headline ruler is ST-LPIPS with the AlexNet
trunk, and a model trained against its own ruler stops being measured by it. The weights ship
with ``stlpips-pytorch`` (the ``eval`` extra); nothing is downloaded.
"""

from __future__ import annotations

import torch

from restore.eval.metrics import load_stlpips

# pix2pixHD's weights for relu1_2 .. relu5_3: deeper layers are smaller, and carry structure.
LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


class PerceptualLoss(torch.nn.Module):
    """Weighted L1 between VGG features of two batches in [-1, 1]; gradients reach ``fake`` only."""

    def __init__(self) -> None:
        super().__init__()
        lpips = load_stlpips("vgg")
        self.scaling = lpips.scaling_layer
        self.trunk = lpips.net

    def train(self, mode: bool = True) -> PerceptualLoss:
        return super().train(False)  # frozen statistics, whatever the caller's mode

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.trunk(self.scaling(real))
        ours = self.trunk(self.scaling(fake))
        return sum(w * (a - b).abs().mean() for w, a, b in zip(LAYER_WEIGHTS, ours, target, strict=True))
