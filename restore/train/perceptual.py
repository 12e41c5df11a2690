"""Perceptual loss: shift-tolerant LPIPS on the VGG trunk, frozen.

L1 alone rewards the average of all plausible fills, which is a blur. A distance measured in a
trained network's feature space rewards edges and texture instead. The VGG trunk is used on
purpose: the evaluation's headline ruler is ST-LPIPS with the AlexNet trunk, and a model trained
against its own ruler stops being measured by it. The weights ship with ``stlpips-pytorch``
(the ``eval`` extra); nothing is downloaded.
"""

from __future__ import annotations

import torch

from restore.eval.metrics import load_stlpips


class PerceptualLoss(torch.nn.Module):
    """Mean ST-LPIPS-VGG distance between two batches in [-1, 1]; gradients reach ``fake`` only."""

    def __init__(self) -> None:
        super().__init__()
        self.net = load_stlpips("vgg")

    def train(self, mode: bool = True) -> PerceptualLoss:
        return super().train(False)  # frozen statistics and no dropout, whatever the caller's mode

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return self.net(fake, real.detach()).mean()
