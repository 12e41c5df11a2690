"""LaMa-style inpainting generator built from fast Fourier convolutions (FFC).

Why FFC: a spectral branch sees the whole window in one layer, so a small network can
continue repeated structure (brick, railings, foliage) across a wide hole, and a model
trained on 256-pixel crops still works on 512-pixel windows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from restore.model.prefill import push_pull


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of the generator; stored inside every checkpoint so weights load without guessing."""

    base_channels: int = 32
    downsamples: int = 3
    blocks: int = 6
    global_ratio: float = 0.75
    skips: bool = True  # add encoder features to the decoder at each scale
    prefill: bool = True  # start from a push-pull fill of the hole and predict a correction to it
    # A refiner: start from a fill given with the input (the exemplar stage's, restore/inpaint/
    # exemplar.py) and predict a correction to it; the push-pull fill is then not used.
    refine: bool = False
    # A refiner's correction averaged over blocks of this many pixels and upsampled smoothly (0:
    # off): it can recolour the given fill and shift its tone, not average its texture away,
    # which is where every CPU-trained refiner drifted (docs/experiments.md, "a refiner trained
    # on exemplar fills").
    refine_lowpass: int = 0
    # Border padding of the convolutions. Zero padding lets oneDNN pad inside the convolution;
    # reflect padding (LaMa's choice, and our models' before this option) made a CPU pass at
    # 512² 1.7x slower, copying every activation.
    padding: str = "zeros"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, config: dict) -> GeneratorConfig:
        """Read a stored config; keys missing from older files take the value those files meant."""
        return cls(**{**LEGACY_CONFIG, **config})


# What a stored config without the key was trained with.
LEGACY_CONFIG = {"prefill": False, "padding": "reflect"}


