"""``restore video``: repair clips, folders of clips and frame sequences, audio kept, no flicker."""

from __future__ import annotations

import sys
import time
from fractions import Fraction
from pathlib import Path

import click

from restore.cli.common import (
    detector_options,
    device_options,
    fail_usage,
    make_detector,
    make_inpainter,
    run_options,
)
from restore.inpaint.windows import VIDEO_CLASSICAL_DEPTH
from restore.video.masks import DETECTOR_VIEWS as VIDEO_DETECTOR_VIEWS


class VideoProgress:
    """One bar per clip: frames done, frames/s and ETA; errors and warnings as single lines."""

    def __init__(self, quiet: bool = False) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True, quiet=quiet, highlight=False)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                 console=self.console)
        self.task = None
        self.current = None
        self.started = 0.0
        self.clips = 0
        self.total_clips = 0

    def __enter__(self) -> VideoProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def plan(self, jobs: list) -> None:
        self.total_clips = len(jobs)

    def frame(self, job, done: int, total: int | None) -> None:
        if job is not self.current:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.clips += 1
            self.current, self.started = job, time.perf_counter()
            name = job.source.name if len(job.source.name) <= 30 else job.source.name[:27] + "..."
            label = f"{self.clips}/{self.total_clips} {name}"
            self.task = self.progress.add_task(label, total=total, rate="")
        speed = done / max(time.perf_counter() - self.started, 1e-6)
        self.progress.update(self.task, completed=done, total=max(total or 0, done) or None,
                             rate=f"{speed:.1f} frames/s")

    def result(self, result) -> None:
        from rich.markup import escape

        if self.task is not None and result.status == "ok":
            frames = getattr(result, "frames", 0)
            self.progress.update(self.task, completed=frames, total=frames)
        out = self.errors if self.console.quiet else self.progress.console
        if result.status == "failed":
            out.print(f"error: {escape(result.path)}: {escape(result.error or 'failed')}", soft_wrap=True)
        for warning in getattr(result, "warnings", []) or []:
            out.print(f"warning: {escape(result.path)}: {escape(warning)}", soft_wrap=True)


def _fps(value: str | None) -> Fraction | None:
    if value is None:
        return None
    try:
        fps = Fraction(value)
    except (ValueError, ZeroDivisionError):
        fail_usage(f"--fps must be a number or a fraction such as 24000/1001, got {value!r}")
    if fps <= 0:
        fail_usage("--fps must be positive")
    return fps


@click.command("video")
@click.argument("sources", metavar="IN...", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="For one input: the output video (by its suffix) or frames folder. For several: a folder "
                   "they are mirrored into. Default: beside each input, NAME.restored.EXT.")
@click.option("--mask", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="One mask for every frame (a logo, a date stamp). White (non-zero) = repair.")
@click.option("--masks", type=click.Path(exists=True, path_type=Path), default=None,
              help="One mask per frame: a folder of images in frame order, or a mask video. For several "
                   "inputs, a subfolder (or video) per input named like it.")
@click.option("--dilate", type=click.IntRange(0, 256), default=None,
              help="Grow masks by this many pixels [default: 0 for given masks, 2 for detected ones].")
@click.option("--save-masks", type=click.Path(path_type=Path), default=None,
              help="Also write the masks used: a video if the path has a video suffix, else PNG frames "
                   "(which --masks reads back).")
@click.option("--to", type=click.Choice(["video", "frames"]), default=None,
              help="Write a video or a folder of PNG frames [default: what the input is].")
@click.option("--codec", default=None, help="ffmpeg video encoder [default: libx264; libvpx-vp9 for .webm].")
@click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True,
              help="Quality for x264/x265/VP9/AV1: lower is better and larger.")
@click.option("--fps", "fps_text", default=None, metavar="RATE",
              help="Frame rate for frame sequences written as video [default: 24].")
@click.option("--radius", type=click.IntRange(0, 8), default=2, show_default=True,
              help="Neighbouring frames on each side that hidden pixels are copied from.")
@click.option("--cues", default="overlay,specks,scratches", show_default=True,
              help="Temporal cues added to the detector's masks, comma-separated: overlay (burnt-in "
                   "text and logos), specks (dust in one frame), scratches (upright film scratches "
                   "the scene moves under); or all, or none.")
@click.option("--per-frame", is_flag=True,
              help="Repair each frame on its own (no propagation; flickers). For comparison.")
@run_options(report_fields="path, status, error, frames, damaged %, warnings, ...")
@device_options(fill="smooth", classical=VIDEO_CLASSICAL_DEPTH)
@detector_options(views=VIDEO_DETECTOR_VIEWS)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary; errors still go to stderr.")
def video_command(sources: tuple[str, ...], output: Path | None, mask: Path | None, masks: Path | None,
                  dilate: int | None, save_masks: Path | None, to: str | None, codec: str | None, crf: int,
                  fps_text: str | None, radius: int, cues: str, per_frame: bool, overwrite: bool,
                  shard: str | None, report: Path | None, model: str | None, device: str, precision: str,
                  batch_size: int, tile: int, grain: float, fill: str, refiner: str,
                  classical_thin: float, detector: str | None,
                  sensitivity: float, detector_views: int | None, quiet: bool) -> None:
    """Repair damaged video: clips, folders of clips, or folders of numbered frames (IN...).

    Writes NAME.restored.EXT beside each input (or -o), same size, frame rate and frame count,
    audio copied unchanged. Hidden pixels are copied from neighbouring frames along the motion;
    the model fills only what no frame shows. Masks come from --mask, --masks or the damage
    detector plus temporal cues. Exit status: 0 all good, 1 some inputs failed, 2 usage error.
    """
    from restore.io.discover import UsageError
    from restore.video.job import RepairOptions, VideoOptions, restore_videos
    from restore.video.masks import CUES

    if mask is not None and masks is not None:
        fail_usage("give --mask or --masks, not both")
    chosen = tuple(c.strip() for c in cues.split(",") if c.strip())
    if chosen in {("none",), ()}:
        chosen = ()
    elif chosen == ("all",):
        chosen = CUES
    elif any(c not in CUES for c in chosen):
        fail_usage(f"--cues takes any of {', '.join(CUES)}, or all, or none; got {cues!r}")
    options = VideoOptions(
        output=output, to=to, mask=mask, masks=masks, save_masks=save_masks, codec=codec, crf=crf,
        fps=_fps(fps_text), overwrite=overwrite, shard=shard, report=report,
        repair=RepairOptions(radius=radius, batch_size=batch_size, dilate=dilate, cues=chosen,
                             temporal=not per_frame),
    )
    inpainter = make_inpainter(model, device, precision, batch_size, tile, grain, fill, refiner,
                               classical_thin)
    found = None
    if mask is None and masks is None:
        found = make_detector(detector, device, sensitivity, batch_size, detector_views)
    try:
        with VideoProgress(quiet=quiet) as progress:
            summary = restore_videos(list(sources), inpainter, options, detector=found,
                                     on_result=progress.result, on_plan=progress.plan,
                                     on_frame=progress.frame)
    except UsageError as exc:
        fail_usage(str(exc))
    if not quiet:
        click.echo(summary.line(), err=True)
    sys.exit(summary.exit_code)
