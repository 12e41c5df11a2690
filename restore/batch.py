"""The batch jobs behind ``restore images`` and ``restore detect``: files in, files out, nothing lost.

Reading and decoding run on a prefetch thread pool, encoding and writing on another, so the
models are rarely waiting for JPEG work. Images are handed to the detector and the engine a
few at a time, and both batch their tiles together. A file that fails gets one error line
and the batch goes on; outputs that already exist are skipped, so rerunning after a crash
resumes. A photo in which nothing needs repair is copied byte for byte, not re-encoded.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from restore.detect.detector import Detector
from restore.inpaint.engine import Inpainter
from restore.io.discover import Job, plan_jobs
from restore.io.images import ImageError, Picture, atomic_output, read_image, read_mask, write_image
from restore.io.memory import return_freed_memory
from restore.io.preview import write_comparison, write_mask, write_overlay

DETECTED_DILATE = 2  # detected masks are grown this much by default: damage has soft edges
PREFETCH_BYTES = 256 << 20  # decoded images waiting for the model, at most (at least one image)
CHUNK_PIXELS = 16_000_000  # images per model call: up to --batch-size, and about this many pixels
WRITES_AHEAD = 4  # repaired images waiting to be encoded, at most; then the model waits
LARGE_IMAGE_BYTES = 48 << 20  # decoded size (about 16 MP in RGB) from which freed buffers go back at once


@dataclass
class ImagesOptions:
    """Everything ``restore images`` can be told, with the CLI's defaults."""

    masks: Path | None = None  # None: the detector finds the damage
    dilate: int | None = None  # None: 0 for given masks, DETECTED_DILATE for detected ones
    output_format: str | None = None
    jpeg_quality: int = 95
    overwrite: bool = False
    shard: str | None = None
    report: Path | None = None
    save_masks: Path | None = None
    compare: Path | None = None
    batch_size: int = 4
    prefetch: int = 8


@dataclass
class DetectOptions:
    """Everything ``restore detect`` can be told, with the CLI's defaults."""

    overlay: Path | None = None
    overwrite: bool = False
    shard: str | None = None
    report: Path | None = None
    batch_size: int = 4
    prefetch: int = 8


@dataclass
class FileResult:
    """One line of the report."""

    path: str
    output: str
    status: str  # "ok", "skipped" or "failed"
    error: str | None = None
    damaged_percent: float | None = None
    seconds: float = 0.0
    model: str | None = None
    device: str | None = None


@dataclass
class Summary:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    verb: str = "restored"
    detected: bool = False  # masks came from the detector: say what it found and how to check it
    check_with: str = "--compare DIR"

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def exit_code(self) -> int:
        return 1 if self.count("failed") else 0

    def line(self) -> str:
        done = self.count("ok")
        rate = done / self.seconds if self.seconds > 0 else 0.0
        text = (f"{self.verb} {done}, skipped {self.count('skipped')}, failed {self.count('failed')} "
                f"in {self.seconds:.1f} s ({rate:.2f} images/s)")
        if self.detected and done:
            found = [r.damaged_percent for r in self.results if r.status == "ok" and r.damaged_percent]
            share = sum(found) / len(found) if found else 0.0
            text += (f"; the detector found damage in {len(found)} of {done} photos ({share:.2f}% of their "
                     f"pixels) and misses some dark, faint or coloured damage: look with {self.check_with}")
        return text


@dataclass
class _Loaded:
    job: Job
    picture: Picture
    mask: np.ndarray | None  # None until the detector has run
    seconds: float


def grow_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate by ``pixels`` with a round kernel: repairs catch the soft edges of damage."""
    if pixels <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _load(job: Job, dilate: int, need_mask: bool) -> _Loaded:
    start = time.perf_counter()
    picture = read_image(job.source)
    mask = None
    if job.mask is not None:
        mask = grow_mask(read_mask(job.mask, picture.size), dilate)
    elif need_mask:
        raise ImageError("no mask for this image and no detector to find the damage")
    return _Loaded(job, picture, mask, time.perf_counter() - start)


def _loaded_bytes(item: _Loaded) -> int:
    return item.picture.pixels.nbytes + (item.mask.nbytes if item.mask is not None else 0)


def _load_noting_size(load: Callable[[Job], _Loaded], job: Job) -> _Loaded:
    """``load``; a large image (a scan) first makes freed buffers go back to the system at once,
    before the model allocates anything for it (``restore/io/memory.py``)."""
    item = load(job)
    if _loaded_bytes(item) >= LARGE_IMAGE_BYTES:
        return_freed_memory()
    return item


def _prefetch(jobs: list[Job], load: Callable[[Job], _Loaded], prefetch: int,
              pool: ThreadPoolExecutor) -> Iterator[tuple[Job, Future]]:
    """Yield (job, future) in order while decodes run ahead: up to ``prefetch`` of them, and no
    more than ``PREFETCH_BYTES`` of decoded pixels at the size of the largest image seen (at
    least one). Why: eight 100-megapixel 16-bit scans decoded ahead are 5 GB; eight JPEGs, 30 MB."""
    pending: list[tuple[Job, Future]] = []
    it = iter(jobs)
    largest = 0

    def fill() -> None:
        room = min(prefetch, max(1, PREFETCH_BYTES // largest)) if largest else min(prefetch, 2)
        while len(pending) < room:
            job = next(it, None)
            if job is None:
                return
            pending.append((job, pool.submit(_load_noting_size, load, job)))

    fill()
    while pending:
        job, future = pending.pop(0)
        yield job, future
        if future.done() and future.exception() is None:
            largest = max(largest, _loaded_bytes(future.result()))
        fill()


def _copy_unchanged(item: _Loaded) -> None:
    """Nothing to repair and the same format out: the file's own bytes, not a re-encode."""
    with atomic_output(item.job.output) as tmp:
        shutil.copyfile(item.job.source, tmp)


