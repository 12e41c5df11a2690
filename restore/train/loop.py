"""The GAN training loop behind ``restore train``.

Designed for scarce compute: bf16 autocast where the CPU or GPU computes it natively,
channels-last, checkpoints every few minutes written atomically, and ``resume`` that
continues exactly where a killed run stopped (weights, optimisers, EMA, step count, random state).

Under torchrun it trains on several GPUs with DistributedDataParallel: each rank draws its
own crops (``batch_size`` is per rank), rank 0 alone keeps the EMA and writes checkpoints,
samples and metrics, and the files have the same format as a single-process run's.
"""

from __future__ import annotations

import copy
import json
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from restore.inpaint.device import cpu_has_fast_bf16
from restore.model.discriminator import PatchDiscriminator
from restore.model.generator import GeneratorConfig, InpaintGenerator, as_refiner, reshaped, with_prefill
from restore.model.weights import export_generator, load_generator, save_atomic
from restore.train import diffaug, distributed, losses
from restore.train.data import (
    BatchStream,
    Draw,
    batch_workers,
    load_photos,
    make_crops_batch,
    photo_draw,
    to_model_input,
)
from restore.train.exemplar_cache import cache_batch, load_cache, make_cache_batch
from restore.train.perceptual import PerceptualLoss

LR_D_RATIO = 0.4  # discriminator lr / generator lr (2e-4 / 5e-4)


@dataclass
class TrainConfig:
    data: Path
    out: Path  # exported EMA generator (what `restore images --model` takes)
    work_dir: Path  # checkpoint.pt, samples/, metrics.jsonl
    resume: bool = False
    init: Path | None = None  # fine-tune from these generator weights
    prefill: bool | None = None  # with ``init``: True upgrades a model without prefill (see with_prefill)
    padding: str | None = None  # with ``init`` or ``resume``: switch the model's border padding
    steps: int = 100_000
    minutes: float | None = None  # stop after this much wall time in this run
    batch_size: int = 8  # per rank under torchrun
    crop: int = 256
    device: str = "cpu"
    seed: int = 0
    lr_g: float = 5e-4  # on resume these replace the saved ones, so a run can be annealed
    lr_d: float = 5e-4 * LR_D_RATIO
    # Defaults: the recipe of the shipped model's last phase (docs/experiments.md, 'a model
    # soup'; there adv_weight was 0.05 in one branch and 0.01 in the other). The
    # first models' recipe was r1 1, fm 1, per-pixel hole L1, "any" fake patches, no transpose.
    # - r1_weight: on the sum of ~500 patch scores per crop, 1.0 flattens the discriminator into
    #   a near-constant (real and repaired patches scored 1.44 vs 1.42), so the adversarial and
    #   feature-matching terms have little say. At 0.01 (LaMa uses 1e-3) it discriminates.
    # - fm_weight: at 1 (LaMa's) it drew worm-like contours in large holes (docs/experiments.md,
    #   'feature matching makes worms').
    # - perceptual_weight: L1 on VGG16 features (0.05 is PConv's weight; at 1 its hole gradient
    #   is ~60x L1's). With it, colour casts were stronger in short fine-tunes (docs/experiments.md,
    #   'collapsed discriminator').
    adv_weight: float = 0.05
    fm_weight: float = 0.0
    perceptual_weight: float = 0.0
    # Share of each batch the perceptual term is measured on: an unbiased estimate of the same
    # mean at a fraction of its cost (VGG was two thirds of a CPU step at 192², batch 8).
    perceptual_share: float = 0.5
    hole_weight: float = 6.0
    # 1: per-pixel hole L1. N > 1: the hole's L1 on N x N block means, each hole pixel's own L1
    # weighted hole_pixel_weight (see losses.reconstruction_loss).
    hole_lowpass: int = 8
    hole_pixel_weight: float = 3.0
    # > 0: hole pixels within about this many px of the border keep their full per-pixel weight.
    hole_border: float = 0.0
    # Which discriminator cells a repaired image's labels call fake: "any" cell touching the hole
    # or each by its "share" of hole pixels (losses.discriminator_loss).
    fake_patches: str = "share"
    transpose: float = 0.5  # share of training crops with x and y swapped (data.sample_batch)
    r1_weight: float = 0.01
    r1_every: int = 8
    adv_warmup_steps: int = 500
    # Steps at the start that train only the discriminator, the generator frozen; then the
    # adversarial term starts at full weight (no ramp). Tried against the drift of fine-tunes
    # to smooth fills (docs/experiments.md, 'discriminator warm-up'): 400 or 1,600 such steps did not stop it.
    d_warmup_steps: int = 0
    ema_decay: float = 0.999
    checkpoint_minutes: float = 5.0
    sample_every: int = 250
    log_every: int = 20
    workers: int | None = None  # batch-making processes; None: 0 on CPU, up to 8 per GPU (data.BatchStream)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    # Train the refiner of --fill realistic (GeneratorConfig.refine) on this cache of exemplar
    # fills (restore/train/exemplar_cache.py) instead of on fresh crops of ``data``.
    exemplar_cache: Path | None = None
    refine_lowpass: int = 0  # GeneratorConfig.refine_lowpass for a new refiner
    # DiffAugment policies (restore/train/diffaug.py) applied to what the discriminator sees, so
    # it cannot memorise a small photo set; () = off, the shipped model's recipe.
    diffaug: tuple[str, ...] = ()


