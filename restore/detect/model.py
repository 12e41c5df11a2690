"""The damage segmentation network: a small U-Net that sees every pixel of a full-size scan.

Why this shape: a hairline on a 6000 x 4000 scan is one pixel wide, so the detector must
run at the image's own resolution, yet a 12-megapixel scan should take about a second on
a laptop CPU. The network first folds each 4 x 4 block of pixels into channels
(space-to-depth, lossless, so the hairline survives) and does all its work at quarter
resolution and below; the head predicts one logit per original pixel and unfolds them
back (depth-to-space). The cost per pixel is a sixteenth of a full-resolution U-Net's.
The receptive field is about 280 pixels wide (140 on each side): enough to tell a scratch on
top of the picture from a power line inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class DetectorConfig:
    """Shape of the network; stored inside its weights file."""

    widths: tuple[int, ...] = (48, 64, 96)  # channels at 1/4, 1/8, 1/16 resolution
    fold: int = 4  # space-to-depth factor
    refine: int = 8  # channels of the full-resolution refinement (0: none)
    context: int = 0  # residual blocks of dilated convs at 1/16 resolution, after the encoder
    tophat: int = 0  # window of the top-hat cues fed beside the pixels (0: none); see ``tophat_cues``
    channel_cues: bool = False  # two more cues: each colour channel's top-hat (``channel_tophat_cues``)

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, data: dict) -> DetectorConfig:
        return cls(widths=tuple(data["widths"]), fold=int(data["fold"]), refine=int(data.get("refine", 0)),
                   context=int(data.get("context", 0)), tophat=int(data.get("tophat", 0)),
                   channel_cues=bool(data.get("channel_cues", False)))


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


CUES = 2  # white and black top-hat


def _dilate(x: torch.Tensor, window: int) -> torch.Tensor:
    """Grey dilation over a ``window`` x ``window`` square, rows then columns: maxima over runs
    of 2, 4, ... pixels, then two overlapping runs cover the window (3 maxima per pass for a
    window of 7 instead of 6; several times faster than ``max_pool2d`` on a CPU)."""
    pad = window // 2
    span = 1 << (window.bit_length() - 1)  # the largest power of two within the window
    for dim, padding in ((3, (pad, pad, 0, 0)), (2, (0, 0, pad, pad))):
        size = x.shape[dim]
        run = F.pad(x, padding, value=float("-inf"))  # run[i]: the max over [i, i + length)
        length = 1
        while length < span:
            n = run.shape[dim] - length
            run = torch.maximum(run.narrow(dim, 0, n), run.narrow(dim, length, n))
            length *= 2
        x = torch.maximum(run.narrow(dim, 0, size), run.narrow(dim, window - span, size))
    return x


def _tophats(planes: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(white, black) top-hat of each plane: what a ``window``-wide opening removes from bright
    structure, and what a closing fills into dark structure."""
    opened = _dilate(-_dilate(-planes, window), window)
    closed = -_dilate(-_dilate(planes, window), window)
    return planes - opened, closed - planes


def tophat_cues(image: torch.Tensor, window: int) -> torch.Tensor:
    """White and black top-hat of the image's luminance (N x 2 x H x W): what a ``window``-wide
    opening removes from bright structure and a closing fills into dark structure.

    Why: scratches, hairlines and specks are thin or small and either brighter or darker than
    their surroundings; these two classical cues light up exactly such structure, at full
    resolution and at any angle, so the network's few channels can go to telling damage from
    scene detail. Worked out in bfloat16 (as fine as 8-bit pixels, and twice as fast on a CPU).
    """
    # Channel slices, not mean(1): on a channels-last tile the reduction costs about 4x as much.
    grey = ((image[:, 0:1] + image[:, 1:2] + image[:, 2:3]).detach() / 3).to(torch.bfloat16).contiguous()
    return (torch.cat(_tophats(grey, window), 1) * 2.0).to(image.dtype)


def channel_tophat_cues(image: torch.Tensor, window: int) -> torch.Tensor:
    """The strongest white and black top-hat over the three colour channels (N x 2 x H x W).

    Why: the luminance cues miss a line as bright as what it crosses, such as a green scratch
    on a grey print (the preview found a 2 px green line on grey photos 21% of the time, a
    white one 92%; docs/experiments.md, 'coloured scratches'). Per channel, such a line is
    brighter in one channel or darker in another. On a grey image these equal the luminance cues.
    """
    white, black = _tophats(image[:, :3].detach().to(torch.bfloat16).contiguous(), window)
    return (torch.cat([white.amax(1, keepdim=True), black.amax(1, keepdim=True)], 1) * 2.0).to(image.dtype)


