"""``restore train``: train or fine-tune the inpainting GAN, or the damage detector, on a folder of photos.

Also runs as one process per GPU under torchrun; see the command's help.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("train", epilog="""\b
Several GPUs, one process each (DistributedDataParallel):
  torchrun --standalone --nproc_per_node=4 -m restore train DATA --out model.pt
--batch-size is then per GPU. Rank 0 writes the checkpoint, model, samples and
metrics, in the same format as a one-device run, so either resumes the other.""")
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--task", type=click.Choice(["inpaint", "detect"]), default="inpaint", show_default=True,
              help="inpaint: the repair GAN. detect: the damage detector (synthetic damage on DATA, "
                   "plus your own masks with --labels).")
@click.option("--labels", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="--task detect only: masks of real damage for photos in DATA, matched by relative "
                   "path and stem (white = damage).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the trained model (EMA weights, updated at every checkpoint).")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Checkpoints, sample grids and metrics.jsonl. Default: OUT's name + '-train/'.")
@click.option("--resume", is_flag=True, help="Continue from WORK_DIR/checkpoint.pt if present.")
@click.option("--init", "init", type=str, default=None,
              help="Fine-tune from a model: a path, or 'default' for the shipped one (with --task "
                   "detect: the shipped detector, also called 'preview').")
@click.option("--steps", type=int, default=100_000, show_default=True)
@click.option("--minutes", type=float, default=None, help="Stop after this much time.")
@click.option("--batch-size", type=int, default=None,
              help="Crops per step, per process: under torchrun each GPU takes this many. "
                   "[default: 8 inpaint, 16 detect]")
@click.option("--crop", type=int, default=256, show_default=True, help="Training crop side.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True)
@click.option("--sample-every", type=int, default=250, show_default=True,
              help="Write a sample grid (input | mask | output | truth) every N steps.")
@click.option("--log-every", type=int, default=20, show_default=True,
              help="Append losses to WORK_DIR/metrics.jsonl every N steps.")
@click.option("--base-channels", type=int, default=None,
              help="Generator width [default: 32]. With --init, or --resume from a checkpoint, "
                   "the model's own shape wins.")
@click.option("--blocks", type=int, default=None,
              help="Generator depth in FFC residual blocks [default: 6]. Same rule as --base-channels. "
                   "--task detect: context blocks at 1/16 resolution [default: 0]; with --init a "
                   "detector with fewer grows to this many, new blocks starting as identity.")
@click.option("--tophat", type=click.IntRange(0, 31), default=0, show_default=True,
              help="--task detect: feed the network the white and black top-hat of the luminance over "
                   "an N x N window beside the pixels (0: off; try 7); with --init a detector without "
                   "them grows their inputs, starting at zero weight.")
@click.option("--channel-cues", is_flag=True,
              help="--task detect: also feed the strongest top-hat over the colour channels (sees a "
                   "coloured line as bright as what it crosses); needs --tophat or an --init detector "
                   "that has it.")
@click.option("--widths", type=str, default=None,
              help="--task detect: channels at 1/4, 1/8 and 1/16 resolution, e.g. 48,96,160 "
                   "[default: 48,64,96]; with --init a narrower detector is widened, its new channels "
                   "feeding the old ones through zero weights, so it starts unchanged.")
@click.option("--axis-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="With --task detect: the share of training scratches drawn straight, level or upright, "
                   "as film scratches run (the shipped detector finds those about half as often as "
                   "slanted ones).")
@click.option("--ignore-band", type=click.IntRange(0, 8), default=0, show_default=True,
              help="With --task detect: clean pixels within N px of damage are left out of the loss, "
                   "so a line's uncertain edge does not teach the detector to doubt the line.")
@click.option("--lr", type=float, default=None,
              help="Learning rate [default: 5e-4 inpaint (the discriminator takes 0.4x), 2e-3 detect]; "
                   "on --resume it replaces the saved one, so a run can be annealed.")
@click.option("--d-warmup", type=click.IntRange(0), default=0, show_default=True,
              help="Train only the discriminator for the first N steps, the generator frozen; then "
                   "the adversarial term starts at full weight (no ramp). An experiment for fine-tunes "
                   "(--init): 400 or 1,600 such steps did not stop the drift to smooth fills that a "
                   "fine-tune of the shipped model shows (docs/experiments.md, 'discriminator warm-up').")
@click.option("--prefill/--no-prefill", default=None,
              help="Generator starts from a push-pull fill of the hole and learns a correction [default: "
                   "on for new models]. With --init, --prefill upgrades a model trained without it.")
@click.option("--padding", type=click.Choice(["zeros", "reflect"]), default=None,
              help="Generator border padding [default: zeros for new models]. With --init or --resume "
                   "it switches the model's padding and fine-tunes it into the new setting.")
@click.option("--perceptual-weight", type=float, default=0.0, show_default=True,
              help="Weight of a perceptual loss, L1 on VGG16 features (try 0.05; the network ships "
                   "in restore[eval]). Off by default: see docs/MODEL.md, Recipe.")
@click.option("--adv-weight", type=float, default=0.05, show_default=True,
              help="Weight of the adversarial term (the discriminator's say on the hole).")
@click.option("--fm-weight", type=float, default=0.0, show_default=True,
              help="Weight of discriminator feature matching (L1 between its features of the repair "
                   "and of the photo; LaMa uses it). At 1 it drew worm-like contours in large holes "
                   "(docs/MODEL.md, Recipe).")
@click.option("--r1-weight", type=float, default=0.01, show_default=True,
              help="R1 penalty on the discriminator. 0.01 lets it discriminate; at 1 it keeps it "
                   "nearly constant (the first models' recipe; see docs/MODEL.md, Recipe).")
@click.option("--hole-lowpass", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Compare the hole with the photo mainly as N x N block means (1: per pixel, the first "
                   "models' recipe). Larger leaves texture to the discriminator; see docs/MODEL.md.")
@click.option("--hole-pixel-weight", type=click.FloatRange(0, 6), default=3.0, show_default=True,
              help="With --hole-lowpass: weight of each hole pixel's own L1 (the rest of the hole's "
                   "weight 6 goes to its block mean).")
@click.option("--hole-border", type=click.FloatRange(0, 64), default=0.0, show_default=True,
              help="With --hole-lowpass: hole pixels near the border keep their full per-pixel weight, "
                   "fading over about this many pixels (0: off).")
@click.option("--fake-patches", type=click.Choice(["any", "share"]), default="share", show_default=True,
              help="Discriminator labels on a repaired image: any patch touching the hole is fake, or "
                   "each patch by its share of hole pixels.")
@click.option("--transpose", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of training crops turned on their side (x and y swapped).")
@click.option("--workers", type=click.IntRange(0, 64), default=None,
              help="Processes that make training batches ahead of the model [default: 0 on CPU, "
                   "where the model needs every core; on a GPU one per spare core, at most 8].")
@click.option("--exemplar-cache", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Train the refiner of --fill realistic instead: a generator that corrects the "
                   "exemplar stage's fills, cached in this folder by benchmarks/exemplar_cache.py "
                   "(from DATA's photos). Start it from the shipped model: --init default.")
@click.option("--refine-lowpass", type=click.IntRange(0, 64), default=0, show_default=True,
              help="With --exemplar-cache: the refiner's correction is averaged over blocks of this "
                   "many pixels, so it recolours the fills but cannot smooth their texture (try 8).")
@click.option("--diffaug", default="", show_default=False,
              help="Inpainting: DiffAugment policies for what the discriminator sees, comma-separated "
                   "from color, translation, cutout (all three for a small photo set) [default: off].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True)
def train_command(data: Path, task: str, labels: Path | None, out: Path, work_dir: Path | None,
                  resume: bool, init: str | None,
                  steps: int, minutes: float | None, batch_size: int | None, crop: int, device: str,
                  checkpoint_minutes: float, sample_every: int, log_every: int,
                  base_channels: int | None, blocks: int | None, tophat: int, channel_cues: bool,
                  widths: str | None, axis_share: float, ignore_band: int, lr: float | None, d_warmup: int,
                  prefill: bool | None, padding: str | None, perceptual_weight: float, adv_weight: float,
                  fm_weight: float, r1_weight: float,
                  hole_lowpass: int, hole_pixel_weight: float, hole_border: float, fake_patches: str,
                  transpose: float, workers: int | None, exemplar_cache: Path | None, refine_lowpass: int,
                  diffaug: str, seed: int, quiet: bool) -> None:
    """Train the inpainting GAN (or, with --task detect, the damage detector) on DATA, a folder of photos.

    Inpainting: DATA holds clean photos; masks are synthesised. Detection: synthetic damage is
    painted over DATA's photos; --labels adds your own masks of real damage.
    """
    from restore.eval import MissingPackage
    from restore.inpaint.device import pick_device
    from restore.model.generator import GeneratorConfig
    from restore.model.weights import default_weights_path
    from restore.train import distributed
    from restore.train.loop import LR_D_RATIO, TrainConfig, train
    from restore.train.progress import TrainProgress

    if crop % 8:
        raise click.BadParameter("must be a multiple of 8", param_hint="--crop")
    init_path = default_weights_path() if init == "default" else (Path(init) if init else None)
    shape = {"base_channels": base_channels, "blocks": blocks, "prefill": prefill, "padding": padding}
    shape = {k: v for k, v in shape.items() if v is not None}
    if tophat and task != "detect":
        raise click.BadParameter("only with --task detect", param_hint="--tophat")
    if tophat and tophat % 2 == 0:
        raise click.BadParameter("must be odd", param_hint="--tophat")
    if channel_cues and task != "detect":
        raise click.BadParameter("only with --task detect", param_hint="--channel-cues")
    if channel_cues and not (tophat or init or resume):
        raise click.BadParameter("needs --tophat (the cues' window)", param_hint="--channel-cues")
    if widths is not None and task != "detect":
        raise click.BadParameter("only with --task detect", param_hint="--widths")
    if d_warmup and task != "inpaint":
        raise click.BadParameter("only for the inpainting GAN", param_hint="--d-warmup")
    if labels is not None and task != "detect":
        raise click.BadParameter("only with --task detect", param_hint="--labels")
    if exemplar_cache is not None and task != "inpaint":
        raise click.BadParameter("only for the inpainting GAN", param_hint="--exemplar-cache")
    if axis_share and task != "detect":
        raise click.BadParameter("only with --task detect", param_hint="--axis-share")
    if ignore_band and task != "detect":
        raise click.BadParameter("only with --task detect", param_hint="--ignore-band")
    policies = tuple(p.strip() for p in diffaug.split(",") if p.strip())
    if policies and task != "inpaint":
        raise click.BadParameter("only for the inpainting GAN", param_hint="--diffaug")
    from restore.train.diffaug import POLICIES
    if unknown := set(policies) - set(POLICIES):
        raise click.BadParameter(f"unknown: {', '.join(sorted(unknown))} (choose from {', '.join(POLICIES)})",
                                 param_hint="--diffaug")
    if task == "detect":
        _train_detector(data, labels, out, work_dir, resume, init, steps, minutes, batch_size or 16, crop,
                        pick_device(device), checkpoint_minutes, sample_every, log_every, seed, quiet,
                        lr=lr or 2e-3, workers=workers, context=blocks, tophat=tophat,
                        channel_cues=channel_cues, widths=_parse_widths(widths), axis_share=axis_share,
                        ignore_band=ignore_band)
        return
    batch_size = batch_size or 8
    dev = distributed.local_device(pick_device(device))  # cuda:LOCAL_RANK under torchrun
    cfg = TrainConfig(
        data=data, out=out, work_dir=work_dir or out.with_name(out.stem + "-train"),
        resume=resume, init=init_path, prefill=prefill, padding=padding, steps=steps, minutes=minutes,
        batch_size=batch_size, crop=crop, device=str(dev), seed=seed, checkpoint_minutes=checkpoint_minutes,
        sample_every=sample_every, log_every=log_every, generator=GeneratorConfig(**shape),
        perceptual_weight=perceptual_weight, adv_weight=adv_weight, fm_weight=fm_weight, r1_weight=r1_weight,
        hole_lowpass=hole_lowpass, hole_pixel_weight=hole_pixel_weight, fake_patches=fake_patches,
        hole_border=hole_border, transpose=transpose, workers=workers, d_warmup_steps=d_warmup,
        exemplar_cache=exemplar_cache, refine_lowpass=refine_lowpass, diffaug=policies,
        **({"lr_g": lr, "lr_d": lr * LR_D_RATIO} if lr else {}),
    )
    distributed.init(dev)  # no-op without torchrun
    try:
        quiet = quiet or not distributed.is_main()  # one progress bar, from rank 0
        with TrainProgress(total_steps=steps, quiet=quiet) as progress:
            train(cfg, on_log=progress.update)
    except MissingPackage as exc:
        click.echo(f"error: {exc} (or train without the perceptual term: --perceptual-weight 0)", err=True)
        sys.exit(2)
    finally:
        distributed.cleanup()
    if not quiet:
        click.echo(f"model written to {out}", err=True)


def _train_detector(data: Path, labels: Path | None, out: Path, work_dir: Path | None, resume: bool,
                    init: str | None, steps: int, minutes: float | None, batch_size: int, crop: int,
                    device: object, checkpoint_minutes: float, sample_every: int, log_every: int,
                    seed: int, quiet: bool, lr: float, workers: int | None, context: int | None,
                    tophat: int, channel_cues: bool, widths: tuple[int, int, int] | None,
                    axis_share: float = 0.0, ignore_band: int = 0) -> None:
    from restore.detect.model import DetectorConfig
    from restore.detect.train import DetectTrainConfig, train_detector
    from restore.detect.weights import resolve_detector_path
    from restore.train.progress import TrainProgress

    if crop % 16:
        raise click.BadParameter("must be a multiple of 16 for the detector", param_hint="--crop")
    work_dir = work_dir or out.with_name(out.stem + "-train")
    init_path = None
    if init:
        init_path = resolve_detector_path(init)
        if not (resume and (work_dir / "checkpoint.pt").exists()):  # a resumed run keeps its shape
            _check_growth(init_path, tophat, channel_cues, widths)
    cfg = DetectTrainConfig(
        data=data, out=out, work_dir=work_dir, labels=labels,
        resume=resume, init=init_path, steps=steps, minutes=minutes, batch_size=batch_size, crop=crop,
        device=str(device), seed=seed, checkpoint_minutes=checkpoint_minutes, sample_every=sample_every,
        log_every=log_every, lr=lr, workers=workers, axis_share=axis_share, ignore_band=ignore_band,
        detector=DetectorConfig(context=context or 0, tophat=tophat, channel_cues=channel_cues,
                                **({"widths": widths} if widths else {})),
    )
    with TrainProgress(total_steps=steps, quiet=quiet) as progress:
        train_detector(cfg, on_log=progress.update)
    if not quiet:
        click.echo(f"detector written to {out}", err=True)


def _parse_widths(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) != 3 or min(widths) < 1:
        raise click.BadParameter("three positive channel counts, e.g. 48,96,160", param_hint="--widths")
    return widths  # type: ignore[return-value]


def _check_growth(init: Path, tophat: int, channel_cues: bool, widths: tuple[int, int, int] | None) -> None:
    """Usage errors for what an --init detector cannot grow into, before any training starts."""
    from restore.detect.model import DetectorConfig
    from restore.detect.weights import DETECTOR_FORMAT
    from restore.model.weights import WeightsError, read_weights

    try:
        raw = read_weights(init, DETECTOR_FORMAT, "damage detector", "optimizer")[0]
        config = DetectorConfig.from_dict(raw)
    except (WeightsError, OSError):
        return  # training reports an unreadable file itself
    if channel_cues and not (tophat or config.tophat):
        raise click.BadParameter("the --init detector has no top-hat cues: add --tophat (the cues' window)",
                                 param_hint="--channel-cues")
    if widths and any(w < v for w, v in zip(widths, config.widths, strict=True)):
        raise click.BadParameter(f"the --init detector is already {','.join(map(str, config.widths))} wide; "
                                 "a detector can be widened, not narrowed", param_hint="--widths")