def training_autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast where the hardware computes bfloat16 natively, else plain fp32.

    Why not always: on a CPU without AVX512-BF16 or AMX, bf16 is emulated and a detector
    training step took 10x as long as in fp32 (15 s against 1.6 s, one AVX2 core); fp16
    without loss scaling underflows.
    """
    if device.type == "cpu":
        enabled = cpu_has_fast_bf16()
    else:
        enabled = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """Move ``ema``'s weights a ``1 - decay`` step towards ``model``'s; buffers (BatchNorm's
    running statistics) are copied, as they are averages already."""
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


class StopRequest:
    """First Ctrl-C or SIGTERM: finish the step, write a checkpoint, return. Second: stop at once.

    Only in a single process on the main thread; under torchrun the launcher owns signals.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}
        if distributed.world_size() == 1 and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@torch.no_grad()
def _check_finite(values: tuple[torch.Tensor, ...], step: int, device: torch.device) -> None:
    """Raise on a NaN or infinite loss (on any rank): its weights must not reach a checkpoint."""
    if distributed.any_rank(not all(math.isfinite(v.item()) for v in values), device):
        raise FloatingPointError(f"loss became NaN by step {step}; resume from the checkpoint")


@torch.no_grad()
def calibrated_copy(model: torch.nn.Module, draw: Draw, device: torch.device,
                    step: int, batches: int = 16, batch_size: int = 8) -> torch.nn.Module:
    """A copy of ``model`` whose BatchNorm statistics are measured anew on training crops
    (``draw(rng, n)``: n crops as model input, e.g. ``data.photo_draw``).

    The EMA generator's weights are an average over many steps, but its BatchNorm running
    statistics are the live generator's: the two don't match, which showed as a colour cast in
    holes (hole L1 on val crops 0.167 with the copied statistics, 0.136 re-measured). Re-measuring
    the statistics for the averaged weights, as SWA does, removes the mismatch.
    """
    calibrated = copy.deepcopy(model)
    norms = [m for m in calibrated.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return calibrated.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over all calibration batches
    calibrated.train()
    rng = np.random.default_rng(1_000_003 + step)  # its own stream: training's is untouched
    for _ in range(batches):
        arrays = draw(rng, batch_size)
        with training_autocast(device):
            calibrated(*(torch.from_numpy(a).to(device) for a in arrays))
    return calibrated.eval()


@torch.no_grad()
def _save_samples(generator: torch.nn.Module, path: Path, device: torch.device, images: torch.Tensor,
                  masks: torch.Tensor, *guess: torch.Tensor) -> None:
    """PNG grid, one row per sample: masked input | mask | (a refiner's given fill |) output | truth."""
    generator.eval()
    out = generator(images.to(device), masks.to(device), *(g.to(device) for g in guess)).float().cpu()
    out = out * masks + images * (1 - masks)
    masked = images * (1 - masks) + masks  # holes shown white
    given = [g * masks + images * (1 - masks) for g in guess]
    cols = [masked, masks.expand_as(images) * 2 - 1, *given, out, images]
    rows = [torch.cat([c[i] for c in cols], dim=2) for i in range(images.shape[0])]
    grid = ((torch.cat(rows, dim=1).permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid.astype(np.uint8), cv2.COLOR_RGB2BGR))


def train(cfg: TrainConfig, on_log: Callable[[dict], None] | None = None) -> dict:
    """Train until ``cfg.steps`` or ``cfg.minutes``; returns the last logged metrics."""
    device = torch.device(cfg.device)
    rank, world = distributed.rank(), distributed.world_size()
    main = rank == 0
    torch.manual_seed(cfg.seed)  # same initial weights everywhere (DDP broadcasts rank 0's anyway)
    refine = cfg.exemplar_cache is not None
    if refine:
        cache = load_cache(cfg.exemplar_cache)
        source, make, make_args = cache, make_cache_batch, (cfg.batch_size, cfg.transpose, cfg.seed, rank)

        def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
            return to_model_input(*cache_batch(cache, n, rng))
    else:
        photos = load_photos(cfg.data)
        source, make = photos, make_crops_batch
        make_args = (cfg.batch_size, cfg.crop, cfg.transpose, cfg.seed, rank)
        draw = photo_draw(photos, cfg.crop)
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = cfg.work_dir / "checkpoint.pt"

    gen_cfg = cfg.generator
    if cfg.init is not None:
        generator = load_generator(cfg.init).train()
        if cfg.prefill and not generator.config.prefill:
            generator = with_prefill(generator)
        if cfg.padding and cfg.padding != generator.config.padding:
            generator = reshaped(generator, padding=cfg.padding)
        if refine and not generator.config.refine:
            generator = as_refiner(generator, cfg.refine_lowpass)
        gen_cfg = generator.config
    else:
        if refine:
            gen_cfg = replace(gen_cfg, refine=True, refine_lowpass=cfg.refine_lowpass)
        generator = InpaintGenerator(gen_cfg)
    discriminator = PatchDiscriminator()
    perceptual = (PerceptualLoss().to(device, memory_format=torch.channels_last)
                  if cfg.perceptual_weight else None)
    shared = max(1, math.ceil(cfg.batch_size * cfg.perceptual_share))
    generator.to(device, memory_format=torch.channels_last)
    discriminator.to(device, memory_format=torch.channels_last)
    # Parameters are identical on every rank after each step, so rank 0's EMA is everyone's.
    ema = copy.deepcopy(generator).eval().requires_grad_(False) if main else None
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_g, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d, betas=(0.5, 0.99))
    step, seconds = 0, 0.0

    if cfg.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        saved = GeneratorConfig.from_dict(state["config"])
        if cfg.padding:
            saved = replace(saved, padding=cfg.padding)
        if saved != gen_cfg:
            gen_cfg = saved
            generator = InpaintGenerator(gen_cfg).to(device, memory_format=torch.channels_last)
            ema = copy.deepcopy(generator).eval().requires_grad_(False) if main else None
            opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_g, betas=(0.9, 0.99))
        generator.load_state_dict(state["generator"])
        if ema is not None:
            ema.load_state_dict(state.get("generator_ema", state["generator"]))
        discriminator.load_state_dict(state["discriminator"])
        if "opt_g" in state:  # a slim checkpoint (weights only, to travel light) restarts Adam
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
            for opt, lr in ((opt_g, cfg.lr_g), (opt_d, cfg.lr_d)):
                for group in opt.param_groups:
                    group["lr"] = lr
        step, seconds = int(state["step"]), float(state["seconds"])
        torch.manual_seed(cfg.seed + step)
    if len(set(distributed.all_gather(step))) > 1:
        raise RuntimeError("ranks resumed at different steps: every rank must see the same --work-dir")

    # Un-wrapped modules: what checkpoints hold (no "module." prefixes) and what R1 runs on.
    g_module, d_module = generator, discriminator
    if world > 1:
        if device.type == "cuda":
            # Per-GPU batches are small; SyncBatchNorm normalises over the global batch, as one GPU
            # with the whole batch would, and keeps running stats equal on all ranks. It reuses
            # the Parameter objects, so opt_g (and its resumed state) stays attached.
            g_module = generator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(generator)
        generator = distributed.wrap(generator, device)
        discriminator = distributed.wrap(discriminator, device)

    preview_rng = np.random.default_rng(12345)
    preview = [torch.from_numpy(a) for a in draw(preview_rng, 4)]

    def checkpoint() -> None:
        """Rank 0 writes; batches depend on (seed, rank, step) alone, so no sampler state is kept."""
        if ema is None:
            return
        save_atomic({
            "config": gen_cfg.to_dict(), "generator": g_module.state_dict(),
            "generator_ema": ema.state_dict(), "discriminator": d_module.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step,
            "seconds": seconds,
            "train_config": json.dumps(asdict(cfg), default=str),
        }, ckpt_path)
        export_generator(calibrated_copy(ema, draw, device, step), cfg.out,
                         meta={"step": step, "train_seconds": round(seconds), "crop": cfg.crop,
                               "data": str(cfg.exemplar_cache if refine else cfg.data)})

    run_start = time.monotonic()
    last_ckpt = time.monotonic()
    metrics: dict = {}
    window_start, window_images = time.monotonic(), 0
    generator.train()
    discriminator.train()
    stop = StopRequest()
    r1 = torch.zeros((), device=device)  # logged as its latest value (it runs every r1_every steps)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: the fastest kernels, found once
    last_losses: tuple[torch.Tensor, ...] = ()
    # A cached batch is a few array copies: no workers, which would each get the whole cache pickled.
    workers = 0 if refine and cfg.workers is None else batch_workers(cfg.workers, device.type, world)
    stream = BatchStream(make, source, make_args, step, workers)
    aug_rng = torch.Generator().manual_seed(cfg.seed + 7919 * step + rank)  # diffaug's draws
    try:
        while step < cfg.steps and not stop.requested:
            out_of_time = cfg.minutes is not None and time.monotonic() - run_start > cfg.minutes * 60
            if cfg.minutes is not None and distributed.rank0_decides(out_of_time, device):
                break
            t0 = time.monotonic()
            crops_np, masks_np, *given_np = next(stream)  # a refiner's batch also holds its given fills
            # uint8 crosses to the device (a quarter of the bytes) and becomes float there.
            real = (torch.from_numpy(crops_np).to(device, non_blocking=True).permute(0, 3, 1, 2).float()
                    / 127.5 - 1.0).contiguous(memory_format=torch.channels_last)
            mask = torch.from_numpy(masks_np).to(device, non_blocking=True)[:, None].float()
            guess = [(torch.from_numpy(g).to(device, non_blocking=True).permute(0, 3, 1, 2).float()
                      / 127.5 - 1.0).contiguous(memory_format=torch.channels_last) for g in given_np]
            d_only = step < cfg.d_warmup_steps
            adv_scale = 1.0 if cfg.d_warmup_steps else min(1.0, step / max(1, cfg.adv_warmup_steps))

            # One draw of augmentation serves the whole step (diffaug.py says why); off, the identity.
            aug = (diffaug.draw(real.shape[0], real.shape[2], real.shape[3], device, cfg.diffaug, aug_rng)
                   if cfg.diffaug else None)
            seen = aug if aug is not None else (lambda x: x)
            mask_seen = aug.geometry(mask) if aug is not None else mask

            # Discriminator step.
            with training_autocast(device):
                with torch.set_grad_enabled(not d_only):
                    fake = generator(real, mask, *guess)
                comp = fake * mask + real * (1 - mask)
                real_score, real_feats = discriminator(seen(real))
                fake_score, _ = discriminator(seen(comp.detach()))
                loss_d = losses.discriminator_loss(real_score.float(), fake_score.float(), mask_seen,
                                                    cfg.fake_patches)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            if step % cfg.r1_every == 0:
                # R1 is a double backward through torch.autograd.grad, which DDP does not support, and
                # the last conv's bias gets no R1 gradient, which would leave DDP waiting for it. So R1
                # runs on the un-wrapped module: DDP finished this step's reduction in loss_d.backward()
                # and ignores later gradients, so this adds the local R1 gradient to the averaged
                # loss_d one; averaging that sum gives mean(loss_d) + mean(R1), the global-batch value.
                real_r1 = real.detach().requires_grad_(True)
                score, _ = d_module(seen(real_r1))
                r1 = losses.r1_penalty(score, real_r1)
                (cfg.r1_weight * cfg.r1_every * 0.5 * r1).backward()
                r1 = r1.detach()  # kept for the log; its graph is not
                distributed.average_gradients(d_module.parameters())
            opt_d.step()
            if d_only:  # the generator, frozen, only supplies repairs to judge
                rec = adv = fm = per = loss_g = torch.zeros((), device=device)
            else:
                # Generator step. The discriminator runs un-wrapped: its gradients here are thrown
                # away (zeroed before the next D step), so there is nothing for DDP to all-reduce.
                with training_autocast(device):
                    fake_score, fake_feats = d_module(seen(comp))
                    rec = losses.reconstruction_loss(fake.float(), real, mask, cfg.hole_weight,
                                                      cfg.hole_lowpass, cfg.hole_pixel_weight,
                                                      cfg.hole_border)
                    adv = losses.generator_adversarial(fake_score.float(), mask_seen)
                    fm = losses.feature_matching([f.float() for f in fake_feats],
                                                 [f.float() for f in real_feats])
                    per = (perceptual(comp[:shared], real[:shared]).float() if perceptual is not None
                           else torch.zeros((), device=device))
                    loss_g = (rec + cfg.perceptual_weight * per
                              + adv_scale * (cfg.adv_weight * adv + cfg.fm_weight * fm))
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                torch.nn.utils.clip_grad_norm_(g_module.parameters(), 1.0)
                opt_g.step()
                if ema is not None:
                    # Early weights change fast, so a fixed 0.999 would average in garbage.
                    update_ema(ema, g_module, min(cfg.ema_decay, (1 + step) / (10 + step)))

            step += 1
            seconds += time.monotonic() - t0
            window_images += cfg.batch_size * world
            # Reading a loss waits for the GPU; doing it only where the log or a checkpoint needs
            # it lets the host queue the next steps meanwhile. NaN weights never reach a checkpoint.
            want_ckpt = distributed.rank0_decides(
                time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60, device)
            last_losses = (loss_g, loss_d)
            if step % cfg.log_every == 0 or want_ckpt:
                _check_finite(last_losses, step, device)
            if step % cfg.log_every == 0:
                elapsed = time.monotonic() - window_start
                v_rec, v_per, v_adv, v_fm, v_d, v_r1 = distributed.mean_over_ranks(
                    [rec, per, adv, fm, loss_d, r1], device)
                metrics = {"step": step, "rec": round(v_rec, 4), "perceptual": round(v_per, 4),
                           "adv": round(v_adv, 4), "fm": round(v_fm, 4), "d": round(v_d, 4),
                           "r1": round(v_r1, 4), "img_per_s": round(window_images / elapsed, 2),
                           "hours": round(seconds / 3600, 3)}
                if main:
                    with open(cfg.work_dir / "metrics.jsonl", "a") as fh:
                        fh.write(json.dumps(metrics) + "\n")
                    if on_log:
                        on_log(metrics)
                window_start, window_images = time.monotonic(), 0
            if step % cfg.sample_every == 0 and ema is not None:
                shown = calibrated_copy(ema, draw, device, step)
                _save_samples(shown, cfg.work_dir / "samples" / f"step{step:07d}.png", device, *preview)
            if want_ckpt:
                checkpoint()
                last_ckpt = time.monotonic()
    finally:
        stream.close()
    stop.restore()
    _check_finite(last_losses, step, device)
    checkpoint()
    distributed.barrier()  # no rank returns before rank 0 has written the final model
    return metrics