class ContextBlock(nn.Module):
    """Two dilated 3x3 convs added to their input. The second BatchNorm's scale starts at zero,
    so a new block passes its input through unchanged: a detector can be made deeper and keep
    what it has learnt (``grow``)."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, dilation=dilation),
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(channels),
        )
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class DamageNet(nn.Module):
    """RGB in [-1, 1] (N x 3 x H x W, H and W multiples of ``multiple``) to damage logits N x 1 x H x W."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__()
        self.config = config or DetectorConfig()
        w1, w2, w3 = self.config.widths
        fold = self.config.fold
        cues = CUES * (1 + self.config.channel_cues) if self.config.tophat else 0
        self.stem = nn.Sequential(_conv(3 * fold * fold + cues, w1), _conv(w1, w1))
        self.down1 = nn.Sequential(_conv(w1, w2, stride=2), _conv(w2, w2))
        self.down2 = nn.Sequential(_conv(w2, w3, stride=2), _conv(w3, w3, dilation=2),
                                   _conv(w3, w3, dilation=4))
        # Where the scene's content is told apart from damage on top of it: more depth here is
        # cheap (a 256th of the pixels) and widens the view to the whole training crop.
        self.context = nn.Sequential(*[ContextBlock(w3, (2, 4)[i % 2]) for i in range(self.config.context)])
        self.up2 = _conv(w3 + w2, w2)
        self.up1 = _conv(w2 + w1, w1)
        r = self.config.refine
        self.head = nn.Conv2d(w1, fold * fold * (r // 2 if r else 1), 1)
        if r:
            # At full resolution, next to the pixels themselves: sharp borders for hairlines.
            self.refine = nn.Sequential(nn.Conv2d(r // 2 + 3, r, 3, padding=1), nn.ReLU(inplace=True),
                                        nn.Conv2d(r, 1, 3, padding=1))

    @property
    def multiple(self) -> int:
        return self.config.fold * 4

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        fold = self.config.fold
        x = F.pixel_unshuffle(image, fold)
        if self.config.tophat:
            # Each block's strongest response: a hairline anywhere in a 4 x 4 block shows, and
            # each cue costs one channel (unfolding the cues like the pixels made a 12 MP scan
            # 1.2x slower).
            cues = tophat_cues(image, self.config.tophat)
            if self.config.channel_cues:
                cues = torch.cat([cues, channel_tophat_cues(image, self.config.tophat)], 1)
            x = torch.cat([x, F.max_pool2d(cues, fold)], 1)
        s1 = self.stem(x)
        s2 = self.down1(s1)
        s3 = self.context(self.down2(s2))
        y = self.up2(torch.cat([F.interpolate(s3, size=s2.shape[-2:], mode="nearest"), s2], 1))
        y = self.up1(torch.cat([F.interpolate(y, size=s1.shape[-2:], mode="nearest"), s1], 1))
        y = F.pixel_shuffle(self.head(y), self.config.fold)
        if self.config.refine:
            y = self.refine(torch.cat([y, image.to(y.dtype)], 1))
        return y


# The views a detector can average, in the order they are added: as is, transposed (rows and
# columns swapped), mirrored, upside down. The transpose is added first because it changes the
# most, turning horizontal structure vertical; on val it also removed more false alarms than
# the upside-down view (0.087% of clean val pixels flagged against 0.103%; docs/experiments.md,
# 'turned views').
VIEWS = ("as is", "transposed", "mirrored", "upside down")


def turn(x: torch.Tensor, view: int) -> torch.Tensor:
    """``x`` (... x H x W) seen in ``VIEWS[view]``; each view is its own inverse."""
    if view == 0:
        return x
    if view == 1:
        return x.transpose(-2, -1)
    if view == 2:
        return x.flip(-1)
    if view == 3:
        return x.flip(-2)
    raise ValueError(f"no view {view}; there are {len(VIEWS)}")


def average_views(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, views: int,
                  first: torch.Tensor | None = None) -> torch.Tensor:
    """``run(x)`` averaged over the first ``views`` of ``VIEWS``, each turned back (``first``:
    ``run(x)`` already computed).

    Why: the detector's confident false alarms on unseen scene content depend on the
    orientation it sees it in, while damage is found in any; averaging the views lowers false
    alarms far more than hits (docs/experiments.md, 'turned views'). A view costs nothing but a pass.
    """
    if not 1 <= views <= len(VIEWS):
        raise ValueError(f"views must be 1 to {len(VIEWS)}, not {views}")
    total = run(x) if first is None else first
    for view in range(1, views):
        total = total + turn(run(turn(x, view)), view)
    return total / views


def _skip_inputs(config: DetectorConfig) -> dict[str, tuple[int, int]]:
    """The convs that read a concatenation (by state-dict prefix): the sizes of their two input
    groups, upsampled features then skip. Every other conv reads one group."""
    w1, w2, w3 = config.widths
    return {"up2.0": (w3, w2), "up1.0": (w2, w1)}


def _widen(state: dict[str, torch.Tensor], old: DetectorConfig, new: DamageNet) -> dict[str, torch.Tensor]:
    """``state`` (of a detector shaped ``old``) inside ``new``'s wider tensors: each old weight at
    its old channels, the new channels' inputs as ``new`` initialised them, and every weight from
    a new channel into an old one at zero, so the old channels compute what they did."""
    wide = {k: v.clone() for k, v in new.state_dict().items()}
    old_skips, new_skips = _skip_inputs(old), _skip_inputs(new.config)
    for key, value in state.items():
        target = wide[key]
        n = value.shape[0] if value.dim() else 0
        if target.shape == value.shape or not value.dim():  # unchanged, or num_batches_tracked
            target.copy_(value)
        elif value.dim() == 1:  # BatchNorm's or a bias's old channels
            target[:n] = value
        else:  # a conv's weight: zero from new inputs into old outputs, then the old block(s)
            target[:n].zero_()
            prefix = key.rsplit(".", 1)[0]
            if prefix in old_skips:
                (up, skip), (new_up, _) = old_skips[prefix], new_skips[prefix]
                target[:n, :up] = value[:, :up]
                target[:n, new_up:new_up + skip] = value[:, up:]
            else:
                target[:n, : value.shape[1]] = value
    return wide


def grow(model: DamageNet, context: int, tophat: int | None = None,
         channel_cues: bool | None = None, widths: tuple[int, ...] | None = None) -> DamageNet:
    """A copy of ``model`` with ``context`` context blocks, top-hat cues of window ``tophat``,
    per-channel cues if ``channel_cues`` and ``widths`` channels per scale (None: as the model has
    them). Blocks it lacks start as identity, the cues' input weights at zero, and new channels
    feed the old ones through zero weights, so the grown network's output is the original's
    until training changes them."""
    if context < model.config.context:
        raise ValueError(f"the detector already has {model.config.context} context blocks; cannot shrink it")
    tophat = model.config.tophat if tophat is None else tophat
    if model.config.tophat and tophat != model.config.tophat:
        raise ValueError(f"the detector already has top-hat cues of window {model.config.tophat}")
    channel_cues = model.config.channel_cues if channel_cues is None else channel_cues
    if model.config.channel_cues and not channel_cues:
        raise ValueError("the detector already has per-channel cues")
    if channel_cues and not tophat:
        raise ValueError("per-channel cues need the top-hat cues' window")
    widths = model.config.widths if widths is None else tuple(widths)
    if len(widths) != 3 or any(w < v for w, v in zip(widths, model.config.widths, strict=True)):
        raise ValueError(f"widths must be three, none below the detector's {model.config.widths}")
    bigger = DamageNet(replace(model.config, context=context, tophat=tophat, channel_cues=channel_cues,
                               widths=widths))
    state = model.state_dict()
    added = bigger.stem[0][0].in_channels - model.stem[0][0].in_channels
    if added:  # the new cues' input channels come last, at zero weight
        old = state["stem.0.0.weight"]
        state["stem.0.0.weight"] = torch.cat([old, old.new_zeros(old.shape[0], added, *old.shape[2:])], 1)
    if widths != model.config.widths:
        narrow = replace(model.config, tophat=tophat, channel_cues=channel_cues)
        state = {k: v for k, v in _widen(state, narrow, bigger).items() if k in state}  # new blocks: below
    missing, unexpected = bigger.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("context.") for k in missing)
    bigger.threshold = getattr(model, "threshold", 0.5)
    return bigger.train(model.training)
