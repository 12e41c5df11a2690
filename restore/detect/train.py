"""Training loop for the damage detector (``restore train --task detect``).

Clean photos get synthetic damage painted on every step (see ``synth``); a folder of the
user's own labelled masks (``labels``) adds real damaged photos, with synthetic damage
sometimes painted over them too, their label the union. Loss: binary cross-entropy plus
soft Dice, which keeps the sparse damage class from being drowned by clean pixels.
Checkpoints are atomic and ``resume`` continues where a killed run stopped, as for the
inpainting model. What is exported (and calibrated) is a moving average of the weights, as
for the inpainting model's generator.

Hard-negative mining: at every checkpoint the detector is run over a rotating share of the
clean training photos as they are, and the spots it flags there (whiskers, twigs, quills,
sparkles on water: scene content that looks like hair, scratches or dust) are kept; a share of
each batch is cropped around them, so the network sees its own false alarms labelled clean.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from restore.detect import synth
from restore.detect.detector import COARSE_AT_MOST, COARSE_SIDE
from restore.detect.model import VIEWS, DamageNet, DetectorConfig, average_views, grow, turn
from restore.detect.synth import paint_damage, vary_content
from restore.detect.weights import export_detector, load_detector
from restore.model.weights import save_atomic
from restore.train.data import (
    PHOTO_EXTENSIONS,
    BatchStream,
    batch_workers,
    load_photos,
    random_crop,
    step_rng,
)
from restore.train.loop import StopRequest, training_autocast, update_ema

# Chance of painting scene-like hard negatives (lines, text, stars, signs, small parts) into a
# crop: half, since a false alarm on a clean photo costs a user as much as a miss.
NEGATIVE_SHARE = 0.5


@dataclass
class DetectTrainConfig:
    data: Path
    out: Path
    work_dir: Path
    labels: Path | None = None  # masks for the photos in ``data`` (matched by relative path and stem)
    resume: bool = False
    init: Path | None = None
    steps: int = 100_000
    minutes: float | None = None
    batch_size: int = 16
    crop: int = 256
    device: str = "cpu"
    seed: int = 0
    lr: float = 2e-3
    checkpoint_minutes: float = 5.0
    hard_share: float = 0.25  # of each batch: crops centred on a mined false alarm
    mine_photos: int = 24  # clean photos searched for false alarms at each checkpoint (rotating)
    sample_every: int = 250
    log_every: int = 20
    workers: int | None = None  # batch-making processes; None: 0 on CPU, up to 8 on a GPU
    ema_decay: float = 0.999  # the exported detector is this moving average of the weights (0: the last)
    views: int = 3  # views the exported detector averages by default (thresholds are calibrated for 1-4)
    axis_share: float = 0.0  # of scratches drawn straight, level or upright (``synth.AXIS_SHARE``)
    ignore_band: int = 0  # clean pixels this close (px) to damage are left out of the loss
    detector: DetectorConfig = DetectorConfig()


def load_labelled(data: Path, labels: Path) -> list[np.ndarray]:
    """Photos with a mask of the same relative stem under ``labels``: RGB + mask as 4 channels."""
    pairs = []
    for path in sorted(p for p in data.rglob("*") if p.suffix.lower() in PHOTO_EXTENSIONS):
        stem = path.relative_to(data).with_suffix("")
        found = [m for m in (labels / stem).parent.glob(stem.name + ".*")
                 if m.suffix.lower() in PHOTO_EXTENSIONS]
        if not found:
            continue
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(found[0]), cv2.IMREAD_GRAYSCALE)
        if bgr is None or mask is None or mask.shape != bgr.shape[:2]:
            continue
        pairs.append(np.dstack([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (mask > 0).astype(np.uint8) * 255]))
    if not pairs:
        raise ValueError(f"no photo in {data} has a same-size mask under {labels}")
    return pairs


Spot = tuple[int, int, int]  # (photo index, y, x) where the detector fired on a clean photo


def crop_around(photo: np.ndarray, y: int, x: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` crop at the photo's own scale holding (y, x) somewhere inside, not at its edge."""
    h, w = photo.shape[:2]
    if min(h, w) < size:
        return random_crop(photo, size, rng)
    margin = size // 8
    y0 = int(np.clip(y - rng.integers(margin, size - margin), 0, h - size))
    x0 = int(np.clip(x - rng.integers(margin, size - margin), 0, w - size))
    crop = photo[y0 : y0 + size, x0 : x0 + size]
    return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


