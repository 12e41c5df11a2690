"""``restore detect``: write damage masks for a file, folder or glob of photos."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from restore.cli.common import detector_options, fail_usage, make_detector, run_options


@click.command("detect")
@click.argument("source", metavar="IN")
@click.argument("out_dir", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@click.option("--overlay", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the photos with the detected damage tinted red, mirrored under this folder.")
@run_options("masks")
@detector_options
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("--batch-size", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Images read and run together.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary; errors still go to stderr.")
def detect_command(source: str, out_dir: Path, overlay: Path | None, overwrite: bool, shard: str | None,
                   report: Path | None, detector: str | None, sensitivity: float,
                   detector_views: int | None, device: str, batch_size: int, quiet: bool) -> None:
    """Find scratches, dust, tears, stains and holes in every photo in IN; write masks to OUT.

    One PNG per image, same size, white = damage, folder structure mirrored. Exit status:
    0 all good, 1 some files failed, 2 usage error.
    """
    from restore.batch import DetectOptions, detect_images
    from restore.cli.progress import BatchProgress
    from restore.io.discover import UsageError

    options = DetectOptions(overlay=overlay, overwrite=overwrite, shard=shard, report=report,
                            batch_size=batch_size)
    found = make_detector(detector, device, sensitivity, batch_size, detector_views)
    try:
        with BatchProgress(quiet=quiet, label="detecting") as progress:
            summary = detect_images(source, out_dir, found, options,
                                    on_result=progress.result, on_plan=progress.plan)
    except UsageError as exc:
        fail_usage(str(exc))
    if not quiet:
        click.echo(summary.line(), err=True)
    sys.exit(summary.exit_code)
