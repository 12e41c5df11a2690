"""``restore images``: repair a file, folder or glob of photos into an output folder."""

from __future__ import annotations

import sys
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


@click.command("images")
@click.argument("source", metavar="IN")
@click.argument("out_dir", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@click.option("--masks", type=click.Path(exists=True, path_type=Path), default=None,
              help="Folder of masks matched by relative path and stem, or one mask for every image. "
                   "White (non-zero) = repair. Without it the damage detector finds the damage.")
@click.option("--dilate", type=click.IntRange(0, 256), default=None,
              help="Grow masks by this many pixels to catch the soft edges of damage "
                   "[default: 0 for --masks, 2 for detected masks].")
@click.option("--format", "output_format", type=click.Choice(["png", "jpeg", "tiff", "bmp", "webp"]),
              default=None, help="Output format (default: the input's own).")
@click.option("--jpeg-quality", type=click.IntRange(1, 100), default=95, show_default=True)
@run_options()
@click.option("--save-masks", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the masks used, mirrored under this folder.")
@click.option("--compare", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write side-by-side before/after PNGs under this folder.")
@device_options
@detector_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary; errors still go to stderr.")
def images_command(source: str, out_dir: Path, masks: Path | None, dilate: int | None,
                   output_format: str | None, jpeg_quality: int, overwrite: bool, shard: str | None,
                   report: Path | None,
                   save_masks: Path | None, compare: Path | None, model: str | None, device: str,
                   precision: str, batch_size: int, tile: int, grain: float, fill: str, refiner: str,
                   classical_thin: float, detector: str | None,
                   sensitivity: float, detector_views: int | None, quiet: bool) -> None:
    """Repair the damaged areas of every photo in IN (file, folder or glob) into folder OUT.

    Masks come from --masks or, without it, from the damage detector. Pixels outside the masks
    are written back unchanged, and a photo with nothing to repair is copied as it is; format,
    bit depth, alpha, ICC profile and EXIF are kept. Exit status: 0 all good, 1 some files failed,
    2 usage error.
    """
    from restore.batch import ImagesOptions, restore_images
    from restore.cli.progress import BatchProgress
    from restore.io.discover import UsageError

    options = ImagesOptions(masks=masks, dilate=dilate, output_format=output_format,
                            jpeg_quality=jpeg_quality, overwrite=overwrite, shard=shard, report=report,
                            save_masks=save_masks, compare=compare, batch_size=batch_size)
    inpainter = make_inpainter(model, device, precision, batch_size, tile, grain, fill, refiner,
                               classical_thin)
    found = None if masks is not None else make_detector(detector, device, sensitivity, batch_size,
                                                         detector_views)
    try:
        with BatchProgress(quiet=quiet) as progress:
            summary = restore_images(source, out_dir, inpainter, options,
                                     on_result=progress.result, on_plan=progress.plan, detector=found)
    except UsageError as exc:
        fail_usage(str(exc))
    if not quiet:
        click.echo(summary.line(), err=True)
    sys.exit(summary.exit_code)
