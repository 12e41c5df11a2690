"""Speed of the damage detector on a 12-megapixel scan, against a classical detector in the same run.

The classical side is what a shell script would do with OpenCV alone: a median-filter residual
(pixels far from their 5x5 median are specks and scratches), thresholded. It finds much less
(no tears, stains or holes, many false alarms on texture) but shows what the network costs.

    python benchmarks/bench_detect.py                    # shipped detector, 3 runs, median
    python benchmarks/bench_detect.py --detector preview  # also timed seen once (1 view)
    python benchmarks/bench_detect.py --detector preview --clean  # no damage: extra views skipped
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


def scan(width: int, height: int, seed: int, damaged: bool = True) -> np.ndarray:
    """A photo upscaled to scan size with mild grain, plus synthetic scratches and dust."""
    from restore.detect.synth import paint_damage

    photo = cv2.cvtColor(cv2.imread(str(ROOT / "examples" / "originals" / "mountain.jpg")), cv2.COLOR_BGR2RGB)
    big = cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    big = np.clip(big + rng.normal(0, 3, big.shape), 0, 255).astype(np.uint8)
    if not damaged:
        return big
    out, _ = paint_damage(big, rng, types=("scratch", "dust"), count=2, negatives=0.0, scale=3.0)
    return out


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
    parser.add_argument("--clean", action="store_true",
                        help="the scan without damage: where the extra views are skipped")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    image = scan(width, height, args.seed, damaged=not args.clean)
    detector = Detector(args.detector, device=args.device)
    ours = timed(args.repeats, lambda: detector.detect([image]), warmup=True)
    # The extra views' cost, in the same run: the same weights seen once.
    once = ours
    if detector.views > 1:
        single = Detector(args.detector, device=args.device, views=1)
        once = timed(args.repeats, lambda: single.detect([image]), warmup=True)
    classic = timed(args.repeats, lambda: median_residual(image), warmup=True)
    flagged = float(detector.detect([image])[0].mean())
    mp = width * height / 1e6
    print(f"cpu threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}, "
          f"device {detector.device}, {mp:.1f} MP {'clean' if args.clean else 'damaged'}, "
          f"{args.repeats} runs (median)")
    print("| detector | s | s/MP | vs median residual | flagged % |")
    print("|---|---|---|---|---|")
    med, base = statistics.median(ours), statistics.median(classic)
    print(f"| restore ({detector.views} views) | {med:.3f} | {med / mp:.4f} | {med / base:.1f}x | "
          f"{100 * flagged:.3f} |")
    if detector.views > 1:
        one = statistics.median(once)
        print(f"| restore (1 view) | {one:.3f} | {one / mp:.4f} | {one / base:.1f}x | "
              f"{100 * float(single.detect([image])[0].mean()):.3f} |")
    print(f"| median residual (OpenCV) | {base:.3f} | {base / mp:.4f} | 1.0x | "
          f"{100 * float(median_residual(image).mean()):.3f} |")


if __name__ == "__main__":
    main()
