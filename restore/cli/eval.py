"""``restore eval``: score the inpainting model against classical fills, or the damage detector,
on photos with known ground truth."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from restore.cli.common import detector_options, device_options, fail_usage, make_detector, make_inpainter


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


@click.command("eval")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--task", type=click.Choice(["inpaint", "detect"]), default="inpaint", show_default=True,
              help="inpaint: fills against Telea/NS/PatchMatch. detect: the damage detector's "
                   "precision/recall per damage type and false alarms on the clean photos.")
@click.option("--types", default="scratch,dust,hair,crease,tear,stain,hole,mixed", show_default=True,
              help="--task detect: damage types, comma-separated.")
@click.option("--classes", default="thin,medium,thick", show_default=True,
              help="Mask classes, comma-separated: thin, medium, thick, scratch, dust.")
@click.option("--size", type=click.IntRange(64, 4096), default=512, show_default=True,
              help="Side of the square centre crop of each photo (smaller photos are upscaled).")
@click.option("--baselines", default="telea,ns,patchmatch", show_default=True,
              help="Classical fills to compare with, comma-separated; '' for none.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("restore-eval"), show_default=True,
              help="Folder for results.json and the montages.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds masks, hole noise and KID crops.")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Only the first N photos (sorted by path).")
@device_options
@detector_options
def eval_command(data_dir: Path, task: str, types: str, classes: str, size: int, baselines: str,
                 out_dir: Path, seed: int,
                 limit: int | None, model: str | None, device: str, precision: str, batch_size: int,
                 tile: int, grain: float, fill: str, refiner: str, classical_thin: float,
                 detector: str | None, sensitivity: float,
                 detector_views: int | None) -> None:
    """Score the model against classical fills on DATA_DIR, a folder of undamaged photos.

    Each photo is centre-cropped, given a seeded mask per class, and filled by every method from
    the same input; PSNR, SSIM, ST-LPIPS, KID and FID compare the fills with the original.
    With --task detect, seeded synthetic damage is painted over each photo at its own size and
    the detector's masks are scored against it.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from restore.eval import MissingPackage
    from restore.eval.runner import evaluate, format_table
    from restore.io.discover import UsageError
    from restore.io.images import ImageError

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    tasks: dict[str, int] = {}

    def progress(cls: str, done: int, total: int) -> None:
        if cls not in tasks:
            tasks[cls] = bar.add_task(f"eval {cls}", total=total)
        bar.update(tasks[cls], completed=done)

    try:
        if task == "detect":
            from restore.eval.detection import evaluate_detector, format_detect_table

            found = make_detector(detector, device, sensitivity, batch_size, detector_views)
            with bar:
                report = evaluate_detector(data_dir, found, types=_names(types), seed=seed, out_dir=out_dir,
                                           limit=limit, progress=progress)
            Console(width=max(100, Console().width)).print(format_detect_table(report))
            click.echo(f"results: {out_dir / 'results.json'}")
            return
        inpainter = make_inpainter(model, device, precision, batch_size, tile, grain, fill, refiner,
                                   classical_thin)
        with bar:
            report = evaluate(data_dir, inpainter, classes=_names(classes), size=size,
                              baselines=_names(baselines), seed=seed, out_dir=out_dir, limit=limit,
                              progress=progress)
    except MissingPackage as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (ValueError, UsageError, ImageError) as exc:
        fail_usage(str(exc))
    Console(width=max(120, Console().width)).print(format_table(report))
    click.echo(f"results: {out_dir / 'results.json'}")
