"""Speed, memory and quality of ``restore video`` on 720p footage with thin damage, against Telea.

Clips of each ``--lengths`` (seconds) are cut from ``--source`` (looped when shorter; default
../shared/data/video/cockatoo.mp4, 1280x720, 20 fps, with audio), and thin damage is drawn on
every frame: one scratch somewhere new and a few dust specks, with a mask per frame. Each run
is a fresh child process (this script with ``--worker``) so its peak memory is its own:

- ``restore``: ``restore_videos`` (the whole ``restore video`` job: decode, propagate, model,
  encode, audio copy, atomic write) with the masks given;
- ``auto``: the same job with no masks, as ``restore video clip.mp4`` runs: the shipped damage
  detector (every ``--detect-every`` frames) plus the temporal cues (``--cues``: burnt-in
  overlay, specks, upright film scratches);
  the masks it used are saved (lossless) and scored: overlay recall, damage recall, and the share
  of undamaged pixels flagged;
- ``telea``: the same stream through ``cv2.inpaint`` (Telea, radius 3) frame by frame, decoded
  and encoded with the same ffmpeg settings.

Peak RSS is the child's ``VmHWM``: the Python process that holds the frames, not the ffmpeg
processes beside it (their memory is ffmpeg's and does not depend on the clip's length).
PSNR is over the damaged pixels of every frame against the undamaged clip, after both outputs
went through the same encoder; flicker is the excess of the mean absolute frame-to-frame change
in the damaged area over the original's.

With ``--overlay`` the clip also gets what issue 34 describes: a camera clock burnt in at the
top left whose seconds tick, a half-transparent channel logo at the bottom right, 5-25 dust
specks per frame and a vertical scratch that wanders a few pixels (instead of the thin damage
above); the true mask is the damage plus the overlay's visible pixels. ``--underwater`` makes
the footage dark, blue-green and low in contrast first (the issue's clip was underwater).

    python benchmarks/bench_video.py                          # 10 s and 60 s, shipped model
    python benchmarks/bench_video.py --overlay --lengths 3 --methods restore,auto,telea
    python benchmarks/bench_video.py --lengths 10 --device cuda --json bench-video.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from common import cpu_model, rss_mb

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "video" / "cockatoo.mp4"
SIZE = (1280, 720)
TELEA_RADIUS = 3


# --------------------------------------------------------------------------- inputs


def draw_damage(frame: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Thin film damage that moves: a 2 px scratch at a new place and 6 dust specks (r 1-3 px)."""
    h, w = frame.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    x = int(rng.integers(w // 20, w - w // 20))
    cv2.line(mask, (x, 0), (x + int(rng.integers(-20, 21)), h - 1), 255, 2)
    for _ in range(6):
        cv2.circle(mask, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 4)), 255, -1)
    damaged = frame.copy()
    damaged[mask > 0] = rng.choice([20, 235])
    return damaged, mask


