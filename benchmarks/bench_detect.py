"""Speed of the damage detector on a 12-megapixel scan, against a classical detector in the same run.

The classical side is what a shell script would do with OpenCV alone: a median-filter residual
(pixels far from their 5x5 median are specks and scratches), thresholded. It finds much less
(no tears, stains or holes, many false alarms on texture) but shows what the network costs.

    python benchmarks/bench_detect.py                    # shipped detector, 3 runs, median
    python benchmarks/bench_detect.py --detector runs/d2/detect.pt --repeats 5 --size 6000x4000
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import cv2
import numpy as np
import torch
from common import timed

from restore.detect.detector import Detector

ROOT = Path(__file__).resolve().parents[1]


def scan(width: int, height: int, seed: int) -> np.ndarray:
    """A photo upscaled to scan size with mild grain, plus synthetic scratches and dust."""
    from restore.detect.synth import paint_damage

    photo = cv2.cvtColor(cv2.imread(str(ROOT / "examples" / "originals" / "mountain.jpg")), cv2.COLOR_BGR2RGB)
    big = cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    big = np.clip(big + rng.normal(0, 3, big.shape), 0, 255).astype(np.uint8)
    damaged, _ = paint_damage(big, rng, types=("scratch", "dust"), count=2, negatives=0.0, scale=3.0)
    return damaged


def median_residual(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.absdiff(grey, cv2.medianBlur(grey, 5)) > 40


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", default=None, help="detector weights (default: the shipped one)")
    parser.add_argument("--size", default="4240x2832", help="WIDTHxHEIGHT (default 12 MP)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    image = scan(width, height, args.seed)
    detector = Detector(args.detector, device=args.device)
    ours = timed(args.repeats, lambda: detector.detect([image]), warmup=True)
    classic = timed(args.repeats, lambda: median_residual(image), warmup=True)
    flagged = float(detector.detect([image])[0].mean())
    mp = width * height / 1e6
    print(f"cpu threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}, "
          f"device {detector.device}, {mp:.1f} MP, {args.repeats} runs (median)")
    print("| detector | s | s/MP | vs median residual | flagged % |")
    print("|---|---|---|---|---|")
    med, base = statistics.median(ours), statistics.median(classic)
    print(f"| restore | {med:.3f} | {med / mp:.4f} | {med / base:.1f}x | {100 * flagged:.3f} |")
    print(f"| median residual (OpenCV) | {base:.3f} | {base / mp:.4f} | 1.0x | "
          f"{100 * float(median_residual(image).mean()):.3f} |")


if __name__ == "__main__":
    main()