def _write_repaired(item: _Loaded, pixels: np.ndarray | None, options: ImagesOptions, compute_seconds: float,
                    names: tuple[str, str]) -> FileResult:
    start = time.perf_counter()
    assert item.mask is not None
    if pixels is None:
        _copy_unchanged(item)
        pixels = item.picture.pixels
    else:
        write_image(item.job.output, replace(item.picture, pixels=pixels),
                    format=options.output_format, jpeg_quality=options.jpeg_quality)
    if options.save_masks is not None:
        write_mask(options.save_masks / item.job.relative.with_suffix(".png"), item.mask)
    if options.compare is not None:
        write_comparison(options.compare / item.job.relative.with_suffix(".png"),
                         item.picture.pixels, pixels, item.mask)
    return FileResult(
        path=str(item.job.source), output=str(item.job.output), status="ok",
        damaged_percent=round(100.0 * float(item.mask.mean()), 3),
        seconds=round(item.seconds + compute_seconds + time.perf_counter() - start, 3),
        model=names[0], device=names[1],
    )


def _write_detected(item: _Loaded, options: DetectOptions, compute_seconds: float,
                    names: tuple[str, str]) -> FileResult:
    start = time.perf_counter()
    assert item.mask is not None
    write_mask(item.job.output, item.mask)
    if options.overlay is not None:
        write_overlay(options.overlay / item.job.relative.with_suffix(".png"), item.picture.pixels, item.mask)
    return FileResult(
        path=str(item.job.source), output=str(item.job.output), status="ok",
        damaged_percent=round(100.0 * float(item.mask.mean()), 3),
        seconds=round(item.seconds + compute_seconds + time.perf_counter() - start, 3),
        model=names[0], device=names[1],
    )


def _run(jobs: list[Job], overwrite: bool, report: Callable[[FileResult], None], batch_size: int,
         prefetch: int, load: Callable[[Job], _Loaded], compute: Callable[[list[_Loaded]], list],
         write: Callable[[_Loaded, object, float], FileResult], names: tuple[str, str],
         on_result: Callable[[FileResult], None] | None, summary: Summary) -> Summary:
    """The shared skeleton: skip done outputs, prefetch reads, compute in chunks, write behind."""
    started = time.perf_counter()

    def record(result: FileResult) -> None:
        summary.results.append(result)
        report(result)
        if on_result:
            on_result(result)

    def fail(job: Job, error: BaseException, seconds: float = 0.0) -> None:
        record(FileResult(str(job.source), str(job.output), "failed", error=str(error) or repr(error),
                          seconds=round(seconds, 3), model=names[0], device=names[1]))

    todo = []
    for job in jobs:
        if job.output.exists() and not overwrite:
            record(FileResult(str(job.source), str(job.output), "skipped"))
        else:
            todo.append(job)

    writes: list[tuple[Job, Future]] = []
    with ThreadPoolExecutor(2, "restore-read") as readers, \
            ThreadPoolExecutor(2, "restore-write") as writers:
        chunk: list[_Loaded] = []

        def flush() -> None:
            if not chunk:
                return
            start = time.perf_counter()
            try:
                outputs = compute(chunk)
            except Exception as exc:  # noqa: BLE001 - one bad batch must not end the run
                for c in chunk:
                    fail(c.job, exc)
                chunk.clear()
                return
            share = (time.perf_counter() - start) / len(chunk)
            for c, out in zip(chunk, outputs, strict=True):
                writes.append((c.job, writers.submit(write, c, out, share)))
            chunk.clear()
            _drain(writes, record, fail, block=False)

        for job, future in _prefetch(todo, load, prefetch, readers):
            try:
                chunk.append(future.result())
            except (ImageError, OSError, ValueError, MemoryError) as exc:
                fail(job, exc)
            if len(chunk) >= batch_size or sum(c.picture.pixels.shape[0] * c.picture.pixels.shape[1]
                                               for c in chunk) >= CHUNK_PIXELS:
                flush()  # a 24 MP scan goes alone: its windows batch well, and memory stays flat
        flush()
        _drain(writes, record, fail, block=True)
    summary.seconds = time.perf_counter() - started
    return summary