def draw_overlay(frame: np.ndarray, index: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """A camera clock (white, top left; its seconds tick) and a half-transparent logo (bottom right)."""
    h, w = frame.shape[:2]
    scale = w / 533
    drawn = np.zeros((h, w), np.uint8)
    minute, second = divmod(8 * 60 + 59 + int(index / fps), 60)
    cv2.putText(drawn, f"2019-12-20  17:{minute:02d}:{second:02d}  CAM-03", (int(6 * scale), int(16 * scale)),
                cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, 255, max(1, round(scale)), cv2.LINE_AA)
    alpha = drawn.astype(np.float32) / 255
    logo = np.zeros((h, w), np.uint8)
    cx, cy = w - int(30 * scale), h - int(28 * scale)
    cv2.circle(logo, (cx, cy), int(14 * scale), 255, max(2, int(3 * scale)))
    cv2.putText(logo, "TV", (cx - int(9 * scale), cy + int(5 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                0.45 * scale, 255, max(1, round(scale)) + 1)
    alpha = np.maximum(alpha, (logo > 0) * 0.5)[..., None]
    out = np.clip(frame * (1 - alpha) + 255 * alpha, 0, 255).astype(np.uint8)
    visible = ((drawn > 64) | (logo > 0)) & (np.abs(out.astype(np.int16) - frame).max(-1) > 24)
    return out, visible


def draw_film_damage(frame: np.ndarray, rng: np.random.Generator,
                     scratch_x: int) -> tuple[np.ndarray, np.ndarray]:
    """5-25 dust specks (r 1-3 px) and a 2 px vertical scratch near ``scratch_x``."""
    h, w = frame.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.line(mask, (scratch_x, 0), (scratch_x + int(rng.integers(-3, 4)), h - 1), 255, max(1, w // 640))
    for _ in range(int(rng.integers(5, 26))):
        cv2.circle(mask, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 4)), 255, -1)
    damaged = frame.copy()
    damaged[mask > 0] = rng.choice([20, 235])
    return damaged, mask > 0


def underwater(frame: np.ndarray) -> np.ndarray:
    """Dark, blue-green, low contrast: the issue's underwater look from any footage."""
    f = frame.astype(np.float32)
    f = 0.5 * f + 0.5 * f.mean(-1, keepdims=True)
    return np.clip(25 + 0.45 * f * np.array([0.55, 0.9, 1.0], np.float32), 0, 255).astype(np.uint8)


def make_clip(source: Path, seconds: float, folder: Path, seed: int, crf: int, overlay: bool = False,
              murky: bool = False, size: tuple[int, ...] = SIZE) -> dict[str, Any]:
    """original.mp4 (looped source), damaged.mp4 and masks/NNNNNN.png in ``folder``
    (and overlay/NNNNNN.png, the overlay's own pixels, with ``overlay``)."""
    from restore.video.reader import FrameReader, ffmpeg_exe, probe_video
    from restore.video.writer import VideoWriter

    folder.mkdir(parents=True, exist_ok=True)
    original = folder / "original.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(source),
                    "-t", str(seconds), "-vf", f"scale={size[0]}:{size[1]}", "-c:v", "libx264", "-crf", "12",
                    "-preset", "veryfast", "-c:a", "aac", "-b:a", "64k", str(original)], check=True)
    if murky:  # the clean reference is the murky clip itself
        info = probe_video(original)
        writer = VideoWriter(folder / "murky.mp4", info.width, info.height, info.fps, crf=8,
                             audio_from=original)
        for frame in FrameReader(info):
            writer.write(underwater(frame))
        writer.close()
        (folder / "murky.mp4").replace(original)
    info = probe_video(original)
    rng = np.random.default_rng(seed)
    (folder / "masks").mkdir(exist_ok=True)
    if overlay:
        (folder / "overlay").mkdir(exist_ok=True)
    writer = VideoWriter(folder / "damaged.mp4", info.width, info.height, info.fps, crf=crf,
                         audio_from=original)
    damaged_share, frames = 0.0, 0
    scratch_x = info.width // 3
    for i, frame in enumerate(FrameReader(info)):
        if overlay:
            shown, visible = draw_overlay(frame, i, float(info.fps))
            scratch_x += int(rng.integers(-2, 3))
            damaged, film = draw_film_damage(shown, rng, scratch_x)
            mask = (visible | film).astype(np.uint8) * 255
            cv2.imwrite(str(folder / "overlay" / f"{i:06d}.png"), (visible & ~film).astype(np.uint8) * 255)
        else:
            damaged, mask = draw_damage(frame, rng)
        writer.write(damaged)
        cv2.imwrite(str(folder / "masks" / f"{i:06d}.png"), mask)
        damaged_share += float((mask > 0).mean())
        frames += 1
    writer.close()
    return {"seconds": seconds, "frames": frames, "fps": float(info.fps),
            "damaged_percent": round(100 * damaged_share / max(frames, 1), 3)}


# --------------------------------------------------------------------------- workers (child side)


def run_worker(method: str, args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.folder)
    out = folder / f"{method}.mp4"
    result: dict[str, Any] = {"method": method}
    if method in ("restore", "auto"):
        import torch

        from restore.inpaint.engine import Inpainter
        from restore.inpaint.windows import VIDEO_CLASSICAL_DEPTH
        from restore.video.job import RepairOptions, VideoOptions, restore_videos
        from restore.video.masks import DETECTOR_VIEWS

        # restore video's defaults: the smooth fill, the deeper classical limit
        thin = VIDEO_CLASSICAL_DEPTH if args.classical_thin is None else args.classical_thin
        inpainter = Inpainter(args.model, device=args.device, batch_size=args.batch_size, fill="smooth",
                              classical_depth=thin)
        repair = RepairOptions(batch_size=args.batch_size)
        if args.detect_every:
            repair.detect_every = args.detect_every
        if args.flow_side:
            repair.flow_side = args.flow_side
        if args.radius is not None:
            repair.radius = args.radius
        if args.later is not None:
            repair.later = args.later
        if args.cues is not None:
            repair.cues = tuple(c for c in args.cues.split(",") if c and c != "none")
        detector = None
        if method == "auto":
            from restore.detect.detector import Detector

            detector = Detector(args.detector, device=args.device, batch_size=args.batch_size,
                                views=args.detector_views or DETECTOR_VIEWS)
            options = VideoOptions(output=out, save_masks=folder / "auto-masks.mkv", crf=args.crf,
                                   overwrite=True, repair=repair)
        else:
            options = VideoOptions(output=out, masks=folder / "masks", crf=args.crf, overwrite=True,
                                   repair=repair)
        result.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                      device=str(inpainter.device))
        if inpainter.device.type == "cuda":
            result["device_name"] = torch.cuda.get_device_name(inpainter.device)
        result["rss_before_mb"] = rss_mb("VmRSS")
        start = time.perf_counter()
        summary = restore_videos([str(folder / "damaged.mp4")], inpainter, options, detector=detector)
        result["seconds"] = time.perf_counter() - start
        (line,) = summary.results
        if line.status != "ok":
            raise SystemExit(f"restore failed: {line.error}")
        result["frames"] = line.frames
        result["copied_percent"] = line.copied_percent
    else:
        from restore.video.masks import folder_masks
        from restore.video.reader import FrameReader, probe_video
        from restore.video.writer import VideoWriter

        info = probe_video(folder / "damaged.mp4")
        result["rss_before_mb"] = rss_mb("VmRSS")
        start = time.perf_counter()
        masks = folder_masks(folder / "masks", (info.height, info.width))
        writer = VideoWriter(out, info.width, info.height, info.fps, crf=args.crf, audio_from=info.path)
        frames = 0
        for frame, mask in zip(FrameReader(info), masks, strict=False):
            writer.write(cv2.inpaint(frame, mask.astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA))
            frames += 1
        writer.close()
        result["seconds"] = time.perf_counter() - start
        result["frames"] = frames
    result["peak_rss_mb"] = rss_mb("VmHWM")
    return result


