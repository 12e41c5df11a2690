"""The inpainting engine: repairs the holes of many images with one model, in batches.

``Inpainter.repair`` takes images (uint8 or uint16, 1-4 channels) and boolean masks and
returns copies in which only masked pixels changed. Work happens in three steps, each
batched across all images given:

1. coarse: holes wider than a tile are filled first at reduced scale, so their middle has
   something plausible to continue from;
2. fine: windows and tiles at full resolution (see ``windows``), blended with feathering;
   small spots get small windows of their own, many per model call; holes at most
   ``classical_depth`` px deep (dust, hairlines) get OpenCV's fill instead, no window at all;
3. grain: the photo's own fine texture is carried into the rim of each fill (see ``grain``);
4. composite: hole pixels are replaced (their chroma kept within the photo's own range),
   everything else is the input, bit for bit.

Memory stays near the size of the files: windows are cut from the uint8/uint16 pixels as they
are needed, fills are kept only for hole pixels, and grain and composite work a window at a
time; the one full-size copy is the output. Only a region the coarse pass fills (a hole wider
than a tile) is held as float colour whole.

The object holds only the model and its settings; no per-image state survives a call.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from restore.inpaint.composite import chroma_range, composite, to_colour
from restore.inpaint.device import cpu_has_fast_bf16, pick_device
from restore.inpaint.exemplar import FILLS, synthesize
from restore.inpaint.grain import GRAIN_STRENGTH, grain_core, grain_tiles
from restore.inpaint.windows import (
    CLASSICAL_DEPTH,
    Box,
    deep_hole,
    feather,
    plan_regions,
    plan_spots,
    split_tiles,
)
from restore.model.prefill import push_pull
from restore.model.weights import default_refiner_path, load_generator

SMALL_CALL = 4 * 128 * 128  # pixels per model call per --batch-size for windows under 128²
CHUNK_PIXELS = 1 << 21  # window pixels cut (as float) at a time in the fine pass (24 MB)
# ... and synthesised at a time by the exemplar stage, which holds ~140 bytes per window pixel
# (each pixel's patch samples in one row, exemplar.py); 1 << 21 took a 24 MP scan's long
# scratches from 1.7 to 2.1 GB.
EXEMPLAR_CHUNK_PIXELS = 1 << 20
THIN_CONTEXT = 16  # px of context, at least, around thin damage in small tiles (``_tiles``) ...
THIN_CONTEXT_PER_DEPTH = 6  # ... and this many times the hole's local depth (at most min_context)
LOCAL_REACH = 4  # px: a hole pixel's tile side comes from the hole's width this close to it
EXEMPLAR_MIN_DEPTH = 2.5  # px: in regions over one tile, thinner holes keep the network's fill
CLASSICAL_RADIUS = 5  # the classical fill's neighbourhood, px
CLASSICAL_METHOD = cv2.INPAINT_NS
CLASSICAL_CORE = 256  # classical fills are cut in cores of this side ...
CLASSICAL_MARGIN = 16  # ... with this much context around each


@dataclass
class _Region:
    """One region (or one spot's window) of one image being repaired; lives only during a
    ``repair`` call. Holds views of the input, not float copies of it."""

    image: int
    box: Box
    picture: tuple[int, int]  # the whole image's height and width
    pixels: np.ndarray  # the region's file pixels (a view)
    hole: np.ndarray  # bool, every damaged pixel in the region: unknown to the model and to grain
    own: np.ndarray  # the pixels this region writes; a spot's window also holds others' holes
    fine_hole: np.ndarray  # the part of ``hole`` the full-resolution pass fills
    spot: bool = False
    thin: float = 0.0  # holes at most this deep here get the classical fill (0: none do)
    colour: np.ndarray | None = None  # float RGB with the coarse fill in; only where it ran
    flat: np.ndarray | None = None  # raster indices of the hole pixels within the region
    values: np.ndarray | None = None  # float RGB fill of each of those pixels
    tiles: list[tuple[Box, int, np.ndarray | None]] | None = None  # the fine pass's (``_tiles``)
    classical: np.ndarray | None = None  # hole pixels filled classically, not by the network

    def crop(self, tile: Box) -> np.ndarray:
        """Float RGB of ``tile`` (region coordinates), the coarse fill in where there is one."""
        return self.colour[tile.slices] if self.colour is not None else to_colour(self.pixels[tile.slices])

    def positions(self, tile: Box, where: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ys, xs) of the ``where`` pixels in ``tile`` (tile coordinates) and their index in ``flat``."""
        ys, xs = np.nonzero(where)
        flat = (ys + tile.y0) * self.box.width + (xs + tile.x0)
        return ys, xs, np.searchsorted(self.flat, flat)

    def filled(self, window: Box) -> np.ndarray:
        """Float RGB of ``window`` with the fill in every hole pixel."""
        colour = to_colour(self.pixels[window.slices])
        ys, xs, index = self.positions(window, self.hole[window.slices])
        colour[ys, xs] = self.values[index]
        return colour


def _written(region: _Region, tile: Box, writes: np.ndarray | None) -> np.ndarray:
    """The hole pixels of ``tile`` whose fill it gives (``writes``: its group's, None: all)."""
    where = region.fine_hole[tile.slices]
    return where if writes is None else where & writes


def _chunks(tiles: list[Box], size: int = CHUNK_PIXELS) -> Iterator[list[int]]:
    """Indices of ``tiles`` in chunks of about ``size`` pixels, ordered by shape so that windows
    of one shape meet in one model call (or one synthesis batch)."""
    order = sorted(range(len(tiles)), key=lambda i: (tiles[i].height, tiles[i].width))
    start = 0
    while start < len(order):
        stop, pixels = start, 0
        while stop < len(order) and (stop == start or pixels < size):
            pixels += tiles[order[stop]].height * tiles[order[stop]].width
            stop += 1
        yield order[start:stop]
        start = stop


def _wider_than(hole: np.ndarray, tile: Box, depth: float) -> np.ndarray:
    """The hole pixels of ``tile`` where the hole is deeper than ``depth`` px within
    ``LOCAL_REACH`` of them (worked on the tile and a margin: never a float copy of a scan)."""
    margin = int(depth) + LOCAL_REACH + 2
    y0, x0 = max(0, tile.y0 - margin), max(0, tile.x0 - margin)
    part = np.ascontiguousarray(hole[y0:tile.y1 + margin, x0:tile.x1 + margin])
    local = cv2.distanceTransform(part.view(np.uint8), cv2.DIST_L2, 3)
    cv2.dilate(local, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * LOCAL_REACH + 1,) * 2), dst=local)
    inner = (slice(tile.y0 - y0, tile.y1 - y0), slice(tile.x0 - x0, tile.x1 - x0))
    return part[inner] & (local[inner] > depth)


