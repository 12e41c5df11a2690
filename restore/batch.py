"""The batch job behind ``restore images``: files in, repaired files out, nothing lost.

Reading and decoding run on a prefetch thread pool, encoding and writing on another, so the
model is rarely waiting for JPEG work. Images are handed to the engine a few at a time, and
the engine batches their windows together. A file that fails gets one error line and the
batch goes on; outputs that already exist are skipped, so rerunning after a crash resumes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from restore.inpaint.engine import Inpainter
from restore.io.discover import Job, plan_jobs
from restore.io.images import ImageError, Picture, read_image, read_mask, write_image
from restore.io.preview import write_comparison, write_mask


@dataclass
class ImagesOptions:
    """Everything ``restore images`` can be told, with the CLI's defaults."""

    masks: Path | None = None
    dilate: int = 0
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

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def exit_code(self) -> int:
        return 1 if self.count("failed") else 0

    def line(self) -> str:
        done = self.count("ok")
        rate = done / self.seconds if self.seconds > 0 else 0.0
        return (f"restored {done}, skipped {self.count('skipped')}, failed {self.count('failed')} "
                f"in {self.seconds:.1f} s ({rate:.2f} images/s)")


@dataclass
class _Loaded:
    job: Job
    picture: Picture
    mask: np.ndarray
    seconds: float


def grow_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate by ``pixels`` with a round kernel: repairs catch the soft edges of damage."""
    if pixels <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _load(job: Job, options: ImagesOptions) -> _Loaded:
    start = time.perf_counter()
    picture = read_image(job.source)
    if job.mask is None:
        raise ImageError("no mask for this image (give --masks; the damage detector is not built yet)")
    mask = grow_mask(read_mask(job.mask, picture.size), options.dilate)
    return _Loaded(job, picture, mask, time.perf_counter() - start)


def _prefetch(jobs: list[Job], options: ImagesOptions,
              pool: ThreadPoolExecutor) -> Iterator[tuple[Job, Future]]:
    """Yield (job, future) in order while up to ``options.prefetch`` decodes run ahead."""
    pending: list[tuple[Job, Future]] = []
    it = iter(jobs)
    for job in it:
        pending.append((job, pool.submit(_load, job, options)))
        if len(pending) >= options.prefetch:
            break
    while pending:
        yield pending.pop(0)
        nxt = next(it, None)
        if nxt is not None:
            pending.append((nxt, pool.submit(_load, nxt, options)))


def _write(item: _Loaded, pixels: np.ndarray, options: ImagesOptions, compute_seconds: float,
           inpainter: Inpainter) -> FileResult:
    start = time.perf_counter()
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
        model=inpainter.model_name, device=str(inpainter.device),
    )


def restore_images(
    source: str,
    out_dir: Path,
    inpainter: Inpainter,
    options: ImagesOptions | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> Summary:
    """Repair every image that ``source`` names into ``out_dir``; see the module docstring.

    Raises ``UsageError`` (before touching any file) for bad arguments.
    """
    options = options or ImagesOptions()
    started = time.perf_counter()
    jobs = plan_jobs(source, out_dir, masks=options.masks, output_format=options.output_format,
                     shard=options.shard)
    if on_plan:
        on_plan(len(jobs))
    summary = Summary()
    report = open(options.report, "w") if options.report else None  # noqa: SIM115

    def record(result: FileResult) -> None:
        summary.results.append(result)
        if report:
            report.write(json.dumps(asdict(result)) + "\n")
            report.flush()
        if on_result:
            on_result(result)

    def fail(job: Job, error: BaseException, seconds: float = 0.0) -> None:
        record(FileResult(str(job.source), str(job.output), "failed", error=str(error) or repr(error),
                          seconds=round(seconds, 3), model=inpainter.model_name,
                          device=str(inpainter.device)))

    todo = []
    for job in jobs:
        if job.output.exists() and not options.overwrite:
            record(FileResult(str(job.source), str(job.output), "skipped"))
        else:
            todo.append(job)

    writes: list[tuple[Job, Future]] = []
    try:
        with ThreadPoolExecutor(2, "restore-read") as readers, \
                ThreadPoolExecutor(2, "restore-write") as writers:
            chunk: list[_Loaded] = []

            def flush() -> None:
                if not chunk:
                    return
                start = time.perf_counter()
                try:
                    outputs = inpainter.repair([c.picture.pixels for c in chunk], [c.mask for c in chunk])
                except Exception as exc:  # noqa: BLE001 - one bad batch must not end the run
                    for c in chunk:
                        fail(c.job, exc)
                    chunk.clear()
                    return
                share = (time.perf_counter() - start) / len(chunk)
                for c, pixels in zip(chunk, outputs, strict=True):
                    writes.append((c.job, writers.submit(_write, c, pixels, options, share, inpainter)))
                chunk.clear()
                _drain(writes, record, fail, block=False)

            for job, future in _prefetch(todo, options, readers):
                try:
                    chunk.append(future.result())
                except (ImageError, OSError, ValueError, MemoryError) as exc:
                    fail(job, exc)
                if len(chunk) >= options.batch_size:
                    flush()
            flush()
            _drain(writes, record, fail, block=True)
    finally:
        if report:
            report.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _drain(writes: list[tuple[Job, Future]], record: Callable[[FileResult], None],
           fail: Callable[[Job, BaseException], None], block: bool) -> None:
    """Report finished writes in submission order; with ``block``, wait for all of them."""
    while writes and (block or writes[0][1].done()):
        job, future = writes.pop(0)
        try:
            record(future.result())
        except Exception as exc:  # noqa: BLE001 - a failed write is that file's error only
            fail(job, exc)