def spawn(method: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method, "--folder", str(folder),
           "--device", args.device, "--batch-size", str(args.batch_size), "--crf", str(args.crf),
           "--detect-every", str(args.detect_every or 0), "--detector-views", str(args.detector_views or 0)]
    if args.classical_thin is not None:
        cmd += ["--classical-thin", str(args.classical_thin)]
    if args.flow_side:
        cmd += ["--flow-side", str(args.flow_side)]
    if args.radius is not None:
        cmd += ["--radius", str(args.radius)]
    if args.later is not None:
        cmd += ["--later", str(args.later)]
    if args.cues is not None:
        cmd += ["--cues", args.cues]
    if args.model:
        cmd += ["--model", args.model]
    if args.detector:
        cmd += ["--detector", args.detector]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return {"method": method, "error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- quality


def quality(folder: Path, methods: Sequence[str]) -> dict[str, dict[str, float]]:
    """PSNR in the damaged area and flicker excess, streaming over all clips at once."""
    from restore.video.masks import folder_masks
    from restore.video.reader import FrameReader, probe_video

    info = probe_video(folder / "original.mp4")
    readers = {m: iter(FrameReader(probe_video(folder / f"{m}.mp4"))) for m in methods}
    masks = folder_masks(folder / "masks", (info.height, info.width))
    squared = dict.fromkeys(methods, 0.0)
    change = dict.fromkeys([*methods, "original"], 0.0)
    count = pairs = 0
    previous: dict[str, np.ndarray] = {}
    previous_mask = None
    for truth, mask in zip(FrameReader(info), masks, strict=False):
        frames = {m: next(readers[m]).astype(np.float32) for m in methods}
        frames["original"] = truth.astype(np.float32)
        for m in methods:
            squared[m] += float(((frames[m] - frames["original"])[mask] ** 2).sum())
        count += int(mask.sum()) * 3
        if previous_mask is not None:
            where = mask | previous_mask
            for m, frame in frames.items():
                change[m] += float(np.abs(frame - previous[m])[where].sum())
            pairs += int(where.sum()) * 3
        previous, previous_mask = frames, mask
    out = {}
    for m in methods:
        mse = squared[m] / max(count, 1)
        out[m] = {"psnr": round(10 * np.log10(255.0 ** 2 / max(mse, 1e-9)), 2),
                  "flicker": round(abs(change[m] - change["original"]) / max(pairs, 1), 3)}
    return out


def mask_scores(folder: Path) -> dict[str, float]:
    """How well the auto run's masks match the truth: recall of the overlay and of the film damage,
    and the share of clean pixels (more than 3 px from any damage) it flagged."""
    from restore.video.masks import folder_masks, video_masks
    from restore.video.reader import VideoError, probe_video

    info = probe_video(folder / "damaged.mp4")
    shape = (info.height, info.width)
    used = video_masks(folder / "auto-masks.mkv", shape)
    truth = folder_masks(folder / "masks", shape)
    overlay = folder_masks(folder / "overlay", shape) if (folder / "overlay").is_dir() else None
    kernel = np.ones((7, 7), np.uint8)
    sums = {"overlay": [0, 0], "damage": [0, 0], "false": [0, 0]}
    for _ in range(info.expected_frames or 0):
        try:
            flagged, true = next(used), next(truth)
        except (StopIteration, RuntimeError, VideoError):  # the frame count was an estimate
            break
        over = next(overlay) if overlay is not None else np.zeros(shape, bool)
        film = true & ~over
        for key, where in (("overlay", over), ("damage", film)):
            sums[key][0] += int((flagged & where).sum())
            sums[key][1] += int(where.sum())
        clean = ~(cv2.dilate(true.astype(np.uint8), kernel) > 0)
        sums["false"][0] += int((flagged & clean).sum())
        sums["false"][1] += int(clean.sum())
    out = {}
    for key, (hit, total) in sums.items():
        if total:
            out[f"{key}_flagged_percent" if key == "false" else f"{key}_recall"] = round(
                100 * hit / total if key == "false" else hit / total, 4 if key == "false" else 3)
    return out


# --------------------------------------------------------------------------- report


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| clip | frames | method | seconds | frames/s | peak RSS MB | PSNR damaged area "
             "| flicker excess | overlay recall | damage recall | clean flagged % |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['clip']} | | {row['method']} | failed: {row['error']} | | | | | | | |")
            continue
        fps = row["frames"] / row["seconds"] if row["seconds"] else 0
        lines.append(f"| {row['clip']} | {row['frames']} | {row['method']} | {row['seconds']:.1f} "
                     f"| {fps:.2f} | {row['peak_rss_mb']:.0f} | {row.get('psnr', '')} "
                     f"| {row.get('flicker', '')} | {row.get('overlay_recall', '')} "
                     f"| {row.get('damage_recall', '')} | {row.get('false_flagged_percent', '')} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--lengths", default="10,60", help="clip lengths in seconds, comma separated")
    parser.add_argument("--methods", default="restore,telea")
    parser.add_argument("--quality-max", type=float, default=10.0,
                        help="measure PSNR and flicker on clips up to this many seconds")
    parser.add_argument("--model", default=None, help="generator weights (default: the shipped model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overlay", action="store_true",
                        help="issue 34's damage: a ticking clock, a logo, dust and a wandering scratch")
    parser.add_argument("--underwater", action="store_true", help="dark, blue-green, low-contrast footage")
    parser.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="WxH the source is scaled to")
    parser.add_argument("--detector", default=None, help="auto: detector weights [default: the shipped]")
    parser.add_argument("--cues", default=None,
                        help="auto: the temporal cues, comma-separated, or none [default: restore's]")
    parser.add_argument("--detect-every", type=int, default=None,
                        help="auto: run the detector on every k-th frame [default: the job's]")
    parser.add_argument("--radius", type=int, default=None,
                        help="restore video's --radius: neighbours copied from on each side [default: its]")
    parser.add_argument("--later", type=int, default=None,
                        help="frames after each one followed for what the near ones do not show "
                             "[default: restore video's; 0: off]")
    parser.add_argument("--flow-side", type=int, default=None,
                        help="optical flow's resolution, the long side in px [default: the job's]")
    parser.add_argument("--classical-thin", type=float, default=None,
                        help="restore video's --classical-thin [default: restore video's]")
    parser.add_argument("--detector-views", type=int, default=None,
                        help="auto: views the detector averages [default: restore video's]")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--note", default=None)
    parser.add_argument("--keep", type=Path, default=None, help="build the clips here and keep them")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker, args)))
        return 0
    if not args.source.exists():
        raise SystemExit(f"source clip not found: {args.source}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    size = tuple(int(v) for v in args.size.lower().split("x"))
    lengths = [float(x) for x in args.lengths.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-video-") as scratch:
        base = args.keep or Path(scratch)
        for seconds in lengths:
            folder = base / f"{seconds:g}s"
            clip = make_clip(args.source, seconds, folder, args.seed, crf=10, overlay=args.overlay,
                             murky=args.underwater, size=size)
            kind = "clock+logo+dust+scratch" if args.overlay else "scratch+dust"
            label = f"{seconds:g} s {size[0]}x{size[1]} {kind}, {clip['damaged_percent']:.2f}% damaged"
            results = {m: spawn(m, folder, args) for m in methods}
            ok = [m for m in methods if "error" not in results[m]]
            if "auto" in ok:
                results["auto"].update(mask_scores(folder))
            if seconds <= args.quality_max and ok:
                for m, q in quality(folder, ok).items():
                    results[m].update(q)
            for m in methods:
                rows.append({"clip": label, "length_s": seconds, **results[m]})
            print(table(rows[-len(methods):]), file=sys.stderr)
    facts = next((r for r in rows if r.get("method") == "restore" and "torch" in r), {})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {"cpu": cpu_model(), "cores": cores, "python": platform.python_version(),
            "opencv": cv2.__version__, "torch": facts.get("torch"),
            "torch_threads": facts.get("torch_threads"),
            "device": facts.get("device"), "device_name": facts.get("device_name"),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "model": args.model or "shipped (restore/weights/inpaint.pt)"}
    if args.note:
        print(args.note)
    print(" | ".join(f"{k}: {v}" for k, v in info.items() if v is not None))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=2))
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