class FourierUnit(nn.Module):
    """1x1 convolution in the frequency domain: a global receptive field in one layer."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels * 2, channels * 2, 1, bias=False)
        self.norm = nn.BatchNorm2d(channels * 2)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        height, width = x.shape[-2:]
        # FFTs need float32 on CPU (no bf16) and are more accurate than fp16 on GPU.
        with torch.autocast(device_type=x.device.type, enabled=False):
            spec = torch.fft.rfft2(x.float(), norm="ortho")
            stacked = torch.cat([spec.real, spec.imag], dim=1)
            stacked = self.act(self.norm(self.conv(stacked.to(self.conv.weight.dtype))))
            real, imag = stacked.float().chunk(2, dim=1)
            out = torch.fft.irfft2(torch.complex(real, imag), s=(height, width), norm="ortho")
        return out.to(dtype)


class SpectralTransform(nn.Module):
    """Global branch: squeeze channels, FourierUnit, expand, with a residual inside."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = out_ch // 2
        self.reduce = nn.Sequential(
            nn.Conv2d(in_ch, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True)
        )
        self.fourier = FourierUnit(mid)
        self.expand = nn.Conv2d(mid, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.expand(x + self.fourier(x))


class FFC(nn.Module):
    """Conv with a local (3x3) and a global (spectral) channel group exchanging information."""

    def __init__(self, channels: int, ratio: float, padding: str) -> None:
        super().__init__()
        self.global_ch = int(channels * ratio)
        self.local_ch = channels - self.global_ch
        lc, gc = self.local_ch, self.global_ch
        pad = dict(padding=1, padding_mode=padding, bias=False)
        self.l2l = nn.Conv2d(lc, lc, 3, **pad)
        self.l2g = nn.Conv2d(lc, gc, 3, **pad)
        self.g2l = nn.Conv2d(gc, lc, 3, **pad)
        self.g2g = SpectralTransform(gc, gc)
        self.norm_l = nn.BatchNorm2d(lc)
        self.norm_g = nn.BatchNorm2d(gc)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xl, xg = x[:, : self.local_ch], x[:, self.local_ch :]
        out_l = self.act(self.norm_l(self.l2l(xl) + self.g2l(xg)))
        out_g = self.act(self.norm_g(self.l2g(xl) + self.g2g(xg)))
        return torch.cat([out_l, out_g], dim=1)


class FFCResBlock(nn.Module):
    def __init__(self, channels: int, ratio: float, padding: str) -> None:
        super().__init__()
        self.ffc1 = FFC(channels, ratio, padding)
        self.ffc2 = FFC(channels, ratio, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ffc2(self.ffc1(x))


def _conv_block(in_ch: int, out_ch: int, kernel: int, padding: str, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, padding_mode=padding, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def _up_block(in_ch: int, out_ch: int, padding: str) -> nn.Sequential:
    # Resize-then-conv instead of transposed conv: no checkerboard artefacts in flat skies.
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), _conv_block(in_ch, out_ch, 3, padding))


class InpaintGenerator(nn.Module):
    """Maps (masked RGB in [-1, 1], mask) to a full RGB image in [-1, 1].

    Window sides must be multiples of ``2 ** downsamples``; the engine pads to that.
    """

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = config or GeneratorConfig()
        c, pad = self.config.base_channels, self.config.padding
        layers: list[nn.Module] = [_conv_block(4, c, 7, pad)]
        for i in range(self.config.downsamples):
            layers.append(_conv_block(c * 2**i, c * 2 ** (i + 1), 3, pad, stride=2))
        deep = c * 2**self.config.downsamples
        self.encoder = nn.ModuleList(layers)
        self.body = nn.Sequential(
            *[FFCResBlock(deep, self.config.global_ratio, pad) for _ in range(self.config.blocks)]
        )
        ups: list[nn.Module] = []
        for i in reversed(range(self.config.downsamples)):
            ups.append(_up_block(c * 2 ** (i + 1), c * 2**i, pad))
        self.decoder = nn.ModuleList(ups)
        self.head = nn.Conv2d(c, 3, 7, padding=3, padding_mode=pad)

    @property
    def multiple(self) -> int:
        return 2**self.config.downsamples

    def forward(self, image: torch.Tensor, mask: torch.Tensor,
                guess: torch.Tensor | None = None) -> torch.Tensor:
        """``image``: B x 3 x H x W in [-1, 1], hole content ignored; ``mask``: B x 1 x H x W, 1 = hole;
        ``guess``: a refiner's first fill (same shape as ``image``; only its hole pixels are read)."""
        if self.config.refine:
            if guess is None:
                raise ValueError("a refiner corrects a given fill: pass guess")
            base = torch.lerp(image, guess.to(image.dtype), mask)
        elif self.config.prefill:
            base = push_pull(image, 1 - mask)
        else:
            base = image * (1 - mask)
        x = torch.cat([base, mask], dim=1)
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        x = self.body(x)
        # Skips let the known context and the hole border reach the output at full resolution
        # without passing the 1/8 bottleneck: far faster to train on CPUs, sharper edges.
        for up, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            x = up(x)
            if self.config.skips:
                x = x + skip
        if not (self.config.prefill or self.config.refine):
            return torch.tanh(self.head(x))
        delta = self.head(x)
        if self.config.refine and self.config.refine_lowpass > 1:
            coarse = nn.functional.avg_pool2d(delta, self.config.refine_lowpass, ceil_mode=True)
            delta = nn.functional.interpolate(coarse, size=delta.shape[-2:], mode="bilinear",
                                              align_corners=False)
        return (base + delta).clamp(-1, 1)


def reshaped(model: InpaintGenerator, **changes: object) -> InpaintGenerator:
    """The same weights in a model whose config differs only in options that keep every
    parameter's shape (``padding``, ``prefill``): for fine-tuning into the new setting."""
    changed = InpaintGenerator(GeneratorConfig(**{**model.config.to_dict(), **changes}))
    changed.load_state_dict(model.state_dict())
    return changed.train(model.training)


def as_refiner(model: InpaintGenerator, lowpass: int = 0) -> InpaintGenerator:
    """The same trained trunk, switched to correcting a given fill (the exemplar stage's); its head
    starts at zero, so the refiner's first output is that fill itself, texture and all.
    ``lowpass``: GeneratorConfig.refine_lowpass."""
    refiner = reshaped(model, refine=True, refine_lowpass=lowpass)
    nn.init.zeros_(refiner.head.weight)
    nn.init.zeros_(refiner.head.bias)
    return refiner.train(model.training)


def with_prefill(model: InpaintGenerator) -> InpaintGenerator:
    """The same trained trunk, switched to correcting a push-pull fill; its head starts at zero,
    so the upgraded model's first output is the push-pull fill itself."""
    upgraded = reshaped(model, prefill=True)
    nn.init.zeros_(upgraded.head.weight)
    nn.init.zeros_(upgraded.head.bias)
    return upgraded.train(model.training)