def _find_damage(chunk: list[_Loaded], detector: Detector, dilate: int) -> None:
    """Fill in the masks the files did not come with."""
    todo = [c for c in chunk if c.mask is None]
    if todo:
        for c, mask in zip(todo, detector.detect([c.picture.pixels for c in todo]), strict=True):
            c.mask = grow_mask(mask, dilate)


def restore_images(
    source: str,
    out_dir: Path,
    inpainter: Inpainter,
    options: ImagesOptions | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
    detector: Detector | None = None,
) -> Summary:
    """Repair every image that ``source`` names into ``out_dir``; see the module docstring.

    Masks come from ``options.masks`` or, for images without one, from ``detector``.
    Raises ``UsageError`` (before touching any file) for bad arguments.
    """
    options = options or ImagesOptions()
    jobs = plan_jobs(source, out_dir, masks=options.masks, output_format=options.output_format,
                     shard=options.shard)
    if on_plan:
        on_plan(len(jobs))
    given_dilate = options.dilate if options.dilate is not None else 0
    found_dilate = options.dilate if options.dilate is not None else DETECTED_DILATE
    same_format = options.output_format is None
    names = model_names(inpainter, detector)

    def compute(chunk: list[_Loaded]) -> list[np.ndarray | None]:
        if detector is not None:
            _find_damage(chunk, detector, found_dilate)
        todo = [c for c in chunk if c.mask.any() or not same_format]  # type: ignore[union-attr]
        repaired = inpainter.repair([c.picture.pixels for c in todo], [c.mask for c in todo],
                                    [given_dilate if c.job.mask is not None else found_dilate for c in todo])
        by_id = {id(c): r for c, r in zip(todo, repaired, strict=True)}
        return [by_id.get(id(c)) for c in chunk]

    with report_lines(options.report) as report:
        return _run(
            jobs, options.overwrite, report, options.batch_size, options.prefetch,
            load=lambda job: _load(job, given_dilate, need_mask=detector is None), compute=compute,
            write=lambda item, pixels, secs: _write_repaired(item, pixels, options, secs, names),
            names=names, on_result=on_result, summary=Summary(detected=detector is not None),
        )


def detect_images(
    source: str,
    out_dir: Path,
    detector: Detector,
    options: DetectOptions | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> Summary:
    """A damage mask (PNG, white = damage) for every image ``source`` names, mirrored under ``out_dir``."""
    options = options or DetectOptions()
    jobs = plan_jobs(source, out_dir, output_format="png", shard=options.shard)
    if on_plan:
        on_plan(len(jobs))

    def compute(chunk: list[_Loaded]) -> list[None]:
        _find_damage(chunk, detector, 0)
        return [None] * len(chunk)

    names = (f"detector:{detector.model_name}", str(detector.device))
    with report_lines(options.report) as report:
        return _run(
            jobs, options.overwrite, report, options.batch_size, options.prefetch,
            load=lambda job: _load(job, 0, need_mask=False), compute=compute,
            write=lambda item, _, secs: _write_detected(item, options, secs, names),
            names=names, on_result=on_result,
            summary=Summary(verb="detected", detected=True, check_with="--overlay DIR"),
        )


@contextmanager
def report_lines(path: Path | None) -> Iterator[Callable[[FileResult], None]]:
    """A writer of one JSON line per result, flushed each time so a crash keeps what was written."""
    if path is None:
        yield lambda result: None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        def write(result: FileResult) -> None:
            fh.write(json.dumps(asdict(result)) + "\n")
            fh.flush()

        yield write


def model_names(inpainter: Inpainter, detector: Detector | None) -> tuple[str, str]:
    """(model, device) as reports name them."""
    model = inpainter.model_name
    if detector is not None:
        model += f"+detector:{detector.model_name}"
    return model, str(inpainter.device)


def _drain(writes: list[tuple[Job, Future]], record: Callable[[FileResult], None],
           fail: Callable[[Job, BaseException], None], block: bool, keep: int = WRITES_AHEAD) -> None:
    """Report finished writes in submission order; wait for the oldest while more than ``keep``
    are queued (each holds a repaired image); with ``block``, wait for all of them."""
    while writes and (block or writes[0][1].done() or len(writes) > keep):
        job, future = writes.pop(0)
        try:
            record(future.result())
        except Exception as exc:  # noqa: BLE001 - a failed write is that file's error only
            fail(job, exc)