def sample_damage(photos: list[np.ndarray], labelled: list[np.ndarray], batch: int, crop: int,
                  rng: np.random.Generator, hard: list[Spot] | None = None,
                  hard_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(images B x S x S x 3 uint8 RGB, labels B x S x S bool): damaged crops and where the damage is.

    With ``hard`` spots, ``hard_share`` of the crops hold one of them; damage is
    painted over those as over any other crop, and the spot itself stays unlabelled.
    """
    images, labels = [], []
    for _ in range(batch):
        if hard and rng.random() < hard_share:
            index, y, x = hard[int(rng.integers(len(hard)))]
            rgb, label = paint_damage(vary_content(crop_around(photos[index], y, x, crop, rng), rng), rng,
                                      negatives=0.0, scale=float(rng.uniform(0.6, 2.5)))
            images.append(rgb)
            labels.append(label)
            continue
        if labelled and (not photos or rng.random() < 0.5):
            both = random_crop(labelled[int(rng.integers(len(labelled)))], crop, rng)
            rgb, label = both[..., :3], both[..., 3] > 127
            if rng.random() < 0.5:
                rgb, extra = paint_damage(rgb, rng, negatives=0.0)
                label = label | extra
        else:
            # Damage drawn at a random scale: on a 6000-pixel scan a scratch is wider in pixels
            # than on a 1000-pixel photo, and the detector sees scans at their own resolution.
            clean = vary_content(random_crop(photos[int(rng.integers(len(photos)))], crop, rng), rng)
            scale = float(rng.uniform(0.6, 2.5))
            rgb, label = paint_damage(clean, rng, negatives=NEGATIVE_SHARE, scale=scale)
        images.append(rgb)
        labels.append(label)
    return np.stack(images), np.stack(labels).astype(bool)


def to_detector_input(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(images B x 3 x S x S float32 in [-1, 1], labels B x 1 x S x S float32 in {0, 1})."""
    return images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0, labels[:, None].astype(np.float32)


def sample_batch(photos: list[np.ndarray], labelled: list[np.ndarray], batch: int, crop: int,
                 rng: np.random.Generator, hard: list[Spot] | None = None,
                 hard_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``sample_damage`` as the network's input and target."""
    return to_detector_input(*sample_damage(photos, labelled, batch, crop, rng, hard, hard_share))


def make_damage_batch(shared: tuple[list[np.ndarray], list[np.ndarray]],
                      args: tuple[int, int, int, list[Spot], float], step: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """One step's batch (uint8, for ``BatchStream``): ``args`` is (batch, crop, seed, hard, hard_share)."""
    photos, labelled = shared
    batch, crop, seed, hard, hard_share = args
    return sample_damage(photos, labelled, batch, crop, step_rng(seed, 0, step), hard, hard_share)


def detection_loss(logits: torch.Tensor, target: torch.Tensor, ignore_band: int = 0) -> torch.Tensor:
    """BCE + soft Dice per image.

    Dice per image, not over the batch: a hairline counts as much as a torn-off corner in the
    crop next to it, and on a crop with no damage any flagged pixel costs (the false-alarm goal).

    ``ignore_band``: clean pixels within that many px of damage count for nothing. A soft
    scratch's edge is a matter of opinion by a pixel or two (the exam forgives 2 px, and the
    repair widens the mask anyway); charging for it teaches the network to hedge on the whole
    line, which at a strict threshold means missing it.
    """
    weight = None
    if ignore_band > 0:
        near = F.max_pool2d(target, 2 * ignore_band + 1, stride=1, padding=ignore_band)
        weight = ((target > 0.5) | (near < 0.5)).to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=weight)
    prob = torch.sigmoid(logits)
    if weight is not None:
        prob = prob * weight
    overlap = (prob * target).flatten(1).sum(1)
    dice = 1 - (2 * overlap + 1) / (prob.flatten(1).sum(1) + target.flatten(1).sum(1) + 1)
    return bce + dice.mean()


CLEAN_FLAG_TARGET = 0.0005  # at sensitivity 0.5, flag at most this fraction of clean photos' pixels
COARSE_FLAG_TARGET = 0.0001  # what the coarse look may add on clean photos, at most


def whole_photo_probabilities(model: DamageNet, photo: np.ndarray, device: torch.device,
                              views: int = 1, view: int = 0) -> np.ndarray:
    """Damage probability for a whole RGB photo (cropped to the network's multiple), H x W,
    averaged over ``views`` views as ``Detector`` does (or seen once, in ``VIEWS[view]``)."""
    h, w = (s - s % model.multiple for s in photo.shape[:2])
    x = torch.from_numpy(photo[:h, :w]).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
    x = turn(x, view)

    def run(v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(model(v).float())

    return turn(average_views(run, x, views), view)[0, 0].cpu().numpy()


@torch.no_grad()
def calibrate_thresholds(model: DamageNet, photos: list[np.ndarray], device: torch.device,
                         count: int = 40, target: float = CLEAN_FLAG_TARGET) -> dict[int, float]:
    """For each number of views (1 to 4, ``VIEWS``), the probability threshold that flags at most
    ``target`` of the pixels of clean photos when the detector averages that many views.

    Measured on (a spread of) the training photos as they are, never on evaluation data. Never
    below 0.5: calibration only makes the detector stricter than the network's own decision;
    never above 0.99.
    """
    was_training = model.training
    model.eval()
    picks = photos[:: max(1, len(photos) // count)][:count]
    probs: dict[int, list[np.ndarray]] = {views: [] for views in range(1, len(VIEWS) + 1)}
    for photo in picks:
        passes = [whole_photo_probabilities(model, photo, device, view=view) for view in range(len(VIEWS))]
        for views in probs:
            probs[views].append(np.mean(passes[:views], 0).ravel())
    model.train(was_training)
    return {views: max(0.5, min(0.99, float(np.quantile(np.concatenate(p), 1 - target))))
            for views, p in probs.items()}


@torch.no_grad()
def calibrate_coarse_thresholds(model: DamageNet, photos: list[np.ndarray], device: torch.device,
                                count: int = 40, side: int = COARSE_SIDE,
                                target: float = COARSE_FLAG_TARGET) -> dict[int, float]:
    """For each number of views, the threshold at which the coarse scan (the photo shrunk to
    ``side`` px on its short side, as ``Detector`` does it) flags at most ``target`` of clean
    photos' pixels. Between 0.5 and 0.9995.

    Why its own: the coarse look's threshold used to be the full-resolution one made 20x stricter
    in odds; a detector whose full-resolution threshold is calibrated near the 0.99 cap then
    looks coarsely at 0.9995 and drops large damage (tears, holes, stains) that it does see.
    """
    was_training = model.training
    model.eval()
    picks = photos[:: max(1, len(photos) // count)][:count]
    probs: dict[int, list[np.ndarray]] = {views: [] for views in range(1, len(VIEWS) + 1)}
    for photo in picks:
        h, w = photo.shape[:2]
        scale = side / min(h, w)
        if scale > COARSE_AT_MOST:
            continue  # the detector skips the coarse look on photos this small
        small = cv2.resize(photo, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
        passes = [whole_photo_probabilities(model, small, device, view=view) for view in range(len(VIEWS))]
        for views in probs:
            probs[views].append(np.mean(passes[:views], 0).ravel())
    model.train(was_training)
    if not probs[1]:
        return {}
    return {views: max(0.5, min(0.9995, float(np.quantile(np.concatenate(p), 1 - target))))
            for views, p in probs.items()}


@torch.no_grad()
def mine_false_alarms(model: DamageNet, photos: list[np.ndarray], indices: list[int], device: torch.device,
                      per_photo: int = 8) -> list[Spot]:
    """Where the detector flags the clean photos ``indices``: the strongest spot of each flagged blob.

    The photos are seen whole, at the size they are trained at, as the detector sees a user's
    scan. At most ``per_photo`` blobs per photo (the most confident), so one busy photo
    cannot fill the pool.
    """
    model.eval()
    spots: list[Spot] = []
    for index in indices:
        photo = photos[index]
        prob = whole_photo_probabilities(model, photo, device)
        count, blobs = cv2.connectedComponents((prob > 0.5).astype(np.uint8), connectivity=8)
        if count <= 1:
            continue
        peaks = np.zeros(count, np.float32)
        np.maximum.at(peaks, blobs.ravel(), prob.ravel())
        for blob in np.argsort(-peaks[1:])[:per_photo] + 1:
            ys, xs = np.nonzero(blobs == blob)
            best = int(np.argmax(prob[ys, xs]))
            spots.append((index, int(ys[best]), int(xs[best])))
    model.train()
    return spots


def _f1(logits: torch.Tensor, target: torch.Tensor) -> float:
    pred = logits > 0
    tp = (pred & (target > 0.5)).sum().item()
    return 2 * tp / max(1, pred.sum().item() + (target > 0.5).sum().item())


@torch.no_grad()
def _save_samples(model: DamageNet, images: torch.Tensor, labels: torch.Tensor, path: Path) -> float:
    """PNG grid, one row per crop: input | truth (red) | prediction (red). Returns the crops' F1."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device  # the preview crops stay on the CPU between uses
    logits = model(images.to(device)).float().cpu()
    model.train(was_training)
    rgb = ((images.permute(0, 2, 3, 1).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
    rows = []
    for i in range(len(rgb)):
        cells = [rgb[i]]
        for m in (labels[i, 0].numpy() > 0.5, logits[i, 0].numpy() > 0):
            tinted = rgb[i].copy()
            tinted[m] = (0.4 * tinted[m] + [153, 0, 0]).astype(np.uint8)
            cells.append(tinted)
        rows.append(np.concatenate(cells, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
    return _f1(logits, labels)


def train_detector(cfg: DetectTrainConfig, on_log: Callable[[dict], None] | None = None) -> dict:
    """Train until ``cfg.steps`` or ``cfg.minutes``; returns the last logged metrics."""
    # The synthesiser's setting for this run only (batch workers fork with it); the exam keeps 0.
    before, synth.AXIS_SHARE = synth.AXIS_SHARE, cfg.axis_share
    try:
        return _train_detector(cfg, on_log)
    finally:
        synth.AXIS_SHARE = before


def _train_detector(cfg: DetectTrainConfig, on_log: Callable[[dict], None] | None) -> dict:
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    photos = load_photos(cfg.data)
    labelled = load_labelled(cfg.data, cfg.labels) if cfg.labels else []
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = cfg.work_dir / "checkpoint.pt"
    model = load_detector(cfg.init).train() if cfg.init else DamageNet(cfg.detector)
    widths = tuple(max(w, v) for w, v in zip(cfg.detector.widths, model.config.widths, strict=True))
    if cfg.init and (cfg.detector.context > model.config.context
                     or (cfg.detector.tophat and not model.config.tophat)
                     or (cfg.detector.channel_cues and not model.config.channel_cues)
                     or widths != model.config.widths):
        # deeper, wider or with more cues, starting from what it has learnt
        model = grow(model, max(cfg.detector.context, model.config.context), cfg.detector.tophat or None,
                     cfg.detector.channel_cues or None, widths)
    model.to(device, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    step, seconds = 0, 0.0
    if cfg.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        model = DamageNet(DetectorConfig.from_dict(state["config"]))
        model.to(device, memory_format=torch.channels_last)
        model.load_state_dict(state["model"])
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
        opt.load_state_dict(state["optimizer"])
        for group in opt.param_groups:  # the rate asked for now wins: lower it to anneal a run
            group["lr"] = cfg.lr
        step, seconds = int(state["step"]), float(state["seconds"])
        torch.manual_seed(cfg.seed + step)
    # What is exported: a moving average of the weights, which smooths the step-to-step noise
    # (exports a few thousand steps apart had swung by 0.05 F1 on val; the swing over thousands
    # of steps stayed, docs/experiments.md, 'weight averaging'). A checkpoint without one starts it here.
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    if cfg.resume and ckpt_path.exists():
        ema.load_state_dict(state.get("ema", state["model"]))
    preview = [torch.from_numpy(a) for a in sample_batch(photos, labelled, 8, cfg.crop,
                                                          np.random.default_rng(4242))]
    # Mined false alarms, by photo; refreshed for a rotating share of the photos each checkpoint.
    alarms: dict[int, list[Spot]] = {}
    hard: list[Spot] = []
    next_photo = 0

    def mine() -> None:
        nonlocal hard, next_photo
        if cfg.hard_share <= 0:
            return
        indices = [(next_photo + i) % len(photos) for i in range(min(cfg.mine_photos, len(photos)))]
        next_photo = (next_photo + len(indices)) % len(photos)
        found = mine_false_alarms(model, photos, indices, device)
        for index in indices:
            alarms[index] = [spot for spot in found if spot[0] == index]
        hard = [spot for spots in alarms.values() for spot in spots]
        if stream is not None:  # batches from the next one submitted on use the new spots
            stream.args = (cfg.batch_size, cfg.crop, cfg.seed, hard, cfg.hard_share)

    def checkpoint() -> None:
        if last_loss is not None and not math.isfinite(last_loss.item()):
            raise FloatingPointError(f"loss became NaN by step {step}; resume from the checkpoint")
        save_atomic({"config": model.config.to_dict(), "model": model.state_dict(), "ema": ema.state_dict(),
                     "optimizer": opt.state_dict(), "step": step, "seconds": seconds,
                     "train_config": json.dumps(asdict(cfg), default=str)}, ckpt_path)
        thresholds = calibrate_thresholds(ema, photos, device)
        coarse = calibrate_coarse_thresholds(ema, photos, device)
        export_detector(ema, cfg.out, meta={"step": step, "train_seconds": round(seconds), "crop": cfg.crop,
                                              "data": str(cfg.data), "views": cfg.views,
                                              "threshold": thresholds[cfg.views],
                                              "thresholds": {str(k): v for k, v in thresholds.items()},
                                              "coarse_thresholds": {str(k): v for k, v in coarse.items()}})
        mine()

    autocast = training_autocast(device)
    run_start = last_ckpt = window_start = time.monotonic()
    window_images, metrics = 0, {}
    model.train()
    stream: BatchStream | None = None
    last_loss: torch.Tensor | None = None
    while len(alarms) < min(len(photos), 4 * cfg.mine_photos) and cfg.hard_share > 0:
        mine()  # a first pool before the first step, also after a resume
    stream = BatchStream(make_damage_batch, (photos, labelled),
                         (cfg.batch_size, cfg.crop, cfg.seed, hard, cfg.hard_share), step,
                         batch_workers(cfg.workers, device.type))
    stop = StopRequest()
    try:
        while step < cfg.steps and not stop.requested:
            if cfg.minutes is not None and time.monotonic() - run_start > cfg.minutes * 60:
                break
            t0 = time.monotonic()
            x_np, y_np = to_detector_input(*next(stream))
            x = torch.from_numpy(x_np).to(device).contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(y_np).to(device)
            with autocast:
                logits = model(x)
            loss = detection_loss(logits.float(), y, cfg.ignore_band)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            update_ema(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
            step += 1
            seconds += time.monotonic() - t0
            window_images += cfg.batch_size
            last_loss = loss.detach()  # read back only when logging or checkpointing: no sync per step
            if step % cfg.log_every == 0:
                if not math.isfinite(loss.item()):
                    raise FloatingPointError(f"loss became NaN at step {step}; resume from the checkpoint")
                metrics = {"step": step, "loss": round(loss.item(), 4),
                           "f1": round(_f1(logits.float(), y), 4),
                           "img_per_s": round(window_images / (time.monotonic() - window_start), 2),
                           "hours": round(seconds / 3600, 3), "hard_spots": len(hard)}
                window_start, window_images = time.monotonic(), 0
            if step % cfg.sample_every == 0:
                metrics["preview_f1"] = round(_save_samples(ema, *preview, cfg.work_dir / "samples" /
                                                            f"step{step:07d}.png"), 4)
            if step % cfg.log_every == 0 or step % cfg.sample_every == 0:
                with open(cfg.work_dir / "metrics.jsonl", "a") as fh:
                    fh.write(json.dumps({**metrics, "step": step}) + "\n")
                if on_log:
                    on_log({**metrics, "step": step})
            if time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60:
                checkpoint()
                last_ckpt = time.monotonic()
    finally:
        stream.close()
        stop.restore()
    checkpoint()
    return metrics
