"""Exemplar stage: the photo's own patches supply a fill's texture; the network's fill only guides it.

Why: the generator fills wide holes with a soft blur (ST-LPIPS and KID lose to PatchMatch in
every class), while patch synthesis copies real texture but places it blindly. Here a
multi-scale EM patch synthesis (Wexler et al. 2007) copies patches from the known pixels of
the same window, and the network's fill enters only as a soft low-frequency constraint (as in
Zhang et al., "Inpainting at modern camera resolution by guided PatchMatch", ECCV 2022):

* coarsest level: exact (chunked) nearest-neighbour search against the network's fill, so the
  layout of the fill follows the network where it is sure of it;
* finer levels: the estimate is voted from the upsampled nearest-neighbour field, i.e. from
  real full-resolution pixels, never from the network's blur, so texture cannot go flat; the
  distance is SSD(estimate, source) + lambda * SSD(blurred guide, blurred source) plus a
  penalty on sources whose texture energy is far below that around the hole; the guide is
  blurred 1.5 px beside known pixels and 4 px deep inside wide holes (``deep_share``), where
  the network's fill is a smear whose layout only should lead;
* last, the network corrects rather than invents: half of its low frequencies (a 3 px blur of
  guide minus fill) are put back near known pixels, which recovered PSNR/SSIM in thin holes at
  little cost in ST-LPIPS (docs/experiments.md, "exemplar stage"), but not deep inside wide
  holes, where it put the smear back (experiments.md, "the guide by depth").

Measured on val (12 photos) against copying each match's centre pixel, the plain mean vote at
the end scored better on PSNR, SSIM and ST-LPIPS, and better than votes weighted by how well
each patch matched. Four EM iterations per fine level beat one on all four metrics in every
class (the field upsampled from the coarser level is far from converged), and 5x5 patches beat
7x7 on ST-LPIPS at lower cost (docs/experiments.md, "more EM iterations, smaller patches").

Everything is whole-tensor torch (gathers, jump-flood propagation, random search), batched
over windows of one shape, on CPU or CUDA alike. Only hole pixels are produced; the caller
composites them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.nn import functional as F

FILLS = ("smooth", "realistic")  # the network's fill as is; exemplar-led (this module)
UNMATCHED = -(1 << 20)  # a match field's value where no target is: far outside any window


@dataclass(frozen=True)
class ExemplarSettings:
    """How hard the synthesis searches and how strongly the guide and texture terms pull."""

    radius: int = 2  # patches are (2r + 1)^2, sampled every other pixel when matching
    guide_weight: float = 1.0  # lambda: blurred-guide SSD per patch sample
    guide_sigma: float = 1.5  # blur (pixels, at each level) that makes the guide low-frequency
    wide_sigma: float = 4.0  # > 0: deep in a hole, where its fill is a smear, the guide is blurred this much
    depth_sigma: float = 3.0  # "deep": few known pixels within about this many pixels (at each level)
    depth_known: float = 0.3  # the narrow blur holds where this share of that neighbourhood is known
    texture_weight: float = 16.0  # penalty on sources flatter than the hole's surroundings
    texture_keep: float = 0.7  # sources with at least this share of the expected energy go free
    coarsest: int = 3  # stop halving once the deepest hole pixel is this close to known ones
    min_side: int = 24  # or once the window's short side would fall below this
    max_levels: int = 4
    em_iters: tuple[int, int] = (2, 4)  # EM iterations at the coarsest level, at every finer one
    random_tries: int = 3  # random-search candidates per EM iteration
    steps: tuple[tuple[int, ...], tuple[int, ...]] = ((8, 4, 2, 1), (2, 1))  # jump-flood steps, ditto
    final_sigma: float | None = None  # last vote: None a plain mean, 0 the match's centre, > 0 Gaussian
    correct: float = 0.5  # share of the guide's low frequencies put back into the exemplar fill
    correct_sigma: float = 3.0  # what counts as low frequency there, in pixels
    correct_deep: float = 0.0  # share of that correction kept deep inside wide holes (``deep_share``)
    seed: int = 0


def _gauss(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of B x C x H x W, edges replicated."""
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    out = F.pad(image, (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    out = F.pad(out, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def _known_blur(image: torch.Tensor, known: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian mean of the known pixels only (hole pixels get their known neighbours' mean)."""
    weight = known.to(image.dtype)
    return _gauss(image * weight, sigma) / _gauss(weight, sigma).clamp(min=1e-6)


def _erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """``mask`` (B x 1 x H x W bool) shrunk by ``radius``; the picture's edge counts as outside."""
    return -F.max_pool2d(-F.pad(mask.float(), (radius,) * 4, value=0.0), 2 * radius + 1, 1) > 0.5


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    return F.max_pool2d(mask.float(), 2 * radius + 1, 1, radius) > 0.5


def _texture(image: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Texture energy (local RMS of the fine detail) and what the hole should have: that of its
    surroundings, spread over the hole by a wide known-only blur."""
    luma = image.mean(1, keepdim=True)
    detail = luma - _known_blur(luma, known, 1.0)
    energy = _known_blur(detail * detail, known, 2.0).clamp(min=0).sqrt()
    small_e = F.avg_pool2d(energy * known, 4, ceil_mode=True)
    small_k = F.avg_pool2d(known.float(), 4, ceil_mode=True)
    spread = _gauss(small_e, 4.0) / _gauss(small_k, 4.0).clamp(min=1e-6)
    expected = F.interpolate(spread, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return energy, expected


def deep_share(known: torch.Tensor, s: ExemplarSettings) -> torch.Tensor:
    """How deep in a hole each pixel is, 0 to 1: 0 where at least ``s.depth_known`` of the pixels
    within about ``s.depth_sigma`` are known (a scratch, a hole's rim), 1 where none are.

    Why: the network's fill is good beside known pixels and a smear deep in a wide hole, so its
    blurred guide should pin the layout there only loosely (a 3-5 px blur for every pixel helped
    wide holes and hurt thin ones, docs/experiments.md, "the guide by depth").
    """
    near = _gauss(known.float(), s.depth_sigma)
    return (1 - near / s.depth_known).clamp(0, 1)


class _Level:
    """One pyramid level of a batch of same-shape windows, flattened for gathers."""

    def __init__(self, image: torch.Tensor, known: torch.Tensor, guide: torch.Tensor, s: ExemplarSettings):
        self.b, _, self.h, self.w = image.shape
        self.r = r = s.radius
        self.pw = self.w + 2 * r
        self.plane = (self.h + 2 * r) * self.pw
        self.known = known  # B x 1 x H x W bool
        self.source = _erode(known, r)  # whole patch known and inside the picture
        self.source_flat = self.source.reshape(-1)
        self.hole = ~known
        self.target = _dilate(self.hole, r)  # every pixel whose patch touches the hole
        self.image = torch.where(known, image, guide)
        self.guide = torch.where(known, image, guide)
        self.flat_image = self._flat(self.image)
        energy, expected = _texture(image, known)
        scale = float(len(_offsets(r, 2)))
        weight = (s.guide_weight * scale) ** 0.5
        sigmas = [s.guide_sigma] + ([s.wide_sigma] if s.wide_sigma > 0 else [])
        blur_guides = [_gauss(self.guide, sigma) * weight for sigma in sigmas]
        blur_images = [_known_blur(image, known, sigma) * weight for sigma in sigmas]
        self.src_extra = torch.cat([*blur_images, energy], 1)
        self.tgt_extra = torch.cat([*blur_guides, expected * s.texture_keep], 1)
        self.guide_channels = 3 * len(sigmas)
        if len(sigmas) > 1:  # the share of the wide blur's term, per target
            self.tgt_extra = torch.cat([self.tgt_extra, deep_share(known, s)], 1)
        self.texture_weight = s.texture_weight * scale * 3
        tb, _, ty, tx = torch.nonzero(self.target, as_tuple=True)
        self.tb, self.ty, self.tx = tb, ty, tx
        self.t_base = self._base(tb, ty, tx)
        sb, _, sy, sx = torch.nonzero(self.source, as_tuple=True)
        self.sb, self.sy, self.sx = sb, sy, sx
        counts = torch.bincount(sb, minlength=self.b)
        self.s_start = torch.cumsum(counts, 0) - counts
        self.s_count = counts
        # Per-pixel extras, flattened unpadded: B*H*W x C
        self.src_extra_flat = self.src_extra.permute(0, 2, 3, 1).reshape(-1, self.src_extra.shape[1])
        self.tgt_extra_t = self.tgt_extra.permute(0, 2, 3, 1)[tb, ty, tx]
        # Patch samples (every other pixel) as offsets in the padded plane, and every position's
        # samples and extras in one row: candidates are costed by gathering their patches, and
        # one contiguous row per candidate instead of K three-float rows made val's thick holes
        # 15-27% faster on one core (the gathers had been a third of the time), same fills.
        self.offs = torch.tensor([dy * self.pw + dx for dy, dx in _offsets(r, 2)], device=image.device)
        self.width = 3 * len(self.offs)  # the patch part of a row
        base = self._base(*torch.meshgrid(torch.arange(self.b), torch.arange(self.h), torch.arange(self.w),
                                          indexing="ij")).to(image.device).reshape(-1)
        patches = self.flat_image.index_select(0, (base[:, None] + self.offs[None, :]).view(-1))
        self.src_rows = torch.cat([patches.view(len(base), self.width), self.src_extra_flat], 1)

    def _flat(self, image: torch.Tensor) -> torch.Tensor:
        r = self.r
        return F.pad(image, (r, r, r, r), mode="replicate").permute(0, 2, 3, 1).reshape(-1, image.shape[1])

    def _base(self, b: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return b * self.plane + (y + self.r) * self.pw + (x + self.r)

    def valid(self, b: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        inside = (y >= 0) & (y < self.h) & (x >= 0) & (x < self.w)
        flat = (b * self.h + y.clamp(0, self.h - 1)) * self.w + x.clamp(0, self.w - 1)
        return inside & self.source_flat.index_select(0, flat)

    def random_sources(self, draws: _Draws, n_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A uniformly random valid source of image ``n_b`` (sorted) for each entry."""
        u = draws.uniform(n_b)
        pick = self.s_start[n_b] + torch.minimum((u * self.s_count[n_b]).long(), self.s_count[n_b] - 1)
        return self.sy[pick], self.sx[pick]


def _offsets(radius: int, step: int) -> list[tuple[int, int]]:
    axis = list(range(-radius, radius + 1, step))
    if axis[-1] != radius:
        axis = [-radius + i * step for i in range(len(axis))]
    return [(dy, dx) for dy in axis for dx in axis]


class _Draws:
    """Random numbers drawn per window, each window from its own generator seeded alike.

    Why: a window's fill must not depend on which other windows share its batch (the batch is
    whatever shapes a call happened to group), so ``restore images`` gives a photo the same fill
    whatever ``--batch-size`` or the photos beside it.
    """

    def __init__(self, windows: int, seed: int, device: torch.device) -> None:
        self.generators = [torch.Generator().manual_seed(seed) for _ in range(windows)]
        self.device = device

    def _counts(self, n_b: torch.Tensor) -> list[int]:
        return torch.bincount(n_b, minlength=len(self.generators)).tolist()

    def uniform(self, n_b: torch.Tensor) -> torch.Tensor:
        """One U[0, 1) per entry; ``n_b`` (sorted) says whose window each entry is."""
        parts = [torch.rand(c, generator=g) for c, g in zip(self._counts(n_b), self.generators, strict=True)]
        return torch.cat(parts).to(self.device)

    def integers(self, low: int, high: int, rows: int, n_b: torch.Tensor) -> torch.Tensor:
        """``rows`` x entries integers in [low, high), per window as ``uniform``."""
        parts = [torch.randint(low, high, (rows, c), generator=g)
                 for c, g in zip(self._counts(n_b), self.generators, strict=True)]
        return torch.cat(parts, 1).to(self.device)

    def permutation(self, window: int, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=self.generators[window])


class _Synth:
    """EM patch synthesis over a pyramid of one batch of windows."""

    def __init__(self, s: ExemplarSettings, device: torch.device, windows: int):
        self.s = s
        self.device = device
        self.draws = _Draws(windows, s.seed, device)

    def _target_rows(self, lv: _Level, estimate_flat: torch.Tensor) -> torch.Tensor:
        """Each target's patch samples of the current estimate and its extras in one row, laid
        out as ``lv.src_rows``, so that costing a candidate gathers one row per side."""
        index = (lv.t_base[:, None] + lv.offs[None, :]).view(-1)
        patches = estimate_flat.index_select(0, index).view(len(lv.t_base), lv.width)
        return torch.cat([patches, lv.tgt_extra_t], 1)

    def _cost(self, lv: _Level, tgt: torch.Tensor, b: torch.Tensor, y: torch.Tensor, x: torch.Tensor
              ) -> torch.Tensor:
        """Cost of copying source (``y``, ``x``) into the targets whose rows (``_target_rows``)
        are ``tgt``; ``b`` says whose window each is."""
        ok = lv.valid(b, y, x)
        position = (b * lv.h + y.clamp(0, lv.h - 1)) * lv.w + x.clamp(0, lv.w - 1)
        src = lv.src_rows.index_select(0, position)
        width = lv.width
        cost = (tgt[:, :width] - src[:, :width]).square().sum(1)
        tgt_extra, extra = tgt[:, width:], src[:, width:]
        g = lv.guide_channels
        diff = (tgt_extra[:, :g] - extra[:, :g]).square()
        guide = diff.sum(1)
        if g > 3:  # deep targets compare the wide blurs instead of the narrow ones
            guide = torch.lerp(diff[:, :3].sum(1), diff[:, 3:6].sum(1), tgt_extra[:, 7])
        flat = (tgt_extra[:, g] - extra[:, g]).clamp(min=0).square() * lv.texture_weight
        cost = cost + guide + flat
        return torch.where(ok, cost, torch.full_like(cost, float("inf")))

    def _exact(self, lv: _Level, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exhaustive search per window (used at the coarsest level, where it is cheap); ``tgt``:
        the targets' rows (``_target_rows``)."""
        ny = torch.zeros_like(lv.ty)
        nx = torch.zeros_like(lv.tx)
        for b in range(lv.b):
            t_idx = torch.nonzero(lv.tb == b).squeeze(1)
            s_idx = torch.nonzero(lv.sb == b).squeeze(1)
            if len(t_idx) == 0 or len(s_idx) == 0:
                continue
            if len(s_idx) > 8192:  # a huge window: a random subset is plenty for a coarse layout
                keep = self.draws.permutation(b, len(s_idx))[:8192].to(s_idx.device)
                s_idx = s_idx[keep]
            sy, sx, sb = lv.sy[s_idx], lv.sx[s_idx], lv.sb[s_idx]
            rows = lv.src_rows[(sb * lv.h + sy) * lv.w + sx]
            extra = rows[:, lv.width:]
            g = lv.guide_channels
            src = rows[:, : lv.width + 3]  # patch samples and the narrow guide blur
            src_energy = extra[:, g]
            for start in range(0, len(t_idx), 2048):
                chunk = t_idx[start : start + 2048]
                rows_t = tgt[chunk]
                tgt_extra = rows_t[:, lv.width:]
                dist = torch.cdist(rows_t[:, : lv.width + 3], src).square()
                if g > 3:  # deep targets compare the wide blurs instead of the narrow ones
                    narrow = torch.cdist(tgt_extra[:, :3], extra[:, :3]).square()
                    wide = torch.cdist(tgt_extra[:, 3:6], extra[:, 3:6]).square()
                    dist = dist + tgt_extra[:, 7:8] * (wide - narrow)
                dist = dist + (tgt_extra[:, g : g + 1] - src_energy[None, :]).clamp(min=0).square() \
                    * lv.texture_weight
                best = dist.argmin(1)
                ny[chunk], nx[chunk] = sy[best], sx[best]
        return ny, nx

    def _search(self, lv: _Level, estimate_flat: torch.Tensor, ny: torch.Tensor, nx: torch.Tensor,
                steps: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """One round of jump-flood propagation and random search, every target at once."""
        tgt = self._target_rows(lv, estimate_flat)
        tb, ty, tx = lv.tb, lv.ty, lv.tx
        best = self._cost(lv, tgt, tb, ny, nx)
        field_y = torch.full((lv.b, lv.h, lv.w), UNMATCHED, dtype=torch.long, device=self.device)
        field_x = field_y.clone()

        ny, nx = ny.clone(), nx.clone()

        def consider(cy: torch.Tensor, cx: torch.Tensor) -> None:
            # Only candidates that differ from the current match and come from a matched
            # neighbour are costed: in a coherent field most propagated ones are the match itself.
            rows = torch.nonzero(((cy != ny) | (cx != nx)) & (cy > UNMATCHED // 2)).squeeze(1)
            if not len(rows):
                return
            cy, cx = cy.index_select(0, rows), cx.index_select(0, rows)
            cost = self._cost(lv, tgt.index_select(0, rows), tb.index_select(0, rows), cy, cx)
            better = cost < best.index_select(0, rows)
            win = rows[better]
            ny[win], nx[win], best[win] = cy[better], cx[better], cost[better]

        for step in steps:
            field_y[tb, ty, tx], field_x[tb, ty, tx] = ny, nx
            for dy, dx in ((0, step), (0, -step), (step, 0), (-step, 0)):
                qy, qx = (ty + dy).clamp(0, lv.h - 1), (tx + dx).clamp(0, lv.w - 1)
                consider(field_y[tb, qy, qx] - (qy - ty), field_x[tb, qy, qx] - (qx - tx))
        radius = max(lv.h, lv.w) // 2
        for _ in range(self.s.random_tries):
            if radius < 1:
                break
            jitter = self.draws.integers(-radius, radius + 1, 2, tb)
            consider(ny + jitter[0], nx + jitter[1])
            radius //= 4
        cy, cx = lv.random_sources(self.draws, tb)
        consider(cy, cx)
        return ny, nx

    def _vote(self, lv: _Level, ny: torch.Tensor, nx: torch.Tensor, sigma: float | None = None
              ) -> torch.Tensor:
        """New estimate: each hole pixel the mean of what the patches covering it copy there
        (weighted by a Gaussian of ``sigma`` about the patch centre; 0: the centre's pixel only)."""
        field = torch.full((lv.b * lv.h * lv.w,), -1, dtype=torch.long, device=self.device)
        field[(lv.tb * lv.h + lv.ty) * lv.w + lv.tx] = lv._base(lv.tb, ny, nx)
        field = F.pad(field.view(lv.b, lv.h, lv.w), (lv.r,) * 4, value=-1).view(-1)
        hb, _, hy, hx = torch.nonzero(lv.hole, as_tuple=True)
        where = lv._base(hb, hy, hx)
        total = torch.zeros(len(hb), 3, device=self.device)
        count = torch.zeros(len(hb), 1, device=self.device)
        for dy, dx in ([(0, 0)] if sigma == 0 else _offsets(lv.r, 1)):
            shift = dy * lv.pw + dx
            source = field.index_select(0, where - shift)  # base of the match of the patch at p - d
            ok = (source >= 0).float()[:, None]
            if sigma:
                ok = ok * float(np.exp(-(dy * dy + dx * dx) / (2 * sigma * sigma)))
            value = lv.flat_image.index_select(0, torch.where(source >= 0, source + shift, 0))
            total += value * ok
            count += ok
        estimate = lv.image.clone()
        old = estimate[hb, :, hy, hx]
        estimate[hb, :, hy, hx] = torch.where(count > 0, total / count.clamp(min=1e-6), old)
        return estimate

    def run(self, image: torch.Tensor, hole: torch.Tensor, guide: torch.Tensor, levels: int) -> torch.Tensor:
        """Synthesise over ``levels`` pyramid levels (``plan_levels``: the same for the whole batch)."""
        s = self.s
        known = ~hole
        pyramid = [(image, known, guide)]
        while len(pyramid) < levels:
            img, kn, gd = pyramid[-1]
            w = F.avg_pool2d(kn.float(), 2, ceil_mode=True)
            img = F.avg_pool2d(img * kn, 2, ceil_mode=True) / w.clamp(min=1e-6)
            pyramid.append((img, w > 0.999, F.avg_pool2d(gd, 2, ceil_mode=True)))
        ny = nx = None
        prev: _Level | None = None
        for index in range(len(pyramid) - 1, -1, -1):
            lv = _Level(*pyramid[index], s)
            if prev is None:
                ny, nx = self._exact(lv, self._target_rows(lv, lv.flat_image))
                iters = s.em_iters[0]
                estimate = self._vote(lv, ny, nx)
            else:
                ny, nx = self._upsample(prev, lv, ny, nx)
                iters = s.em_iters[1]
                estimate = self._vote(lv, ny, nx)
            steps = s.steps[0] if prev is None else s.steps[1]
            for _ in range(iters):
                ny, nx = self._search(lv, lv._flat(estimate), ny, nx, steps)
                estimate = self._vote(lv, ny, nx)
            prev = lv
        assert prev is not None and ny is not None and nx is not None
        out = self._vote(prev, ny, nx, s.final_sigma)
        if s.correct > 0:  # the network corrects: its low frequencies, the exemplar's texture
            weight = s.correct
            if s.correct_deep != 1.0:
                weight = s.correct * (1 - (1 - s.correct_deep) * deep_share(known, s))
            out = out + weight * _gauss(torch.where(hole, guide - out, 0.0), s.correct_sigma)
        return out

    def _upsample(self, coarse: _Level, fine: _Level, ny: torch.Tensor, nx: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        field_y = torch.full((coarse.b, coarse.h, coarse.w), UNMATCHED, dtype=torch.long, device=self.device)
        field_x = field_y.clone()
        field_y[coarse.tb, coarse.ty, coarse.tx], field_x[coarse.tb, coarse.ty, coarse.tx] = ny, nx
        cy, cx = (fine.ty // 2).clamp(max=coarse.h - 1), (fine.tx // 2).clamp(max=coarse.w - 1)
        uy = field_y[fine.tb, cy, cx] * 2 + fine.ty % 2
        ux = field_x[fine.tb, cy, cx] * 2 + fine.tx % 2
        ry, rx = fine.random_sources(self.draws, fine.tb)
        ok = fine.valid(fine.tb, uy, ux)
        return torch.where(ok, uy, ry), torch.where(ok, ux, rx)


def plan_levels(hole: np.ndarray, s: ExemplarSettings) -> int:
    """Pyramid levels for one window: halve until its deepest hole pixel is ``s.coarsest`` from a
    known one, then back off while the coarsest level has no complete known patch to copy.

    0 when even the full resolution has none: the window keeps the network's fill. Planned per
    window because one wide hole must not send (or, with no source, stop) a whole batch.
    """
    if not hole.any():
        return 0
    depth = float(cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3).max())
    known = torch.from_numpy(~hole)[None, None]
    masks = [known]
    while (len(masks) < s.max_levels and depth > s.coarsest
           and min(masks[-1].shape[-2:]) // 2 >= s.min_side):
        masks.append(F.avg_pool2d(masks[-1].float(), 2, ceil_mode=True) > 0.999)
        depth /= 2
    while masks and not _erode(masks[-1], s.radius).any():
        masks.pop()
    return len(masks)


def _batch(arrays: list[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().to(device)


def synthesize(images: list[np.ndarray], holes: list[np.ndarray], guides: list[np.ndarray],
               settings: ExemplarSettings | None = None, device: torch.device | str = "cpu"
               ) -> list[np.ndarray]:
    """Exemplar fills of float RGB windows (H x W x 3 in [0, 1]); windows of one shape share a batch.

    ``guides``: the network's fills (same shapes). Returns copies of ``guides`` whose hole pixels
    are synthesised from the window's own known patches; pixels outside ``holes`` are the guide's.
    """
    settings = settings or ExemplarSettings()
    device = torch.device(device)
    results: list[np.ndarray] = [np.asarray(g, dtype=np.float32) for g in guides]
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, image in enumerate(images):
        levels = plan_levels(np.asarray(holes[i], dtype=bool), settings)
        if levels:
            groups.setdefault((*image.shape[:2], levels), []).append(i)
    for (_, _, levels), indices in groups.items():
        image = _batch([images[i] for i in indices], device)
        hole = torch.from_numpy(np.stack([holes[i] for i in indices]))[:, None].bool().to(device)
        guide = _batch([guides[i] for i in indices], device)
        with torch.inference_mode():
            out = _Synth(settings, device, len(indices)).run(image, hole, guide, levels)
            out = torch.where(hole, out, guide).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        for j, i in enumerate(indices):
            results[i] = out[j]
    return results
