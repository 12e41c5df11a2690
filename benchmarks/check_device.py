"""Does the accelerator path give the CPU's answers? Inpainter and damage detector, side by side.

Runs the shipped inpainting model and the preview detector on the examples (and on larger
synthetic photos) on ``--device`` at its default precision and in fp32, and on the CPU in fp32,
and prints the largest differences, whether pixels outside the mask changed, and seconds per
photo (median of 3). On a GPU machine: ``python benchmarks/check_device.py --device cuda``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from restore.detect.detector import Detector
from restore.inpaint.engine import Inpainter

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _photos() -> tuple[list[np.ndarray], list[np.ndarray]]:
    names = ("lanterns", "mountain")
    images = [cv2.cvtColor(cv2.imread(str(EXAMPLES / "damaged" / f"{n}.jpg")), cv2.COLOR_BGR2RGB)
              for n in names]
    masks = [cv2.imread(str(EXAMPLES / "masks" / f"{n}.png"), cv2.IMREAD_GRAYSCALE) > 0 for n in names]
    rng = np.random.default_rng(0)
    for _ in range(4):  # 1536 x 1024 photos with a box and a line: tiles, batches and the coarse pass
        big = cv2.resize(images[len(images) % 2], (1536, 1024), interpolation=cv2.INTER_CUBIC)
        mask = np.zeros(big.shape[:2], bool)
        y, x = int(rng.integers(100, 700)), int(rng.integers(100, 1100))
        mask[y:y + 200, x:x + 300] = True
        mask[int(rng.integers(0, 1024)), :] = True
        images.append(big)
        masks.append(mask)
    return images, masks


def _timed(fn, repeats: int = 3):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    images, masks = _photos()
    n = len(images)

    # The network's fill should match the CPU's to a few grey levels; the realistic fill's patch
    # choices can flip on tiny differences, so there only the outside of the mask must match.
    for fill in ("smooth", "realistic"):
        reference = Inpainter(None, device="cpu", precision="fp32", fill=fill).repair(images, masks)
        for precision in ("auto", "fp32"):
            inpainter = Inpainter(None, device=args.device, precision=precision, batch_size=args.batch_size,
                                  fill=fill)
            out, seconds = _timed(lambda inp=inpainter: inp.repair(images, masks))
            diffs = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(out, reference, strict=True)]
            outside = sum(int((a != img)[~m].sum()) for a, img, m in zip(out, images, masks, strict=True))
            worst, mean = max(int(d.max()) for d in diffs), np.mean([d.mean() for d in diffs])
            print(f"inpaint {fill} {args.device} {precision}: max diff vs CPU fp32 {worst} grey levels "
                  f"(mean {mean:.4f}), pixels changed outside the mask {outside}, {seconds / n:.3f} s/photo")

    cpu_probs = Detector("preview", device="cpu", precision="fp32").probabilities(images)
    for precision in ("auto", "fp32"):
        detector = Detector("preview", device=args.device, precision=precision)
        probs, seconds = _timed(lambda det=detector: det.probabilities(images))
        diff = max(float(np.abs(a - b).max()) for a, b in zip(probs, cpu_probs, strict=True))
        flips = sum(int(((a > detector.threshold) != (b > detector.threshold)).sum())
                    for a, b in zip(probs, cpu_probs, strict=True))
        pixels = sum(p.size for p in probs)
        print(f"detect {args.device} {precision}: max probability diff vs CPU fp32 {diff:.4f}, "
              f"mask pixels that differ {flips} of {pixels}, {seconds / n:.3f} s/photo")


if __name__ == "__main__":
    main()
