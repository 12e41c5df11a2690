"""The ``restore video`` job: a stream of frames through masks, propagation and the generator.

``repair_frames`` is the core and the Python API: frames in, repaired frames out, one at a time,
with a sliding window of ``radius + later + 2 * batch_size + 3`` or so frames in memory (and up
to two batches more on the detector's thread) whatever the clip's length. For each batch of
``batch_size`` frames:

1. masks: given (``masks``), or the detector on the batch (one batch ahead, on its own thread)
   plus the temporal cues (static overlay, single-frame specks, film scratches), which need
   the frames after;
2. propagation (``propagate.py``): hole pixels are copied from the original neighbours within
   ``radius`` frames where the flow is trusted, then followed through the ``later`` frames
   after them, then from the previous repaired frame, so content no frame shows is carried
   along the motion instead of being invented again;
3. the generator fills what is left, the batch's frames in one engine call; pixels that were
   waiting for the previous frame's fill are then copied from it, in order.

``restore_video`` wires a file to it (ffmpeg in and out, atomic output, audio copied) and
``restore_videos`` is the whole command: planning, skip/overwrite, report, exit status.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from restore.batch import DETECTED_DILATE, FileResult, Summary, model_names, report_lines
from restore.detect.detector import Detector
from restore.inpaint.engine import Inpainter
from restore.inpaint.windows import components
from restore.io.images import Picture, atomic_output
from restore.video.ahead import Ahead
from restore.video.masks import (
    CUES,
    damage_boxes,
    folder_masks,
    grow,
    single_frame_defects,
    static_masks,
    stepped_box,
    video_masks,
)
from restore.video.overlay import OverlayFinder
from restore.video.plan import VideoJob, is_video, plan_video_jobs
from restore.video.propagate import FrameSlot, Propagator, propagate, resolve_chain, to_grey
from restore.video.reader import (
    FrameReader,
    SequenceInfo,
    VideoError,
    VideoInfo,
    probe_sequence,
    probe_video,
    read_sequence,
)
from restore.video.scratches import MEMORY, film_scratches, line_ridges, remembered_scratches
from restore.video.writer import DEFAULT_CRF, FramesWriter, VideoWriter, atomic_folder, output_pix_fmt

OVERLAY_WARMUP = 150  # frames read ahead once to find burnt-in overlays before the first is written
DETECT_EVERY = 4  # a full look: ~0.15 s per 720p frame on 2 cores (one view); in between, only near finds
SPECK_THRESHOLD, SPECK_ONE_SIDED = 30.0, 45.0  # grey levels a speck differs from its neighbours by
SPECK_EDGE, SPECK_AT_EDGE = 8, 60.0  # px off the frame still judged there, and how strictly
DETECT_MARGIN = 16  # pixels around the last full look's finds where frames in between are looked at
LATER = 12  # frames followed ahead (propagate.trace_later): the middle of a 40 px logo at 1-2 px a frame
SMALL_LEFTOVER = 64  # pixels: leftovers up to this size (or thin ones) are filled by Telea, not the generator
SEQUENCE_FPS = Fraction(24)  # frame sequences have no rate of their own; film runs at 24


@dataclass
class RepairOptions:
    """How frames are repaired (the core's knobs, shared by the API and the command)."""

    radius: int = 2  # original neighbours used on each side
    batch_size: int = 4  # frames per detector / generator call
    dilate: int | None = None  # None: 0 for given masks, DETECTED_DILATE for detected ones
    cues: tuple[str, ...] = CUES  # temporal cues added to the detector's masks
    temporal: bool = True  # False: every frame on its own (per-frame generator), for comparison
    flow_side: int = 640
    detect_every: int = DETECT_EVERY  # the detector on the whole of every k-th frame, near its finds between
    later: int = LATER  # frames after each one through which what the near ones do not show is followed


@dataclass
class RepairedFrame:
    index: int
    pixels: np.ndarray
    mask: np.ndarray  # what was repaired
    copied: int  # hole pixels filled from other frames
    generated: int  # hole pixels the generator filled


def repair_frames(frames: Iterable[np.ndarray], inpainter: Inpainter, *,
                  masks: Iterable[np.ndarray] | None = None, detector: Detector | None = None,
                  options: RepairOptions | None = None,
                  warmup: Iterable[np.ndarray] | None = None) -> Iterator[RepairedFrame]:
    """Repair a stream of frames (H x W x C, all one size); yields them in order as they are done.

    Masks come from ``masks`` (one bool H x W per frame) or, without it, from ``detector`` plus
    the temporal cues. ``warmup`` (the clip's first frames again, optional) lets the overlay cue
    learn before the first frame is repaired.
    """
    options = options or RepairOptions()
    if masks is None and detector is None:
        raise ValueError("give masks or a detector")
    return _Stream(inpainter, masks, detector, options).run(iter(frames), warmup)


class _Stream:
    """The sliding window over one clip; see the module docstring for the steps."""

    def __init__(self, inpainter: Inpainter, masks: Iterable[np.ndarray] | None, detector: Detector | None,
                 options: RepairOptions) -> None:
        self.inpainter, self.detector, self.options = inpainter, detector, options
        self.masks = iter(masks) if masks is not None else None
        default = 0 if masks is not None else DETECTED_DILATE
        self.dilate = options.dilate if options.dilate is not None else default
        self.radius = max(0, options.radius) if options.temporal else 0
        self.batch = max(1, options.batch_size)
        auto = masks is None and options.temporal
        self.use_overlay = auto and "overlay" in options.cues
        self.use_specks = auto and "specks" in options.cues
        self.use_scratches = auto and "scratches" in options.cues
        self.ridges: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # line_ridges per frame, for scratches
        self.scratch_columns: dict[int, np.ndarray] = {}  # columns of scratches found, by frame
        self.window: dict[int, FrameSlot] = {}
        self.prop: Propagator | None = None
        self.overlay: OverlayFinder | None = None
        self.ended = False
        self.read = 0
        self.shape: tuple[int, ...] | None = None
        self.near: list[tuple[int, int, int, int]] = []  # boxes around the last full detection's finds
        self.grid: list[np.ndarray] | None = None  # pixel coordinates, for warping whole frames

    def run(self, frames: Iterator[np.ndarray],
            warmup: Iterable[np.ndarray] | None) -> Iterator[RepairedFrame]:
        warmup_frames = iter(warmup) if warmup is not None else None
        batches = self._batches(frames)
        if self.detector is not None:  # the detector looks at the next batch while this one is repaired
            batches = Ahead(batches, name="restore-detect")
        try:
            yield from self._run(batches, warmup_frames)
        finally:
            if isinstance(batches, Ahead):
                batches.close()

    def _run(self, batches: Iterator[tuple[list[np.ndarray], list[np.ndarray]]],
             warmup_frames: Iterator[np.ndarray] | None) -> Iterator[RepairedFrame]:
        start = 0
        reach = max(self.radius, self.options.later if self.radius else 0)
        while True:
            ahead = 2 if self.use_specks or self.use_scratches else 0
            last_needed = start + self.batch - 1 + reach + ahead
            while not self.ended and self.read <= last_needed:
                self._read_batch(batches, warmup_frames)
                warmup_frames = None
            if start not in self.window:
                return
            end = min(start + self.batch, self.read)
            for index in range(start, min(end + reach, self.read)):
                self._finalise(index)
            batch = [self.window[i] for i in range(start, end)]
            yield from self._repair(batch)
            start = end
            keep_from = start - max(self.radius, 1)
            for index in [i for i in self.window if i < keep_from]:
                del self.window[index]
                self.ridges.pop(index, None)
            if self.prop is not None:
                self.prop.forget(keep_from)

    # -- reading and masks ------------------------------------------------------------------

    def _batches(self, frames: Iterator[np.ndarray]) -> Iterator[tuple[list[np.ndarray], list[np.ndarray]]]:
        """Frames in batches, each with the detector's masks (empty when masks are given)."""
        first = 0
        while new := list(itertools.islice(frames, self.batch)):
            yield new, (self._detect(new, first) if self.masks is None else [])
            first += len(new)
            if len(new) < self.batch:
                return

    def _read_batch(self, batches: Iterator[tuple[list[np.ndarray], list[np.ndarray]]],
                    warmup: Iterator[np.ndarray] | None) -> None:
        new, detected = next(batches, ([], []))
        if len(new) < self.batch:
            self.ended = True
        if not new:
            return
        shape = new[0].shape[:2]
        if self.prop is None and self.options.temporal:
            self.prop = Propagator(shape[0], shape[1], self.options.flow_side)
            if self.use_overlay:
                self.overlay = OverlayFinder((self.prop.low[1], self.prop.low[0]), OVERLAY_WARMUP)
                if warmup is not None:
                    self._learn_overlay(warmup)
        if self.masks is not None:
            holes = []
            for _ in new:
                try:
                    mask = next(self.masks)
                except StopIteration:
                    count = self.read + len(holes)
                    raise VideoError(f"there are fewer masks ({count}) than frames") from None
                holes.append(grow(mask.astype(bool), self.dilate))
        else:
            holes = [grow(m, self.dilate) for m in detected]
        for frame, hole in zip(new, holes, strict=True):
            if self.shape is None:
                self.shape = frame.shape
            if frame.shape != self.shape:
                raise VideoError(f"frame {self.read + 1} has another size than the frames before it")
            if hole.shape != shape:
                raise VideoError(f"the mask for frame {self.read + 1} is {hole.shape[1]}x{hole.shape[0]}, "
                                 f"the frame is {shape[1]}x{shape[0]}; masks are never resized")
            pixels = frame if frame.ndim == 3 else frame[..., None]
            slot = FrameSlot(self.read, pixels, hole)
            if self.prop is not None:
                strokes = None
                if self.overlay is not None and self.overlay.done:
                    # Known before the flow is computed, so the flow's grey has them pre-filled: left
                    # in, their steady edges pin the flow around them to zero (-1.4 dB at 720p).
                    strokes = self.overlay.full_mask(*shape, grey=slot.grey_full())
                self.prop.prepare(slot, strokes)
                if strokes is not None:
                    slot.hole = slot.hole | strokes
                    slot.overlaid = True
                if self.overlay is not None and not self.overlay.done:  # no warm-up: learn on the way
                    self.overlay.add(slot.raw_grey, slot.grey_full())
            else:
                slot.set_final()
            self.window[self.read] = slot
            self.read += 1

    def _detect(self, new: list[np.ndarray], first: int) -> list[np.ndarray]:
        """The detector on every ``detect_every``-th frame (``first`` is ``new[0]``'s index); in
        between, only in boxes around what the last full look found (a scratch stays near its
        place; specks have their own cue). Runs on the ``Ahead`` thread: touches only ``near``."""
        assert self.detector is not None
        every = max(1, self.options.detect_every)
        full = [i for i in range(len(new)) if (first + i) % every == 0]
        found = dict(zip(full, self.detector.detect([new[i] for i in full]), strict=True)) if full else {}
        crops: list[tuple[int, tuple[int, int, int, int]]] = []
        near = self.near
        for i in range(len(new)):
            if i in found:
                near = damage_boxes(found[i], DETECT_MARGIN)
            else:
                crops += [(i, box) for box in near]
        self.near = near
        masks = [found.get(i, np.zeros(frame.shape[:2], bool)) for i, frame in enumerate(new)]
        if crops:
            shape = new[0].shape[:2]
            wide = [stepped_box(box, shape) for _, box in crops]
            looks = self.detector.detect([new[i][y0:y1, x0:x1] for (i, _), (y0, y1, x0, x1) in
                                          zip(crops, wide, strict=True)])
            for (i, (y0, y1, x0, x1)), (wy0, _, wx0, _), look in zip(crops, wide, looks, strict=True):
                masks[i][y0:y1, x0:x1] |= look[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0]
        return masks

    def _learn_overlay(self, warmup: Iterator[np.ndarray]) -> None:
        """Read the first frames once, only to find overlays, before anything is repaired."""
        assert self.prop is not None and self.overlay is not None
        for frame in itertools.islice(warmup, OVERLAY_WARMUP):
            grey = to_grey(frame)
            self.overlay.add(cv2.resize(grey, self.prop.low, interpolation=cv2.INTER_AREA)
                             if self.prop.scale < 1 else grey, grey)
        self.overlay.finish()

    def _finalise(self, index: int) -> None:
        """Add the temporal cues to a frame's mask; needs the next frame for specks."""
        slot = self.window[index]
        if slot.final:
            return
        h, w = slot.hole.shape
        # The overlay's own strokes are repaired; its whole shapes are where the speck cue does not
        # trust the motion (the scene's flow bends at their edge).
        overlay = self.overlay.full_mask(h, w) if self.overlay is not None else None
        if self.overlay is not None and not slot.overlaid:  # learnt on the way, after this frame was read
            slot.hole = slot.hole | self.overlay.full_mask(h, w, grey=slot.grey_full())
        before, after = self._speck_neighbours(slot) if self.use_specks else (None, None)
        if before is not None and after is not None:
            # (Not also against the frames two away, for a scratch that wandered less than its
            # width: the scratch cue finds those now, and that look flagged 40% more clean pixels
            # for 0.1 dB; docs/experiments.md, "video: the flow around an overlay".)
            slot.hole = slot.hole | self._specks(slot, before, after, overlay)
        if self.use_scratches:
            slot.hole = slot.hole | self._scratches(slot)
        slot.set_final()

    def _speck_neighbours(self, slot: FrameSlot) -> tuple[FrameSlot | None, FrameSlot | None]:
        """The two frames a speck is judged against: the one before and the one after, or, at
        the clip's ends and beside a cut, the two nearest on the side in the same shot (unlike
        both, which agree, is a speck just as well). Beside a cut the frames across it used to
        be taken, and every speck there was missed."""
        assert self.prop is not None
        prop, i = self.prop, slot.index

        def same(*indices: int) -> list[FrameSlot] | None:
            frames = [self.window.get(j) for j in indices]
            if all(f is not None and prop.same_shot(slot, f) for f in frames):
                return frames  # type: ignore[return-value]
            return None

        pair = same(i - 1, i + 1) or same(i + 1, i + 2) or same(i - 1, i - 2)
        return (pair[0], pair[1]) if pair else (None, None)

    def _scratches(self, slot: FrameSlot) -> np.ndarray:
        """Upright film scratches the scene moves under (``scratches.py``), grown like specks."""
        assert self.prop is not None
        neighbours = [self.window[i] for i in (slot.index - 1, slot.index + 1, slot.index - 2, slot.index + 2)
                      if i in self.window]
        for frame in [slot, *neighbours]:
            if frame.index not in self.ridges:
                self.ridges[frame.index] = line_ridges(frame.grey_full())
        found = film_scratches(self.prop, slot, neighbours, self.ridges)
        if found.any():
            self.scratch_columns[slot.index] = found.any(axis=0)
        for index in [i for i in self.scratch_columns if i < slot.index - MEMORY]:
            del self.scratch_columns[index]
        recent = [c for i, c in self.scratch_columns.items() if i < slot.index]
        if recent:  # where the motion test found a scratch in the last frames
            found |= remembered_scratches(self.ridges[slot.index], np.logical_or.reduce(recent))
        return grow(found, 1)

    def _specks(self, slot: FrameSlot, before: FrameSlot, after: FrameSlot,
                overlay: np.ndarray | None) -> np.ndarray:
        prop = self.prop
        assert prop is not None
        if not (prop.same_shot(slot, before) and prop.same_shot(slot, after)):
            return np.zeros(slot.hole.shape, bool)
        h, w = slot.hole.shape
        if self.grid is None or self.grid[0].shape != (h, w):
            self.grid = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        gx, gy = self.grid
        warped, valid, near = [], np.ones((h, w), bool), np.ones((h, w), bool)
        for other in (before, after):
            flow = prop.full_flow(slot, other)
            mx, my = gx + flow[..., 0], gy + flow[..., 1]
            warped.append(cv2.remap(other.grey_full(), mx, my, cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE))
            # No forward-backward check: it fails on the damage itself (a third of the specks and
            # scratches on fast footage); the two neighbours agreeing is the motion check that counts.
            valid &= (mx >= 0) & (my >= 0) & (mx <= w - 1) & (my <= h - 1)
            m = SPECK_EDGE  # a little off the frame, the nearest edge pixel stands in
            near &= (mx >= -m) & (my >= -m) & (mx <= w - 1 + m) & (my <= h - 1 + m)
        one_sided = (before.index - slot.index) * (after.index - slot.index) > 0
        # Both neighbours on one side share their flow's mistakes, so they agree more easily: stricter.
        if one_sided and overlay is not None and overlay.any():  # the scene's flow bends at its edge
            valid &= ~grow(overlay, 8)
        grey = slot.grey_full()
        found = single_frame_defects(grey, warped[0], warped[1], valid,
                                     threshold=SPECK_ONE_SIDED if one_sided else SPECK_THRESHOLD)
        # Along the border, where the motion takes a pixel just off the neighbours' frames: with a
        # moving camera every speck there was missed; what enters the frame is new picture,
        # unlike the edge pixel that stands in for it, so only strong specks count.
        # Not with both neighbours on one side (the clip's first and last frames), which agree
        # with each other more easily.
        edge = near & ~valid
        if not one_sided and edge.any():
            found |= single_frame_defects(grey, warped[0], warped[1], edge, threshold=SPECK_AT_EDGE)
        return grow(found, 2)

    # -- repair ---------------------------------------------------------------------------

    def _repair(self, batch: list[FrameSlot]) -> Iterator[RepairedFrame]:
        pendings, copied = [], []
        for slot in batch:
            if self.prop is None or not slot.hole.any():  # per-frame mode, or nothing to do
                slot.out, slot.pending = slot.pixels, (slot.hole if slot.hole.any() else None)
                pendings.append(None)
                copied.append(0)
                continue
            groups = []
            for k in range(1, self.radius + 1):
                group = [self.window[i] for i in (slot.index - k, slot.index + k) if i in self.window]
                if group:
                    groups.append(group)
            later = []
            for i in range(slot.index + 1, slot.index + 1 + self.options.later):
                if i not in self.window or not self.window[i].final:
                    break
                later.append(self.window[i])
            out, pending, count = propagate(slot, groups, self.window.get(slot.index - 1), self.prop,
                                            later=later if len(later) > self.radius else None)
            fill_small_leftovers(out, pending.root)
            waiting = pending.mask
            slot.out, slot.pending = out, waiting if waiting.any() else None
            pendings.append(pending)
            copied.append(count)
        # One engine call for the whole batch: only what no frame showed goes to the generator.
        todo = [(slot, pending) for slot, pending in zip(batch, pendings, strict=True)
                if (pending.root.any() if pending is not None else slot.hole.any())]
        generated = {}
        if todo:
            images = [slot.out for slot, _ in todo]
            holes = [slot.pending if slot.pending is not None else slot.hole for slot, _ in todo]
            repaired = self.inpainter.repair(images, holes, [self.dilate] * len(images))
            for (slot, pending), image in zip(todo, repaired, strict=True):
                slot.out = image
                generated[slot.index] = int(pending.root.sum() if pending is not None else slot.hole.sum())
        for slot, pending, count in zip(batch, pendings, copied, strict=True):
            if pending is not None and len(pending.chain_y):
                previous = self.window[slot.index - 1]
                assert previous.out is not None
                resolve_chain(slot.out, pending, previous.out)
                count += len(pending.chain_y)
            slot.pending = None
            assert slot.out is not None
            yield RepairedFrame(slot.index, slot.out, slot.hole, count, generated.get(slot.index, 0))


def fill_small_leftovers(out: np.ndarray, root: np.ndarray, max_area: int = SMALL_LEFTOVER) -> int:
    """Fill (in place, Telea) the small or thin bits of a hole that no other frame showed; returns
    how many pixels.

    After propagation, what is left of a burnt-in clock or a speck is a scatter of a few pixels
    or a letter's strokes, with the frame around them known; there Telea is as good as the
    generator, which costs seconds per call on a 720p frame on a CPU. Wide holes still go to it.
    """
    if not root.any() or out.dtype != np.uint8 or out.shape[2] not in (1, 3):
        return 0
    count, labels, stats = components(root)
    # Thin parts (strokes of a letter, up to ~8 px wide) have no core left after an erosion.
    core = cv2.erode(root.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))) > 0
    thick = np.zeros(count, bool)
    thick[np.unique(labels[core])] = True
    small = (stats[:, cv2.CC_STAT_AREA] <= max_area) | ~thick
    small[0] = False
    if not small[1:].any():
        return 0
    mask = small[labels]
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = max(0, ys.min() - 8), ys.max() + 9, max(0, xs.min() - 8), xs.max() + 9
    part = np.ascontiguousarray(out[y0:y1, x0:x1])
    filled = cv2.inpaint(part, mask[y0:y1, x0:x1].astype(np.uint8), 3, cv2.INPAINT_TELEA)
    out[y0:y1, x0:x1][mask[y0:y1, x0:x1]] = filled.reshape(part.shape)[mask[y0:y1, x0:x1]]
    root &= ~mask
    return len(ys)