def classical_fill(pixels: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV's fill (``CLASSICAL_METHOD``) of ``hole`` in file pixels (any bit depth, 1-4
    channels), as float RGB."""
    source = (pixels[..., :1] if pixels.shape[-1] in (1, 2) else pixels[..., :3]).copy()
    source[hole] = 0  # OpenCV's Telea read hole pixels at a crop's top and left edges
    mask = hole.view(np.uint8) if hole.dtype == bool else hole.astype(np.uint8)
    if source.dtype == np.uint8 and source.shape[-1] == 3:
        out = cv2.inpaint(np.ascontiguousarray(source), mask, CLASSICAL_RADIUS, CLASSICAL_METHOD)
    else:  # 16-bit and grey: OpenCV takes these one channel at a time
        out = np.stack([cv2.inpaint(np.ascontiguousarray(source[..., c]), mask, CLASSICAL_RADIUS,
                                    CLASSICAL_METHOD) for c in range(source.shape[-1])], axis=-1)
    return to_colour(out)


def _precision(device: torch.device, precision: str) -> torch.dtype:
    if precision == "auto":
        if device.type in {"cuda", "mps"}:
            return torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def _at_border(region: _Region, tile: Box) -> tuple[bool, bool, bool, bool]:
    """Whether ``tile`` (in ``region``'s coordinates) reaches the picture's top, bottom, left, right."""
    box, (height, width) = region.box, region.picture
    return (box.y0 + tile.y0 == 0, box.y0 + tile.y1 == height,
            box.x0 + tile.x0 == 0, box.x0 + tile.x1 == width)


def _border_pad(hole: np.ndarray, sides: tuple[bool, bool, bool, bool], pad: int
                ) -> tuple[int, int, int, int]:
    """Rows/columns to mirror beyond each picture border (top, bottom, left, right) that
    narrow damage comes within ``2 * pad`` px of.

    Why: beyond a crop's edge the network sees zero padding. Inside the picture a crop's edge
    has context between it and the hole; at the picture's own border a stroke meets the
    padding head-on, and in dark flat areas the model drew dark blobs with tinted rims there
    (docs/MODEL.md, "Known failure cases"); mirrored, the stroke has context on both sides.
    A wide hole is not mirrored: its mirror image is more hole, which made fills worse.
    """
    if pad <= 0 or not any(sides) or not hole.any():
        return (0, 0, 0, 0)
    height, width = hole.shape
    band = 2 * pad
    bands = (np.s_[:band], np.s_[height - band :], np.s_[:, :band], np.s_[:, width - band :])
    depth = None
    result = []
    for side, where, limit in zip(sides, bands, (height, height, width, width), strict=True):
        mirror = 0
        if side and hole[where].any():
            if depth is None:  # distance to the nearest known pixel (the picture's edge is not one)
                depth = cv2.distanceTransform(hole.view(np.uint8), cv2.DIST_L2, 3)
            if depth[where].max() <= pad:
                mirror = min(pad, limit - 1)  # mirroring needs that many pixels
        result.append(mirror)
    return tuple(result)  # type: ignore[return-value]


def _mirror(array: np.ndarray, pad: tuple[int, int, int, int]) -> np.ndarray:
    return cv2.copyMakeBorder(array, *pad, cv2.BORDER_REFLECT_101) if any(pad) else array


def _unmirror(array: np.ndarray, pad: tuple[int, int, int, int]) -> np.ndarray:
    top, bottom, left, right = pad
    return array[top : array.shape[0] - bottom, left : array.shape[1] - right]


class Inpainter:
    """A loaded model plus the settings that say how to apply it."""

    def __init__(self, model: str | Path | None = None, device: str = "auto",
                 precision: str = "auto", tile: int = 512, overlap: int = 64,
                 batch_size: int = 4, min_context: int = 48, border_pad: int = 16,
                 grain: float = GRAIN_STRENGTH, fill: str = "realistic",
                 refiner: str | Path | None = "default", classical_depth: float | None = None) -> None:
        self.device = pick_device(device)
        self.dtype = _precision(self.device, precision)
        # channels-last: oneDNN's fast convolution layout on CPU (1.85x at 512² here), fine on GPU.
        self.model = load_generator(model, self.device).to(memory_format=torch.channels_last)
        if self.dtype == torch.float16:
            self.model.half()
        self.tile = tile
        self.overlap = overlap
        self.batch_size = max(1, batch_size)
        self.min_context = min_context
        self.border_pad = border_pad
        self.grain = grain
        self.classical_depth = CLASSICAL_DEPTH if classical_depth is None else classical_depth
        if fill not in FILLS:
            raise ValueError(f"unknown fill {fill!r}: use {' or '.join(FILLS)}")
        self.fill_style = fill  # "realistic": the exemplar stage redoes the texture (exemplar.py)
        # With "realistic", a refiner (a generator trained on exemplar fills) corrects them:
        # "default" is the shipped one if there is one, None or "none" none.
        self.refiner = self._load_refiner(refiner) if fill == "realistic" else None
        self.model_name = str(model) if model else "default"

    def _load_refiner(self, refiner: str | Path | None) -> torch.nn.Module | None:
        if refiner is None or refiner == "none":
            return None
        path = default_refiner_path() if refiner == "default" else Path(refiner)
        if refiner == "default" and not path.exists():
            return None
        model = load_generator(path, self.device).to(memory_format=torch.channels_last)
        if not model.config.refine:
            raise ValueError(f"{path} is an inpainting model, not a refiner (restore train --exemplar-cache)")
        return model.half() if self.dtype == torch.float16 else model

    # -- model calls ---------------------------------------------------------------

    def fill(self, crops: list[np.ndarray], holes: list[np.ndarray],
             borders: list[tuple[bool, bool, bool, bool]] | None = None) -> list[np.ndarray]:
        """Fill float RGB crops. ``borders``: per crop, whether its top, bottom, left and right
        edges are the picture's own; where a hole comes near one, the model sees the picture
        mirrored about it (``border_pad`` rows or columns, cut off again after the fill)."""
        pads = [_border_pad(hole, sides, self.border_pad)
                for hole, sides in zip(holes, borders or [(False,) * 4] * len(crops), strict=True)]
        mirrored = [_mirror(c, p) for c, p in zip(crops, pads, strict=True)]
        mirrored_holes = [_mirror(h.view(np.uint8), p) > 0 for h, p in zip(holes, pads, strict=True)]
        return [_unmirror(out, p) for out, p in zip(self._run(mirrored, mirrored_holes), pads, strict=True)]

    @torch.inference_mode()
    def _run(self, crops: list[np.ndarray], holes: list[np.ndarray], guesses: list[np.ndarray] | None = None
             ) -> list[np.ndarray]:
        """Run the generator on float RGB crops; crops of equal shape share a batch. With
        ``guesses`` (float RGB fills of the crops) the refiner runs instead, correcting them."""
        model = self.model if guesses is None else self.refiner
        results: list[np.ndarray | None] = [None] * len(crops)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, crop in enumerate(crops):
            by_shape.setdefault(crop.shape[:2], []).append(i)
        multiple = self.model.multiple
        for (h, w), indices in by_shape.items():
            ph, pw = (-h) % multiple, (-w) % multiple
            per_call = self._per_call(h, w)
            for start in range(0, len(indices), per_call):
                chunk = indices[start : start + per_call]
                img = torch.from_numpy(np.stack([crops[i] for i in chunk])).permute(0, 3, 1, 2)
                msk = torch.from_numpy(np.stack([holes[i] for i in chunk])[:, None].astype(np.float32))
                given = ([] if guesses is None else
                         [torch.from_numpy(np.stack([guesses[i] for i in chunk])).permute(0, 3, 1, 2)])
                if ph or pw:
                    # Mirror the mask with the image: mirrored hole pixels must stay holes, not known
                    # context. A crop too small to mirror that far (a few pixels wide) is extended.
                    mode = "reflect" if ph < h and pw < w else "replicate"
                    img = torch.nn.functional.pad(img, (0, pw, 0, ph), mode=mode)
                    msk = torch.nn.functional.pad(msk, (0, pw, 0, ph), mode=mode)
                    given = [torch.nn.functional.pad(g, (0, pw, 0, ph), mode=mode) for g in given]
                # fp16 runs a half model; bf16 runs under autocast (convs in bf16, the rest fp32).
                io_dtype = torch.float16 if self.dtype == torch.float16 else torch.float32
                img = (img * 2 - 1).to(self.device, io_dtype).contiguous(memory_format=torch.channels_last)
                msk = msk.to(self.device, io_dtype).contiguous(memory_format=torch.channels_last)
                given = [(g * 2 - 1).to(self.device, io_dtype).contiguous(memory_format=torch.channels_last)
                         for g in given]
                with torch.autocast(self.device.type, dtype=torch.bfloat16,
                                    enabled=self.dtype == torch.bfloat16):
                    out = model(img, msk, *given)
                if not torch.isfinite(out).all():
                    # Seen only on crops a few pixels wide, now and then (bf16 kernels): where the
                    # network gives no number, the hole keeps the smooth first guess.
                    guess = push_pull(img.float(), 1 - msk.float())
                    out = torch.where(torch.isfinite(out), out.float(), guess)
                out = ((out.float() + 1) / 2).clamp(0, 1)[:, :, :h, :w].permute(0, 2, 3, 1).cpu()
                for j, i in enumerate(chunk):
                    results[i] = out[j].numpy()
        return results  # type: ignore[return-value]

    def _per_call(self, height: int, width: int) -> int:
        """Windows per model call: ``batch_size``, or as many small ones as hold the same pixels
        as ``batch_size`` 128² windows (a spot's window is 32-96 px; one per call wastes the call)."""
        if height * width >= 128 * 128:
            return self.batch_size
        return max(self.batch_size, self.batch_size * SMALL_CALL // (4 * height * width))

    # -- whole images --------------------------------------------------------------

    def _regions(self, index: int, pixels: np.ndarray, hole: np.ndarray, thin: float) -> list[_Region]:
        spots, rest = plan_spots(hole)
        regions = []
        for box in plan_regions(rest, self.tile, self.min_context):
            region_hole = hole[box.slices]
            own = rest[box.slices]
            if np.array_equal(own, region_hole):
                own = region_hole
            regions.append(_Region(index, box, hole.shape, pixels[box.slices], region_hole, own, region_hole,
                                   thin=thin))
        for spot in spots:
            window_hole = hole[spot.window.slices]
            region = _Region(index, spot.window, hole.shape, pixels[spot.window.slices], window_hole,
                             spot.own, window_hole, spot=True, thin=thin)
            if thin > 0 and cv2.distanceTransform(spot.own.view(np.uint8), cv2.DIST_L2, 3).max() <= thin:
                region.classical = window_hole
            regions.append(region)
        return regions

    def _coarse_pass(self, regions: list[_Region]) -> None:
        """Holes too wide for a tile's context: fill at reduced scale, keep it for the middle."""
        reach = self.tile // 4
        todo = [(r, deep_hole(r.hole, reach)) for r in regions if max(r.box.height, r.box.width) > self.tile]
        todo = [(r, deep) for r, deep in todo if deep.any()]
        if not todo:
            return
        crops, holes, borders = [], [], []
        for region, _ in todo:
            region.colour = to_colour(region.pixels)
            scale = self.tile / max(region.box.height, region.box.width)
            size = (max(8, round(region.box.width * scale)), max(8, round(region.box.height * scale)))
            crops.append(cv2.resize(region.colour, size, interpolation=cv2.INTER_AREA))
            small = cv2.resize(region.hole.astype(np.float32), size, interpolation=cv2.INTER_AREA)
            holes.append(small > 0)
            borders.append(_at_border(region, Box(0, 0, region.box.height, region.box.width)))
        for (region, deep), small in zip(todo, self.fill(crops, holes, borders), strict=True):
            big = cv2.resize(small, (region.box.width, region.box.height),
                             interpolation=cv2.INTER_CUBIC).clip(0, 1)
            region.colour[deep] = big[deep]
            region.fine_hole = region.hole & ~deep

    def _tiles(self, region: _Region) -> list[tuple[Box, int, np.ndarray | None]]:
        """Tiles for a region: (tile, overlap, the hole pixels it writes, or None for all of them).

        A hairline needs little context, so a long scratch is covered by small tiles that follow
        it rather than by full tiles over its whole bounding box. Each hole pixel gets a tile side
        from the hole's local depth (its widest point within ``LOCAL_REACH`` px), with context
        proportional to that depth (at least ``THIN_CONTEXT``, at most ``min_context``); pixels
        with the same side share a grid of tiles, and each tile writes only its group's pixels.
        Why local: a dozen hairlines crossing a scan make one region, and a dust speck on a
        scratch makes it one hole; sized by the deepest point, every hairline got tiles four
        times the area it needs.
        Small tiles are used only when they cost clearly less model work than full ones.
        """
        whole = Box(0, 0, region.box.height, region.box.width)
        if region.spot:
            return [] if region.classical is not None else [(whole, self.overlap, None)]
        # Only the region's own holes need tiles; spots inside it are filled in their own windows.
        todo = region.fine_hole if region.own is region.hole else region.fine_hole & region.own
        if not todo.any():
            return []
        # Each hole pixel's local depth: the widest point of the hole within a few px of it
        # (worked in place: a region can be a whole scan, and this is its only float copy).
        local = cv2.distanceTransform(todo.view(np.uint8), cv2.DIST_L2, 3)
        cv2.dilate(local, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * LOCAL_REACH + 1,) * 2), dst=local)
        depth = np.minimum(local[todo], self.tile)  # no known pixel in the region: "infinitely" deep
        del local
        if region.thin > 0:
            thin = depth <= region.thin
            if thin.any():
                region.classical = np.zeros_like(todo)
                region.classical[todo] = thin
                todo = todo & ~region.classical
                depth = depth[~thin]
                if not todo.any():
                    return []
        full = split_tiles(whole, todo, self.tile, self.overlap)
        context = np.minimum(self.min_context, np.maximum(THIN_CONTEXT, THIN_CONTEXT_PER_DEPTH * depth))
        need = np.maximum(1, -(-(2 * (2 * depth + context)).astype(int) // 64))  # in 64-px steps
        sides = np.zeros(todo.shape, np.uint8)
        sides[todo] = np.minimum(need, 255)
        small_sides = [int(v) * 64 for v in np.unique(need) if int(v) * 64 < self.tile]
        if not small_sides:
            return [(t, self.overlap, None) for t in full]
        jobs: list[tuple[Box, int, np.ndarray | None]] = []
        rest = todo
        for side in small_sides:
            group = sides == side // 64
            overlap = min(self.overlap, side // 4)
            jobs += [(t, overlap, group[t.slices]) for t in split_tiles(whole, group, side, overlap)]
            rest = rest & ~group
        if rest.any():
            tiles = split_tiles(whole, rest, self.tile, self.overlap)
            jobs += [(t, self.overlap, rest[t.slices]) for t in tiles]
        if sum(t.height * t.width for t, _, _ in jobs) < 0.6 * sum(t.height * t.width for t in full):
            return jobs
        return [(t, self.overlap, None) for t in full]

    def _fine_pass(self, regions: list[_Region]) -> None:
        """Run every tile, a chunk of cut windows at a time, and blend at the hole pixels only:
        the same sums in the same order as blending whole float regions, without holding them."""
        jobs: list[tuple[_Region, Box, int, np.ndarray | None]] = []
        for region in regions:
            region.tiles = self._tiles(region)  # kept: the realistic pass works in the same tiles
            jobs += [(region, tile, overlap, writes) for tile, overlap, writes in region.tiles]
        parts: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(jobs)
        for chunk in _chunks([job[1] for job in jobs]):
            crops = [jobs[i][0].crop(jobs[i][1]) for i in chunk]
            holes = [jobs[i][0].fine_hole[jobs[i][1].slices] for i in chunk]
            borders = [_at_border(jobs[i][0], jobs[i][1]) for i in chunk]
            for i, out in zip(chunk, self.fill(crops, holes, borders), strict=True):
                region, tile, overlap, writes = jobs[i]
                w = feather(tile, Box(0, 0, region.box.height, region.box.width), overlap)
                where = _written(region, tile, writes)
                parts[i] = (out[where] * w[where][:, None], w[where])
        by_region: dict[int, list[int]] = {}
        for i, (region, _, _, _) in enumerate(jobs):
            by_region.setdefault(id(region), []).append(i)
        for region in regions:
            region.flat = np.flatnonzero(region.hole)
            values = region.crop(Box(0, 0, region.box.height, region.box.width))[region.hole] \
                if region.colour is not None else to_colour(region.pixels[region.hole][:, None])[:, 0]
            total = np.zeros((len(region.flat), 3), np.float32)
            weight = np.zeros(len(region.flat), np.float32)
            for i in by_region.get(id(region), []):
                tile, writes = jobs[i][1], jobs[i][3]
                where = _written(region, tile, writes)
                _, _, index = region.positions(tile, where)
                part, w = parts[i]  # type: ignore[misc]
                total[index] += part
                weight[index] += w
            done = weight > 0
            values[done] = total[done] / np.maximum(weight[done], 1e-6)[:, None]
            region.values = values
            if region.classical is not None:
                self._classical(region)

    def _classical(self, region: _Region) -> None:
        """Classical fills of ``region.classical``, a core at a time with a margin of context
        (every damaged pixel unknown to it), into ``region.values``."""
        height, width = region.box.height, region.box.width
        ys, xs = np.nonzero(region.classical)
        for y in range(ys.min() // CLASSICAL_CORE * CLASSICAL_CORE, ys.max() + 1, CLASSICAL_CORE):
            for x in range(xs.min() // CLASSICAL_CORE * CLASSICAL_CORE, xs.max() + 1, CLASSICAL_CORE):
                core = Box(y, x, min(y + CLASSICAL_CORE, height), min(x + CLASSICAL_CORE, width))
                where = region.classical[core.slices]
                if not where.any():
                    continue
                cut = Box(max(0, y - CLASSICAL_MARGIN), max(0, x - CLASSICAL_MARGIN),
                          min(height, core.y1 + CLASSICAL_MARGIN), min(width, core.x1 + CLASSICAL_MARGIN))
                fill = classical_fill(region.pixels[cut.slices], region.hole[cut.slices])
                inner = core.shift(-cut.y0, -cut.x0)
                cy, cx, index = region.positions(core, where)
                region.values[index] = fill[inner.slices][cy, cx]

    def _paste_spots(self, regions: list[_Region]) -> None:
        """Spot pixels inside a region take the spot's own fill, so that the region's grain sees
        them filled, not as the damage they were."""
        spots = [r for r in regions if r.spot]
        for region in regions:
            if region.spot or region.own is region.hole:
                continue
            for spot in spots:
                if spot.image != region.image or not spot.box.overlaps(region.box):
                    continue
                sy, sx, spot_index = spot.positions(Box(0, 0, spot.box.height, spot.box.width), spot.own)
                ys, xs = sy + spot.box.y0 - region.box.y0, sx + spot.box.x0 - region.box.x0
                inside = (ys >= 0) & (ys < region.box.height) & (xs >= 0) & (xs < region.box.width)
                flat = ys[inside] * region.box.width + xs[inside]
                region.values[np.searchsorted(region.flat, flat)] = spot.values[spot_index[inside]]

    def _exemplar_pass(self, regions: list[_Region]) -> None:
        """--fill realistic: each region's fill is redone from the photo's own patches, guided by
        the network's (restore/inpaint/exemplar.py), then corrected by the refiner if one is
        loaded. Spots keep the network's fill.

        A region that fits one tile is one window (the photo's whole neighbourhood supplies
        patches). A larger one (a scan's hairlines crossing the frame) is synthesised in the fine
        pass's tiles, which follow thin damage closely, a chunk at a time; each hole pixel takes
        the fill of the tile that holds it farthest from its edge. Time and memory then follow
        the damage, not the frame: as one window, a 24 MP scan's took a minute and 6 GB. There,
        hairlines (holes at most ``EXEMPLAR_MIN_DEPTH`` px from known pixels) keep the network's
        fill: on that scan both fills measured the same there, and patches for them took the
        run from 25 to 36 s.
        """
        jobs: list[tuple[_Region, Box, np.ndarray]] = []
        for region in regions:
            if region.spot:
                continue
            whole = Box(0, 0, region.box.height, region.box.width)
            if max(whole.height, whole.width) <= self.tile:
                jobs.append((region, whole, region.hole))
                continue
            for tile, _, writes in region.tiles if region.tiles is not None else self._tiles(region):
                where = _written(region, tile, writes) & _wider_than(region.hole, tile, EXEMPLAR_MIN_DEPTH)
                if where.any():
                    jobs.append((region, tile, where))
        # Guides are the network's fills: new values go to copies, swapped in at the end.
        new = {id(region): region.values.copy() for region, _, _ in jobs}
        taken = {id(region): np.zeros(len(region.flat), np.float32) for region, _, _ in jobs}
        for indices in _chunks([job[1] for job in jobs], EXEMPLAR_CHUNK_PIXELS):
            chunk = [jobs[i] for i in indices]
            colours = [to_colour(region.pixels[tile.slices]) for region, tile, _ in chunk]
            holes = [region.hole[tile.slices] for region, tile, _ in chunk]
            fills = synthesize(colours, holes, [region.filled(tile) for region, tile, _ in chunk],
                               device=self.device)
            if self.refiner is not None:  # each window as the synthesis saw it
                fills = self._run(colours, holes, fills)
            for (region, tile, where), out in zip(chunk, fills, strict=True):
                whole = Box(0, 0, region.box.height, region.box.width)
                weight = feather(tile, whole, self.overlap)[where]
                _, _, index = region.positions(tile, where)
                better = weight > taken[id(region)][index]
                new[id(region)][index[better]] = out[where][better]
                taken[id(region)][index[better]] = weight[better]
        for region, _, _ in jobs:
            region.values = new[id(region)]

    def _finish(self, region: _Region, output: np.ndarray, chroma: np.ndarray | None) -> None:
        """Grain and composite, one grain window at a time; only ``region.own`` is written."""
        grain = self.grain > 0 and not region.hole.all()
        for window, core in grain_tiles(region.own):  # only windows holding pixels it writes
            colour = region.filled(window)
            if grain:
                colour = grain_core(colour, region.hole[window.slices], core, self.grain)
            where = core.shift(window.y0, window.x0)
            target = where.shift(region.box.y0, region.box.x0).slices
            output[target] = composite(output[target], colour[core.slices], region.own[where.slices], chroma)

    def repair(self, images: list[np.ndarray], masks: list[np.ndarray],
               grown: list[int] | None = None) -> list[np.ndarray]:
        """Repair each image's masked pixels; pixels outside the mask are returned unchanged.

        ``grown``: per image, how many px its mask was grown by (``--dilate``). The classical
        fill's depth limit grows by as much, so a hairline is still thin once dilated (on a
        scan, a detected mask grown by 2 px sent half its specks to the network: 39 s, not 8).
        """
        regions: list[_Region] = []
        for i, (pixels, mask) in enumerate(zip(images, masks, strict=True)):
            if mask.shape != pixels.shape[:2]:
                raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]}, image is "
                                 f"{pixels.shape[1]}x{pixels.shape[0]}")
            # (+ half a px: OpenCV's 3x3 distance overstates a grown speck's depth by a little)
            extra = grown[i] + 0.5 if grown and grown[i] > 0 else 0.0
            thin = self.classical_depth + extra if self.classical_depth > 0 else 0.0
            regions += self._regions(i, pixels, mask.astype(bool, copy=False), thin)
        self._coarse_pass(regions)
        self._fine_pass(regions)
        self._paste_spots(regions)
        if self.fill_style == "realistic":
            self._exemplar_pass(regions)
        for region in regions:  # their masks can be full-size: not kept through grain and composite
            region.tiles = region.classical = None
        outputs = [img.copy() for img in images]
        chroma = {i: chroma_range(images[i], masks[i].astype(bool, copy=False))
                  for i in {r.image for r in regions}}
        for region in regions:
            self._finish(region, outputs[region.image], chroma[region.image])
            region.colour = region.values = None  # done: let its memory go
        return outputs
