"""Speed and memory of ``restore images`` against OpenCV's Telea inpainting, on the same inputs.

Cases: (a) one 512x512 photo with ~10% holes, (b) one 24-megapixel image with ~1% long
scratches, (c) a folder job of 50 JPEGs (~1024x683) with ~2-3% holes, decode and encode
included, (d) a 24-megapixel scan with scattered dust and hairlines, file to file (with
``--scan-count N``, a folder of N such scans: scans/s and whether memory stays flat).
Prints the machine and a Markdown table; ``--json`` also saves the raw numbers.

Each (case, method) runs in a fresh child process (this script with ``--worker``) so that a
method's peak memory is its own. Peak RSS is the child's ``VmHWM`` from /proc, not
``ru_maxrss``: on Linux ``ru_maxrss`` survives exec, so a child started by a parent that once
held the 24-megapixel test data would report the parent's peak instead of its own.

    python benchmarks/bench_images.py                       # all cases, shipped model
    python benchmarks/bench_images.py --cases a,c --device cuda --json bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from common import cpu_model, rss_mb, timed

ROOT = Path(__file__).resolve().parents[1]
FALLBACK_MODEL = ROOT / "runs" / "v1" / "model.pt"
PHOTO_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
CASES = ("a", "b", "c", "d")
METHODS = ("restore", "telea")
TELEA_RADIUS = 3
JPEG_QUALITY = 95  # restore's default --jpeg-quality, so both sides encode the same way
FOLDER_IMAGES = 50
FOLDER_SIZE = (1024, 683)  # width, height
LARGE_SIZE = (6000, 4000)
SCAN_SPECKS = 1500  # per 24 MP; case d scales the count with --scan-size
SCAN_SCRATCHES = 12
SCAN_MP = 24e6
WARMUP_SIDE = 512


# --------------------------------------------------------------------------- inputs


def find_photos(folder: Path) -> list[Path]:
    """Every photo under ``folder``, sorted so a seed always picks the same ones."""
    photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_EXTENSIONS)
    if not photos:
        raise SystemExit(f"no photos found under {folder}")
    return photos


def load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read photo {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def cut(photo: np.ndarray, width: int, height: int, rng: np.random.Generator,
        min_fraction: float = 0.6) -> np.ndarray:
    """A random crop with the target's aspect, resized: many distinct inputs from a few photos."""
    ph, pw = photo.shape[:2]
    aspect = width / height
    max_w = min(pw, int(ph * aspect))
    crop_w = max(8, int(max_w * rng.uniform(min_fraction, 1.0)))
    crop_h = max(8, min(ph, int(round(crop_w / aspect))))
    x = int(rng.integers(0, pw - crop_w + 1))
    y = int(rng.integers(0, ph - crop_h + 1))
    crop = photo[y : y + crop_h, x : x + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if crop_w > width else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=interp)


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Mild grain, in row bands so a 24-megapixel image never needs a float64 copy of itself."""
    out = np.empty_like(image)
    for y in range(0, image.shape[0], 256):
        band = image[y : y + 256].astype(np.int16)
        band += np.rint(rng.normal(0, sigma, band.shape)).astype(np.int16)
        out[y : y + 256] = np.clip(band, 0, 255)
    return out


def fit_mask(kinds: Sequence[str], height: int, width: int, target: float, rng: np.random.Generator,
             tolerance: float = 0.1, max_draws: int = 400) -> np.ndarray:
    """Training-style holes totalling ``target`` of the area (within ``tolerance``), as bool.

    ``make_mask`` draws are usually larger than a benchmark wants, so whole connected
    components of many draws are added one at a time, skipping any that would overshoot.
    """
    from restore.train.masks import make_mask

    mask = np.zeros((height, width), bool)
    total = float(height * width)
    low, high = target * (1 - tolerance), target * (1 + tolerance)
    holes = 0
    for draw in range(max_draws):
        drawn = make_mask(kinds[draw % len(kinds)], height, width, rng) > 0
        count, labels, stats, _ = cv2.connectedComponentsWithStats(drawn.astype(np.uint8), connectivity=8)
        for label in rng.permutation(np.arange(1, count)):
            x, y, w, h, _area = (int(v) for v in stats[label])
            sl = slice(y, y + h), slice(x, x + w)
            part = labels[sl] == label
            added = int((part & ~mask[sl]).sum())
            if (holes + added) / total > high:
                continue
            mask[sl] |= part
            holes += added
            if holes / total >= low:
                return mask
    raise RuntimeError(f"could not reach {target:.1%} holes with {kinds} in {max_draws} draws")


def make_inputs(data: Path, photos: list[Path], cases: Sequence[str], seed: int,
                scan_size: tuple[int, int] = LARGE_SIZE, scan_bits: int = 8,
                scan_count: int = 1) -> dict[str, dict]:
    """Write every case's inputs under ``data``; returns a description of each for the table."""
    rng = np.random.default_rng(seed)
    pictures = [load_rgb(p) for p in photos]
    info: dict[str, dict] = {}
    if "a" in cases:
        image = cut(pictures[int(rng.integers(len(pictures)))], 512, 512, rng)
        mask = fit_mask(["medium", "thin"], 512, 512, 0.10, rng)
        np.save(data / "a_image.npy", image)
        np.save(data / "a_mask.npy", mask)
        info["a"] = {"input": "1 photo 512x512", "damage": f"{mask.mean():.1%} holes (thin+medium)"}
    if "b" in cases:
        width, height = LARGE_SIZE
        largest = max(pictures, key=lambda p: p.shape[0] * p.shape[1])
        image = add_noise(cut(largest, width, height, rng, min_fraction=1.0), 2.0, rng)
        mask = fit_mask(["scratch"], height, width, 0.01, rng)
        np.save(data / "b_image.npy", image)
        np.save(data / "b_mask.npy", mask)
        info["b"] = {"input": f"1 image {width}x{height} (24 MP)", "damage": f"{mask.mean():.2%} scratches"}
        del image, mask
    if "c" in cases:
        width, height = FOLDER_SIZE
        in_dir, mask_dir = data / "c_in", data / "c_masks"
        in_dir.mkdir()
        mask_dir.mkdir()
        fractions = []
        for i in range(FOLDER_IMAGES):
            image = cut(pictures[i % len(pictures)], width, height, rng)
            mask = fit_mask(["thin", "medium", "dust"], height, width, float(rng.uniform(0.02, 0.03)), rng)
            fractions.append(float(mask.mean()))
            cv2.imwrite(str(in_dir / f"photo{i:03d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            cv2.imwrite(str(mask_dir / f"photo{i:03d}.png"), mask.astype(np.uint8) * 255)
        info["c"] = {"input": f"folder of {FOLDER_IMAGES} JPEGs {width}x{height}",
                     "damage": f"{min(fractions):.1%}-{max(fractions):.1%} holes, "
                               "decode+encode included"}
    if "d" in cases:
        info["d"] = make_scan(data / "d", pictures, rng, scan_size, scan_bits, scan_count)
    return info


def scan_damage(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """What a real scan's damage looks like: dust specks 2-15 px all over the frame (1,500 per
    24 MP) and a dozen long hairline scratches (2-4 px wide, gently curving), ~1% in all, as bool."""
    mask = np.zeros((height, width), np.uint8)
    scale = height * width / SCAN_MP
    for _ in range(int(round(SCAN_SPECKS * scale))):
        d = rng.uniform(2, 15)
        axes = (max(1, int(round(d / 2))), max(1, int(round(d / 2 * rng.uniform(0.5, 1.0)))))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    for _ in range(SCAN_SCRATCHES):
        length = rng.uniform(0.5, 1.0) * max(height, width)
        angle = rng.uniform(0, 2 * np.pi)
        y, x = rng.uniform(0, height), rng.uniform(0, width)
        points = [(x, y)]
        for _ in range(int(length // 50)):
            angle += rng.normal(0, 0.05)
            x, y = x + 50 * np.cos(angle), y + 50 * np.sin(angle)
            points.append((x, y))
        cv2.polylines(mask, [np.round(np.array(points)).astype(np.int32)], False, 1,
                      int(rng.integers(2, 5)))
    return mask > 0


def make_scan(prefix: Path, pictures: list[np.ndarray], rng: np.random.Generator,
              size: tuple[int, int], bits: int, count: int = 1) -> dict[str, str]:
    """Case d: ``count`` clean scans (photos upscaled, with mild grain), their damaged copies
    and masks: the first cut from the largest photo, the others from the rest in turn.

    Written as ``prefix``_in/scanNNN.(png|tif), ``prefix``_masks/scanNNN.png and
    ``prefix``_clean/scanNNN.npy; 16-bit scans are TIFF (LZW), as scanners write them.
    """
    in_dir, mask_dir, clean_dir = Path(f"{prefix}_in"), Path(f"{prefix}_masks"), Path(f"{prefix}_clean")
    for folder in (in_dir, mask_dir, clean_dir):
        folder.mkdir()
    order = sorted(range(len(pictures)), key=lambda i: -pictures[i].shape[0] * pictures[i].shape[1])
    shares, pieces = [], []
    for n in range(count):
        share, count_pieces = _write_scan(in_dir, mask_dir, clean_dir, f"scan{n:03d}",
                                          pictures[order[n % len(order)]], rng, size, bits)
        shares.append(share)
        pieces.append(count_pieces)
    width, height = size
    kind = f"{bits}-bit {'TIFF' if bits == 16 else 'PNG'}"
    what = "1 scan" if count == 1 else f"folder of {count} scans"
    return {"input": f"{what} {width}x{height} ({width * height / 1e6:.0f} MP, {kind}), file to file",
            "damage": f"{np.mean(shares):.2%} in {round(np.mean(pieces))} pieces (dust + {SCAN_SCRATCHES} "
                      "hairlines)" + (" per scan" if count > 1 else ""),
            "count": count}


def _write_scan(in_dir: Path, mask_dir: Path, clean_dir: Path, stem: str, picture: np.ndarray,
                rng: np.random.Generator, size: tuple[int, int], bits: int) -> tuple[float, int]:
    """One scan of case d; returns its damaged share and number of pieces."""
    width, height = size
    clean = add_noise(cut(picture, width, height, rng, min_fraction=1.0), 2.0, rng)
    mask = scan_damage(height, width, rng)
    if bits == 16:
        clean = clean.astype(np.uint16) * 257  # 8-bit detail, 16-bit file: what the engine sees
    damaged = clean.copy()
    top = 65535 if bits == 16 else 255
    ys, xs = np.nonzero(mask)
    damaged[ys, xs] = np.where(rng.random(len(ys)) < 0.7, top // 12, top - top // 20)[:, None]
    del ys, xs
    name = f"{stem}.tif" if bits == 16 else f"{stem}.png"
    params = [cv2.IMWRITE_TIFF_COMPRESSION, 5] if bits == 16 else []
    cv2.imwrite(str(in_dir / name), cv2.cvtColor(damaged, cv2.COLOR_RGB2BGR), params)
    cv2.imwrite(str(mask_dir / f"{stem}.png"), mask.astype(np.uint8) * 255)
    np.save(clean_dir / f"{stem}.npy", clean)
    return float(mask.mean()), cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1


def masked_quality(clean: np.ndarray, result: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """PSNR and SSIM of the damaged pixels only (SSIM's map averaged over them), at 8-bit scale.

    SSIM is the eval protocol's (11x11 Gaussian, sigma 1.5), worked in row bands so a 100 MP
    scan never needs a full-size float64 copy.
    """
    from restore.eval.metrics import SSIM_K1, SSIM_K2, _gaussian

    scale = 257.0 if clean.dtype == np.uint16 else 1.0
    g, band, margin = _gaussian(), 256, 8
    c1, c2 = (SSIM_K1 * 255) ** 2, (SSIM_K2 * 255) ** 2
    sq_err, ssim_sum, count = 0.0, 0.0, 0
    for y in range(0, mask.shape[0], band):
        inside = mask[y : y + band]
        if not inside.any():
            continue
        ya, yb = max(0, y - margin), min(mask.shape[0], y + band + margin)
        x_ = clean[ya:yb].astype(np.float64) / scale
        y_ = result[ya:yb].astype(np.float64) / scale
        rows = slice(y - ya, y - ya + inside.shape[0])
        sq_err += float(((x_[rows] - y_[rows])[inside] ** 2).sum())
        count += int(inside.sum())

        def blur(t: np.ndarray) -> np.ndarray:
            return cv2.sepFilter2D(t, cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT)

        mu_x, mu_y = blur(x_), blur(y_)
        var_x, var_y = blur(x_ * x_) - mu_x**2, blur(y_ * y_) - mu_y**2
        cov = blur(x_ * y_) - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)
                    / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))).mean(axis=-1)
        ssim_sum += float(ssim_map[rows][inside].sum())
    mse = sq_err / (3 * count)
    return {"hole_psnr": float(10 * np.log10(255.0**2 / mse)) if mse else float("inf"),
            "hole_ssim": ssim_sum / count}


def measured_run(command: list[str], every: float = 0.25) -> tuple[float, float, list[float]]:
    """Wall seconds, peak RSS (MB) and the RSS trace (MB, every ``every`` s) of one child
    process, read from its /proc status while it runs; the trace shows whether memory stays
    flat over a folder or grows with it."""
    start = time.perf_counter()
    proc = subprocess.Popen(command)
    status = Path(f"/proc/{proc.pid}/status")
    peak, trace = 0.0, []
    while proc.poll() is None:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            peak = max(peak, int(fields["VmHWM"].split()[0]) / 1024)
            trace.append(int(fields["VmRSS"].split()[0]) / 1024)
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(every)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, command)
    return seconds, peak, trace


def run_scan(method: str, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """Case d, file to file: ``restore images`` as its own process (start-up, model load, decode,
    repair, encode and write all timed), or Telea's read -> inpaint -> write in this process."""
    in_dir, mask_dir, out_dir = data / "d_in", data / "d_masks", data / f"d_out_{method}"
    sources = sorted(in_dir.iterdir())
    result: dict[str, Any] = {"case": "d", "method": method, "times_s": [], "peak_rss_runs_mb": []}
    for _ in range(args.repeats):
        if method in ("restore", "detect"):
            command = [sys.executable, "-m", "restore", "images", str(in_dir), str(out_dir), "--overwrite",
                       "--quiet", "--model", args.model, "--device", args.device, "--batch-size",
                       str(args.batch_size)]
            if method == "restore":  # "detect": the masks come from the shipped detector
                command += ["--masks", str(mask_dir)]
            if args.grain is not None:
                command += ["--grain", str(args.grain)]
            if args.fill is not None:
                command += ["--fill", args.fill]
            if args.classical_thin is not None:
                command += ["--classical-thin", str(args.classical_thin)]
            wall, peak, trace = measured_run(command)
            result["peak_rss_runs_mb"].append(peak)
            # Median RSS over each quarter of the run: flat if a folder's memory does not grow.
            quarters = np.array_split(np.array(trace or [0.0]), 4)
            result["rss_quarters_mb"] = [round(float(np.median(q)), 1) if len(q) else None for q in quarters]
        else:
            out_dir.mkdir(exist_ok=True)
            start = time.perf_counter()
            for source in sources:
                telea_file(source, mask_dir / f"{source.stem}.png", out_dir / source.name)
            wall = time.perf_counter() - start
            result["peak_rss_runs_mb"].append(rss_mb("VmHWM"))
        result["times_s"].append(wall)
    result["median_s"] = statistics.median(result["times_s"])
    result["images_per_s"] = len(sources) / result["median_s"]
    result["peak_rss_mb"] = max(result["peak_rss_runs_mb"])
    sq_err = ssim_sum = count = 0.0
    for source in sources:  # pooled over every damaged pixel of every scan
        output = cv2.imread(str(out_dir / source.name), cv2.IMREAD_UNCHANGED)
        clean = np.load(data / "d_clean" / f"{source.stem}.npy")
        if output.dtype != clean.dtype:  # Telea's 8-bit output against a 16-bit scan
            output = output.astype(clean.dtype) * 257
        mask = cv2.imread(str(mask_dir / f"{source.stem}.png"), cv2.IMREAD_GRAYSCALE) > 0
        quality = masked_quality(clean, cv2.cvtColor(output, cv2.COLOR_BGR2RGB), mask)
        n = float(mask.sum())
        sq_err += n * 255.0**2 / 10 ** (quality["hole_psnr"] / 10)
        ssim_sum += n * quality["hole_ssim"]
        count += n
    result["hole_psnr"] = float(10 * np.log10(255.0**2 / (sq_err / count)))
    result["hole_ssim"] = ssim_sum / count
    return result


def telea_file(source: Path, mask_file: Path, target: Path) -> None:
    """Telea file to file: read, inpaint, write, as a script around OpenCV would."""
    pixels = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
    hole = cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE)
    params = [cv2.IMWRITE_TIFF_COMPRESSION, 5] if source.suffix == ".tif" else []
    if pixels.dtype == np.uint16:  # Telea is 8-bit only: the best it can give a deep scan
        pixels = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    cv2.imwrite(str(target), cv2.inpaint(pixels, hole, TELEA_RADIUS, cv2.INPAINT_TELEA), params)


# --------------------------------------------------------------------------- workers (child side)


def warmup_crop(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A window around the first hole: warms kernels and thread pools without a second full run."""
    y, x = np.unravel_index(int(np.argmax(mask)), mask.shape)
    h, w = mask.shape
    y0 = min(max(0, y - WARMUP_SIDE // 2), max(0, h - WARMUP_SIDE))
    x0 = min(max(0, x - WARMUP_SIDE // 2), max(0, w - WARMUP_SIDE))
    sl = slice(y0, y0 + WARMUP_SIDE), slice(x0, x0 + WARMUP_SIDE)
    return np.ascontiguousarray(image[sl]), np.ascontiguousarray(mask[sl])


def torch_info(device: Any) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    if device is not None:
        info["device"] = str(device)
        if device.type == "cuda":
            info["device_name"] = torch.cuda.get_device_name(device)
    return info


def run_worker(case: str, method: str, args: argparse.Namespace) -> dict[str, Any]:
    """Set up one (case, method) in this fresh process, then time it; setup is not timed."""
    data = Path(args.data)
    if case == "d":
        return run_scan(method, args, data)
    result: dict[str, Any] = {"case": case, "method": method}
    if case == "baseline":
        if method == "restore":
            import restore.batch  # noqa: F401 - the import is what is measured
            import restore.inpaint.engine  # noqa: F401

            result.update(torch_info(None))
        result["rss_after_setup_mb"] = rss_mb("VmRSS")
        result["peak_rss_mb"] = rss_mb("VmHWM")
        return result

    inpainter = None
    if method == "restore":
        from restore.inpaint.engine import Inpainter
        from restore.inpaint.grain import GRAIN_STRENGTH

        grain = GRAIN_STRENGTH if args.grain is None else args.grain
        chosen = {"fill": args.fill} if args.fill else {}
        if args.classical_thin is not None:
            chosen["classical_depth"] = args.classical_thin
        inpainter = Inpainter(args.model, device=args.device, batch_size=args.batch_size, grain=grain,
                              **chosen)
        result.update(torch_info(inpainter.device))

    if case in ("a", "b"):
        image = np.load(data / f"{case}_image.npy")
        mask = np.load(data / f"{case}_mask.npy")
        warm_image, warm_mask = warmup_crop(image, mask)
        if inpainter is not None:
            def run() -> None:
                inpainter.repair([image], [mask])

            inpainter.repair([warm_image], [warm_mask])
        else:
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            mask_u8 = mask.astype(np.uint8) * 255
            del image, mask

            def run() -> None:
                cv2.inpaint(bgr, mask_u8, TELEA_RADIUS, cv2.INPAINT_TELEA)

            cv2.inpaint(cv2.cvtColor(warm_image, cv2.COLOR_RGB2BGR), warm_mask.astype(np.uint8) * 255,
                        TELEA_RADIUS, cv2.INPAINT_TELEA)
    else:
        in_dir, mask_dir, out_dir = data / "c_in", data / "c_masks", data / f"c_out_{method}"
        sources = sorted(in_dir.glob("*.jpg"))
        first = load_rgb(sources[0])
        first_mask = cv2.imread(str(mask_dir / f"{sources[0].stem}.png"), cv2.IMREAD_GRAYSCALE) > 0
        if inpainter is not None:
            from restore.batch import ImagesOptions, restore_images

            options = ImagesOptions(masks=mask_dir, overwrite=True, batch_size=args.batch_size)

            def run() -> None:
                summary = restore_images(str(in_dir), out_dir, inpainter, options)
                if summary.count("ok") != len(sources):
                    errors = [r.error for r in summary.results if r.status != "ok"]
                    raise RuntimeError(f"restore_images: {summary.line()}; first error: {errors[:1]}")

            inpainter.repair([first], [first_mask])
        else:
            out_dir.mkdir(exist_ok=True)

            def run() -> None:
                for source in sources:
                    bgr = cv2.imread(str(source), cv2.IMREAD_COLOR)
                    hole = cv2.imread(str(mask_dir / f"{source.stem}.png"), cv2.IMREAD_GRAYSCALE)
                    out = cv2.inpaint(bgr, hole, TELEA_RADIUS, cv2.INPAINT_TELEA)
                    cv2.imwrite(str(out_dir / source.name), out, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])

            cv2.inpaint(cv2.cvtColor(first, cv2.COLOR_RGB2BGR), first_mask.astype(np.uint8) * 255,
                        TELEA_RADIUS, cv2.INPAINT_TELEA)
        del first, first_mask

    result["rss_after_setup_mb"] = rss_mb("VmRSS")
    result["times_s"] = timed(args.repeats, run)
    result["median_s"] = statistics.median(result["times_s"])
    result["peak_rss_mb"] = rss_mb("VmHWM")
    return result


# --------------------------------------------------------------------------- parent side


def spawn(case: str, method: str, args: argparse.Namespace, data: Path, model: Path,
          repeats: int) -> dict[str, Any]:
    """Run one worker in a fresh interpreter; a failure becomes an ``error`` entry, not an abort."""
    result_file = data / f"result_{case}_{method}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", case, method,
               "--data", str(data), "--result", str(result_file), "--model", str(model),
               "--device", args.device, "--batch-size", str(args.batch_size), "--repeats", str(repeats)]
    if args.grain is not None:
        command += ["--grain", str(args.grain)]
    if args.fill is not None:
        command += ["--fill", args.fill]
    if args.classical_thin is not None:
        command += ["--classical-thin", str(args.classical_thin)]
    print(f"[bench] {case} {method} (x{repeats}) ...", file=sys.stderr, end=" ", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not result_file.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        print(f"FAILED (exit {proc.returncode})\n" + "\n".join(tail), file=sys.stderr)
        return {"case": case, "method": method, "error": tail[-1] if tail else f"exit {proc.returncode}"}
    result = json.loads(result_file.read_text())
    median = result.get("median_s")
    shown = f"median {median:.3f} s" if median is not None else "done"
    print(f"{shown}, peak {result['peak_rss_mb']:.0f} MB ({wall:.0f} s wall)", file=sys.stderr)
    return result


def machine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """What the numbers were taken on; torch facts come from a child, which actually ran torch."""
    torch_facts = next((r for r in results if r.get("method") == "restore" and "torch" in r), {})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(), "cores": cores, "python": platform.python_version(),
        "opencv": cv2.__version__, "torch": torch_facts.get("torch"),
        "torch_threads": torch_facts.get("torch_threads"),
        "device": next((r["device"] for r in results if "device" in r), None),
        "device_name": next((r["device_name"] for r in results if "device_name" in r), None),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def seconds(value: float | None) -> str:
    if value is None:
        return "failed"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def megabytes(result: dict[str, Any]) -> str:
    return f"{result['peak_rss_mb']:.0f}" if "peak_rss_mb" in result else "failed"


def table(info: dict[str, dict], results: dict[tuple[str, str], dict[str, Any]]) -> str:
    lines = [
        "| case | input | damage | runs | restore s | Telea s | restore/Telea | restore peak RSS MB "
        "| Telea peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in CASES:
        if case not in info:
            continue
        ours, telea = results[(case, "restore")], results[(case, "telea")]
        a, b = ours.get("median_s"), telea.get("median_s")
        ratio = f"{a / b:.1f}x" if a is not None and b else "-"
        runs = len(ours.get("times_s", telea.get("times_s", [])))
        lines.append(f"| {case} | {info[case]['input']} | {info[case]['damage']} | {runs} | {seconds(a)} "
                     f"| {seconds(b)} | {ratio} | {megabytes(ours)} | {megabytes(telea)} |")
        if case == "d" and ("d", "detect") in results:
            auto = results[("d", "detect")]
            a = auto.get("median_s")
            ratio = f"{a / b:.1f}x" if a is not None and b else "-"
            lines.append(f"| d, no masks | the same, masks from the shipped detector | - | "
                         f"{len(auto.get('times_s', []))} | {seconds(a)} | {seconds(b)} | {ratio} "
                         f"| {megabytes(auto)} | - |")
    ours, telea = results[("baseline", "restore")], results[("baseline", "telea")]
    lines.append(f"| ref | imports only (restore: +torch) | - | - | - | - | - | {megabytes(ours)} "
                 f"| {megabytes(telea)} |")
    return "\n".join(lines)


def save_json(path: Path, args: argparse.Namespace, model: Path, model_note: str | None,
              info: dict[str, dict], results: dict[tuple[str, str], dict[str, Any]]) -> None:
    raw = {"machine": machine(list(results.values())), "model": str(model), "model_note": model_note,
           "note": args.note, "batch_size": args.batch_size, "grain": args.grain, "fill": args.fill,
           "seed": args.seed,
           "inputs": info,
           "complete": len(results) == 2 * (1 + len(info)), "results": list(results.values())}
    path.write_text(json.dumps(raw, indent=2) + "\n")


def default_model() -> tuple[Path, str | None]:
    """The shipped model, or the training run's while the package has none yet."""
    from restore.model.weights import default_weights_path

    shipped = default_weights_path()
    if shipped.exists():
        return shipped, None
    return FALLBACK_MODEL, f"{shipped} does not exist yet; using {FALLBACK_MODEL}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=ROOT / "examples" / "originals",
                        help="folder of real photos to cut inputs from (default: examples/originals)")
    parser.add_argument("--model", type=Path, default=None,
                        help="weights (default: the shipped model, else runs/v1/model.pt)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (restore side)")
    parser.add_argument("--batch-size", type=int, default=4, help="restore's --batch-size")
    parser.add_argument("--grain", type=float, default=None, help="restore's --grain (default: its own)")
    parser.add_argument("--fill", choices=["smooth", "realistic"], default=None,
                        help="restore's --fill (default: its own)")
    parser.add_argument("--classical-thin", type=float, default=None,
                        help="restore's --classical-thin (default: its own)")
    parser.add_argument("--detect", action="store_true",
                        help="case d: also time restore with no masks (the shipped detector finds them)")
    parser.add_argument("--cases", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs for cases a, c and d (median)")
    parser.add_argument("--scan-size", default="6000x4000",
                        help="case d's scan, WIDTHxHEIGHT (specks scale with the area)")
    parser.add_argument("--scan-bits", type=int, choices=(8, 16), default=8,
                        help="case d's scan depth: 8 (PNG) or 16 (LZW TIFF)")
    parser.add_argument("--scan-count", type=int, default=1,
                        help="case d: a folder of this many scans (images/s, and whether memory stays flat)")
    parser.add_argument("--repeats-large", type=int, default=1, help="timed runs for case b (median)")
    parser.add_argument("--seed", type=int, default=0, help="inputs and masks are drawn from this")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    parser.add_argument("--note", default=None, help="a line printed above the table (e.g. machine load)")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        result = run_worker(*args.worker, args)
        Path(args.result).write_text(json.dumps(result))
        return 0

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not cases or any(c not in CASES for c in cases):
        parser.error(f"--cases takes a comma-separated subset of {','.join(CASES)}")
    if min(args.repeats, args.repeats_large, args.batch_size, args.scan_count) < 1:
        parser.error("--repeats, --repeats-large, --batch-size and --scan-count must be at least 1")
    model, model_note = (args.model, None) if args.model else default_model()
    if not model.is_file():
        parser.error(f"model not found: {model}")
    if model_note:
        print(f"[bench] {model_note}", file=sys.stderr)

    # SIGTERM as an exception, so the temp inputs (up to ~0.5 GB) are removed and the worker killed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    data = Path(tempfile.mkdtemp(prefix="bench-images-"))
    try:
        # A private copy: a training run may replace the original while workers are loading it.
        private_model = data / "model.pt"
        shutil.copyfile(model, private_model)
        print(f"[bench] generating inputs in {data} ...", file=sys.stderr, flush=True)
        scan_size = tuple(int(v) for v in args.scan_size.lower().split("x"))
        info = make_inputs(data, find_photos(args.photos), cases, args.seed, scan_size,  # type: ignore[arg-type]
                           args.scan_bits, args.scan_count)
        results: dict[tuple[str, str], dict[str, Any]] = {}
        plan = [("baseline", 1)] + [(c, args.repeats_large if c == "b" else args.repeats) for c in cases]
        for case, repeats in plan:
            for method in METHODS + (("detect",) if case == "d" and args.detect else ()):
                results[(case, method)] = spawn(case, method, args, data, private_model, repeats)
                if args.json:  # after every worker: a long run that gets killed keeps what it measured
                    save_json(args.json, args, model, model_note, info, results)
    finally:
        shutil.rmtree(data, ignore_errors=True)

    facts = machine(list(results.values()))
    gpu = f" ({facts['device_name']})" if facts["device_name"] else ""
    print(f"Machine: {facts['cpu']}, {facts['cores']} cores; Python {facts['python']}, "
          f"torch {facts['torch']} ({facts['torch_threads']} threads), OpenCV {facts['opencv']}; "
          f"restore device {facts['device']}{gpu}, batch size {args.batch_size}")
    print(f"Model: {model}" + (f" ({model_note})" if model_note else ""))
    if facts["load_average"]:
        print("Load average at the end (1/5/15 min): " + ", ".join(f"{v:.2f}" for v in facts["load_average"]))
    if args.note:
        print(f"Note: {args.note}")
    print()
    print("Seconds: median of the timed runs after a warm-up. Peak RSS: the whole child process "
          "(Python, libraries, inputs, work); the ref row is imports alone.")
    print()
    print(table(info, results))
    if "d" in info:
        print()
        print("Case d, damaged pixels only, against the clean scan (8-bit scale): " + "; ".join(
            f"{m} PSNR {results[('d', m)]['hole_psnr']:.2f} dB, SSIM {results[('d', m)]['hole_ssim']:.4f}"
            for m in (*METHODS, "detect") if "hole_psnr" in results.get(("d", m), {})))
        if info["d"]["count"] > 1:
            print("Case d throughput: " + "; ".join(
                f"{m} {results[('d', m)]['images_per_s']:.3f} scans/s" for m in METHODS
                if "images_per_s" in results[("d", m)]))
        quarters = results[("d", "restore")].get("rss_quarters_mb")
        if quarters:
            print("Case d restore RSS, median of each quarter of the last run (MB): "
                  + " / ".join(f"{q:.0f}" for q in quarters if q is not None))
    failed = any("error" in r for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
