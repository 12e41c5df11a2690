"""Options and helpers shared by the commands that run the model."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn

import click


def fail_usage(message: str) -> NoReturn:
    """Print a usage error and exit 2, as Click does for its own."""
    raise click.UsageError(message)


def run_options(outputs: str = "outputs", report_fields: str = "path, status, error, damaged %, seconds, "
                "model, device") -> Callable[[Callable], Callable]:
    """--overwrite, --shard, --report: how a batch command resumes, splits and reports."""
    from pathlib import Path

    options = [
        click.option("--overwrite", is_flag=True,
                     help=f"Redo {outputs} that already exist (default: skip them)."),
        click.option("--shard", metavar="K/N|auto", default=None,
                     help="Process a deterministic 1/N of the inputs (K = 1..N), to split work across "
                          "machines. 'auto' takes K/N from a SLURM job array or a Kubernetes Indexed Job "
                          "('auto/N' or RESTORE_SHARDS=N gives N there)."),
        click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help=f"Write one JSON line per input ({report_fields})."),
    ]

    def decorate(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def device_options(func: Callable | None = None, *, fill: str = "realistic",
                   classical: float | None = None) -> Callable:
    """--model, --device, --precision, --batch-size, --tile, --grain, --fill, --refiner,
    --classical-thin.

    ``fill``: the command's default fill (``@device_options(fill="smooth")`` for video, where
    propagation supplies most pixels and per-frame patch synthesis would cost speed and flicker).
    ``classical``: the command's default --classical-thin (None: the engine's)."""
    if func is None:
        return functools.partial(device_options, fill=fill, classical=classical)
    from restore.inpaint.grain import GRAIN_STRENGTH
    from restore.inpaint.windows import CLASSICAL_DEPTH

    options = [
        click.option("--model", default=None, metavar="PATH",
                     help="Model weights (default: the model shipped with restore)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto",
                     show_default=True, help="auto: fp16 on GPU; bf16 on CPUs with native bf16, else fp32."),
        click.option("--batch-size", type=click.IntRange(1, 256), default=4, show_default=True,
                     help="Windows per model call; images are also read and batched this many at a time."),
        click.option("--tile", type=click.IntRange(128, 4096), default=512, show_default=True,
                     help="Largest window side the model sees at once."),
        click.option("--grain", type=click.FloatRange(0.0, 2.0), default=GRAIN_STRENGTH, show_default=True,
                     help="Carry the photo's own fine texture (film grain, noise, fur, foliage) into "
                          "the edges of each repair, so a fill does not show as a smooth smear; 0: fills "
                          "as the model makes them."),
        click.option("--fill", type=click.Choice(["smooth", "realistic"]), default=fill,
                     show_default=True,
                     help="realistic: the photo's own patches supply the texture of the holes, the "
                          "network's fill guides where they go (looks like the photo, not a smear). "
                          "smooth: the network's fill alone (a little better PSNR/SSIM, several times "
                          "faster)."),
        click.option("--refiner", default="default", show_default=True, metavar="PATH",
                     help="With --fill realistic: a network that corrects the patch fill (seams, colour); "
                          "'default' is the shipped one where there is one, 'none' none."),
        click.option("--classical-thin", type=click.FloatRange(0.0, 64.0),
                     default=CLASSICAL_DEPTH if classical is None else classical,
                     show_default=True, metavar="PX",
                     help="Damage at most PX px from intact picture (dust specks, hairlines up to about "
                          "2 x PX wide) is filled by OpenCV's Navier-Stokes inpainting instead of the "
                          "network, with the photo's grain on top: several times faster on dusty scans. "
                          "0: the network everywhere."),
    ]
    for option in reversed(options):
        func = option(func)
    return functools.wraps(func)(func)


def detector_options(func: Callable | None = None, *, views: int | None = None) -> Callable:
    """--detector, --sensitivity, --detector-views.

    ``views``: the command's default --detector-views (None: what the weights file says)."""
    if func is None:
        return functools.partial(detector_options, views=views)
    default_views = ("what its weights say, 3 for the shipped one" if views is None
                     else f"{views} here; photos: what its weights say, 3 for the shipped one")
    options = [
        click.option("--detector", default=None, metavar="PATH",
                     help="Damage detector weights (default: the detector shipped with restore, also "
                          "called 'preview'). It finds most bright scratches and dust, fewer dark or soft "
                          "ones and about half of large damage, and flags under 0.1% of a clean photo's "
                          "pixels: check what it found with --compare or --save-masks (docs/MODEL.md)."),
        click.option("--sensitivity", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
                     help="Higher finds fainter damage but flags more that is not; lower the opposite."),
        click.option("--detector-views", type=click.IntRange(1, 4), default=views,
                     help="Views of each tile the detector averages (as is, transposed, mirrored, upside "
                          f"down) [default: {default_views}]. Fewer are faster "
                          "and flag more of a clean photo; each count has its own calibrated threshold."),
    ]
    for option in reversed(options):
        func = option(func)
    return functools.wraps(func)(func)


def make_detector(model: str | None, device: str, sensitivity: float, batch_size: int,
                  views: int | None = None):
    """Load the detector once, turning a bad --detector or --device into a usage error (exit 2)."""
    from restore.detect.detector import Detector
    from restore.model.weights import WeightsError

    try:
        return Detector(model, device=device, sensitivity=sensitivity, batch_size=batch_size, views=views)
    except (WeightsError, ValueError) as exc:
        fail_usage(str(exc))


def make_inpainter(model: str | None, device: str, precision: str, batch_size: int, tile: int,
                   grain: float, fill: str = "realistic", refiner: str | None = "default",
                   classical_thin: float | None = None):
    """Load the model once, turning a bad --model or --device into a usage error (exit 2)."""
    from restore.inpaint.engine import Inpainter
    from restore.model.weights import WeightsError

    if tile % 64:
        fail_usage("--tile must be a multiple of 64")
    try:
        return Inpainter(model, device=device, precision=precision, batch_size=batch_size, tile=tile,
                         grain=grain, fill=fill, refiner=refiner, classical_depth=classical_thin)
    except (WeightsError, ValueError) as exc:
        fail_usage(str(exc))