# --------------------------------------------------------------------------- files


@dataclass
class VideoOptions:
    """Everything ``restore video`` can be told, with the CLI's defaults."""

    output: Path | None = None  # -o
    to: str | None = None  # "video" or "frames"; default: what the input is
    mask: Path | None = None  # one mask for every frame
    masks: Path | None = None  # a folder with one mask per frame, or a mask video
    save_masks: Path | None = None
    repair: RepairOptions = field(default_factory=RepairOptions)
    codec: str | None = None
    crf: int = DEFAULT_CRF
    fps: Fraction | None = None  # for frame sequences written as video
    overwrite: bool = False
    shard: str | None = None
    report: Path | None = None


@dataclass
class VideoResult(FileResult):
    """One line of the report, with what only a clip has."""

    frames: int = 0
    fps: float | None = None
    copied_percent: float | None = None  # of the repaired pixels: filled from other frames
    warnings: list[str] = field(default_factory=list)


@dataclass
class VideoSummary(Summary):
    frames: int = 0

    def line(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        return (f"restored {self.count('ok')}, skipped {self.count('skipped')}, "
                f"failed {self.count('failed')} in {self.seconds:.1f} s "
                f"({self.frames} frames, {rate:.2f} frames/s)")


FrameCallback = Callable[[VideoJob, int, int | None], None]


def _rgb8(pixels: np.ndarray) -> np.ndarray:
    """Any frame as 8-bit RGB for a video encoder (alpha dropped, grey expanded)."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    colour = pixels[..., :1] if pixels.shape[-1] in (1, 2) else pixels[..., :3]
    return np.repeat(colour, 3, axis=-1) if colour.shape[-1] == 1 else colour


def _job_masks(options: VideoOptions, job: VideoJob, shape: tuple[int, int]) -> Iterator | None:
    if options.mask is not None:
        return static_masks(options.mask, shape)
    root = options.masks
    if root is None:
        return None
    if root.is_file():
        return video_masks(root, shape)
    stem = job.relative.with_suffix("") if job.kind == "video" else job.relative
    if (root / stem).is_dir():
        return folder_masks(root / stem, shape)
    for candidate in sorted(root.glob(f"{stem.as_posix()}.*")):
        if is_video(candidate):
            return video_masks(candidate, shape)
    if job.named:
        return folder_masks(root, shape)
    raise VideoError(f"no masks for this clip in {root} (expected a folder {root / stem})")


def _save_masks_path(options: VideoOptions, job: VideoJob) -> Path | None:
    if options.save_masks is None:
        return None
    if job.named:
        return options.save_masks
    stem = job.relative.with_suffix("") if job.kind == "video" else job.relative
    return options.save_masks / stem


class _Output:
    """A video or frames writer under a temp name, renamed into place by ``commit``."""

    def __init__(self, path: Path, kind: str, make: Callable[[Path], object]) -> None:
        self.path, self.kind = path, kind
        self._context = atomic_output(path) if kind == "video" else atomic_folder(path)
        self.tmp = self._context.__enter__()
        try:
            self.writer = make(self.tmp)
        except BaseException as exc:
            self._context.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def commit(self) -> None:
        if isinstance(self.writer, VideoWriter):
            self.writer.close()
        self._context.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        if isinstance(self.writer, VideoWriter):
            self.writer.abort()
        try:
            self._context.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException:  # noqa: BLE001 - atomic_output re-raises; the caller raises the original
            pass


def restore_video(job: VideoJob, inpainter: Inpainter, options: VideoOptions | None = None,
                  detector: Detector | None = None, on_frame: FrameCallback | None = None) -> VideoResult:
    """Repair one clip or frame sequence into ``job.output``; VideoError/ImageError/OSError on failure."""
    options = options or VideoOptions()
    start = time.perf_counter()
    info: VideoInfo | SequenceInfo
    pictures: dict[int, Picture] = {}
    reader: FrameReader | None = None
    if job.kind == "video":
        info = probe_video(job.source)
        reader = FrameReader(info)
        source_frames: Iterator[np.ndarray] = iter(reader)
        fps = info.fps
    else:
        info = probe_sequence(job.source)
        fps = options.fps or SEQUENCE_FPS

        def sequence() -> Iterator[np.ndarray]:
            for i, picture in enumerate(read_sequence(info)):
                pictures[i] = picture
                yield picture.pixels

        source_frames = sequence()
    shape = (info.height, info.width)
    masks = _job_masks(options, job, shape)
    if masks is None and detector is None:
        raise VideoError("no masks given and no detector to find the damage")
    warmup = None
    if masks is None and "overlay" in options.repair.cues and options.repair.temporal:
        warmup = (iter(FrameReader(info, limit=OVERLAY_WARMUP)) if isinstance(info, VideoInfo)
                  else (p.pixels for p in itertools.islice(read_sequence(info), OVERLAY_WARMUP)))

    def make_writer(tmp: Path) -> object:
        if job.output_kind == "frames":
            return FramesWriter(tmp)
        rotation = info.rotation if isinstance(info, VideoInfo) else 0
        source_fmt = info.pix_fmt if isinstance(info, VideoInfo) else None
        return VideoWriter(tmp, info.width, info.height, fps, codec=options.codec, crf=options.crf,
                           pix_fmt=output_pix_fmt(info.width, info.height, source_fmt), rotation=rotation,
                           audio_from=job.source if isinstance(info, VideoInfo) and info.has_audio else None)

    mask_path = _save_masks_path(options, job)
    outputs: list[_Output] = []
    frames = hole_pixels = copied = 0
    stream = repair_frames(source_frames, inpainter, masks=masks, detector=detector, options=options.repair,
                           warmup=warmup)
    try:
        outputs.append(_Output(job.output, job.output_kind, make_writer))
        if mask_path is not None:
            mask_kind = "video" if is_video(mask_path) else "frames"
            outputs.append(_Output(mask_path, mask_kind, lambda tmp: (
                FramesWriter(tmp) if mask_kind == "frames" else
                VideoWriter(tmp, info.width, info.height, fps, codec="libx264", lossless=True, grey=True,
                            pix_fmt=output_pix_fmt(info.width, info.height, None)))))
        for repaired in stream:
            writer = outputs[0].writer
            if isinstance(writer, FramesWriter):
                if isinstance(info, SequenceInfo):  # same names, formats and metadata as the input frames
                    name = info.files[repaired.index].name
                    writer.write(repaired.pixels, pictures.get(repaired.index), name)
                else:
                    writer.write(repaired.pixels)
            else:
                assert isinstance(writer, VideoWriter)
                writer.write(_rgb8(repaired.pixels))
            pictures.pop(repaired.index, None)
            if len(outputs) > 1:
                grey = repaired.mask.astype(np.uint8) * 255
                mask_writer = outputs[1].writer
                if isinstance(mask_writer, FramesWriter):
                    mask_writer.write(grey[..., None])
                else:
                    assert isinstance(mask_writer, VideoWriter)
                    mask_writer.write(grey)
            frames += 1
            hole_pixels += int(repaired.mask.sum())
            copied += repaired.copied
            if on_frame is not None:
                on_frame(job, frames, info.expected_frames)
        if frames == 0:
            raise VideoError("no frame could be decoded")
        for output in outputs:
            output.commit()
    except BaseException as exc:
        stream.close()
        for output in outputs:
            output.abort(exc)
        raise
    finally:
        if hasattr(source_frames, "close"):
            source_frames.close()  # type: ignore[union-attr]
    total = frames * shape[0] * shape[1]
    return VideoResult(
        path=str(job.source), output=str(job.output), status="ok",
        damaged_percent=round(100.0 * hole_pixels / total, 3) if total else None,
        seconds=round(time.perf_counter() - start, 3), frames=frames, fps=round(float(fps), 4),
        copied_percent=round(100.0 * copied / hole_pixels, 2) if hole_pixels else None,
        warnings=list(reader.warnings) if reader is not None else [],
    )


def restore_videos(specs: list[str], inpainter: Inpainter, options: VideoOptions | None = None,
                   detector: Detector | None = None, on_result: Callable[[FileResult], None] | None = None,
                   on_plan: Callable[[list[VideoJob]], None] | None = None,
                   on_frame: FrameCallback | None = None) -> VideoSummary:
    """The whole ``restore video`` run; UsageError (before any file is touched) for bad arguments."""
    options = options or VideoOptions()
    exclude = [p for p in (options.masks, options.save_masks) if p is not None]
    jobs = plan_video_jobs(specs, options.output, options.to, options.shard, exclude)
    if on_plan:
        on_plan(jobs)
    names = model_names(inpainter, detector)
    started = time.perf_counter()
    summary = VideoSummary()
    with report_lines(options.report) as report:
        for job in jobs:
            if job.output.exists() and not options.overwrite:
                result: FileResult = VideoResult(str(job.source), str(job.output), "skipped")
            else:
                try:
                    result = restore_video(job, inpainter, options, detector, on_frame)
                    result.model, result.device = names
                except Exception as exc:  # noqa: BLE001 - one bad clip must not end a run over an archive
                    result = VideoResult(str(job.source), str(job.output), "failed",
                                         error=str(exc) or repr(exc), model=names[0], device=names[1])
            if isinstance(result, VideoResult):
                summary.frames += result.frames
            summary.results.append(result)
            report(result)
            if on_result:
                on_result(result)
    summary.seconds = time.perf_counter() - started
    return summary
