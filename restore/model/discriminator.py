"""PatchGAN discriminator: one realism score per ~70-pixel patch, plus its features.

The features are returned so the generator can be trained with feature matching, which
steadies a small GAN far more than the adversarial term alone.
"""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    def __init__(self, base_channels: int = 32, layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, base_channels, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))
        ]
        ch = base_channels
        for i in range(1, layers + 1):
            nxt = min(base_channels * 2**i, 256)
            stride = 2 if i < layers else 1
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(ch, nxt, 4, stride, 1),
                    nn.GroupNorm(8, nxt),
                    nn.LeakyReLU(0.2, inplace=True),
                )
            )
            ch = nxt
        self.blocks = nn.ModuleList(blocks)
        self.score = nn.Conv2d(ch, 1, 4, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return self.score(x), features
