"""Compare damage detectors where they flag the same share of clean photos.

A quality probe, not a timing. Each detector's own calibrated threshold comes from a sample
of training photos, and how many clean val pixels it then flags swings a lot with that
sample (docs/experiments.md, 'calibration spread'), so two exports scored by `restore eval --task detect`
differ as much by their thresholds as by what they learnt. Here each detector's threshold
is instead the loosest that flags at most RATE percent of the clean photos' pixels (mean
over photos, as the exam reports it), and the exam's seeded damage is then scored at that
threshold: precision, recall and F1 with its 2 px tolerance, the counts pooled over the damage
seeds asked for. One seed is one draw of damage per photo, and on val's 45 photos the
difference between two detectors can change sign from one seed to the next (mixed damage,
a 6,214-step fine-tune against the preview: -0.015 F1 with seed 0, +0.060 with seed 1;
docs/experiments.md, 'wider detectors, pooled seeds'): compare over several. The thresholds are picked on
DATA, so use this to compare detectors, never to set a shipped threshold.

The full-resolution scan only: the coarse second scan (which the exam adds for damage wider
than the network's view) is left out, so tears, stains and holes score lower than in the exam.

    python benchmarks/compare_detectors.py ../shared/data/val --detector preview --detector runs/d/detect.pt \
        --seeds 0,1,2
    python benchmarks/compare_detectors.py ../shared/data/val --detector preview --rates 0.087,0.3 --types all
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from restore.detect.detector import Detector
from restore.detect.synth import DAMAGE_TYPES
from restore.eval.detection import MIXED, Counts, damage_case
from restore.eval.protocol import find_photos
from restore.inpaint.composite import to_colour
from restore.io.images import read_image

# Thresholds tried: even steps in logit from 0.5 to 1 - 1e-6, since a detector's false alarms
# can sit at 0.9999 and more (a linear grid to 0.9999 found none for one such export).
GRID = 1 / (1 + np.exp(-np.linspace(0.0, 13.8, 1400)))


def matched_threshold(clean: list[np.ndarray], rate: float) -> float:
    """The loosest threshold in ``GRID`` at which the mean share of flagged pixels over the clean
    probability maps is at most ``rate`` percent (1.0 when none is that strict)."""
    # each map's share above every threshold at once, from its sorted values
    means = np.mean([1 - np.searchsorted(np.sort(c, axis=None), GRID, side="right") / c.size
                     for c in clean], axis=0) * 100
    ok = np.nonzero(means <= rate)[0]
    return float(GRID[ok[0]]) if len(ok) else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="folder of clean photos (e.g. ../shared/data/val)")
    parser.add_argument("--detector", action="append", required=True,
                        help="a weights file, or preview; repeat to compare")
    parser.add_argument("--rates", default="0.087", help="percent of clean pixels flagged, comma-separated")
    parser.add_argument("--types", default="scratch,dust,mixed", help="damage types, or all")
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--also-clean", default=None, metavar="DIR",
                        help="more clean photos (e.g. held-out textures: python benchmarks/detector_data.py "
                             "--holdout-dir DIR): the share of their pixels each detector flags at the "
                             "matched thresholds and at its own")
    parser.add_argument("--seeds", default="0",
                        help="the exam's damage seeds, comma-separated; counts are pooled over them")
    args = parser.parse_args()
    types = (*DAMAGE_TYPES, MIXED) if args.types == "all" else tuple(args.types.split(","))
    rates = [float(r) for r in args.rates.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    photos = [(rel, np.rint(to_colour(read_image(path).pixels) * 255).astype(np.uint8))
              for path, rel in find_photos(args.data)]
    print(f"{len(photos)} photos, {args.views} view(s), full-resolution scan, seeds {args.seeds}")
    extra = ([np.rint(to_colour(read_image(path).pixels) * 255).astype(np.uint8)
              for path, _ in find_photos(args.also_clean)] if args.also_clean else [])
    print("detector  rate%  threshold  " + "  ".join(f"{t} P/R/F1" for t in types)
          + (f"  also-clean% ({len(extra)})" if extra else ""))
    for name in args.detector:
        detector = Detector(name, coarse_side=None, views=args.views)
        own = detector.threshold
        detector.threshold = 0.0  # every view on every tile: the thresholds are applied here
        clean = [detector.probabilities([photo])[0] for _, photo in photos]
        textures = [detector.probabilities([photo])[0] for photo in extra]
        thresholds = [matched_threshold(clean, rate) for rate in rates]
        counts = {t: [Counts() for _ in rates] for t in types}
        for damage, seed in itertools.product(types, seeds):
            for relative, photo in photos:
                image, truth = damage_case(photo, relative, damage, seed)
                prob = detector.probabilities([image])[0]
                for c, threshold in zip(counts[damage], thresholds, strict=True):
                    c.add(prob > threshold, truth, 2)
        for k, (rate, threshold) in enumerate(zip(rates, thresholds, strict=True)):
            cells = []
            for damage in types:
                s = counts[damage][k].scores()
                cells.append(f"{s['precision']:.3f}/{s['recall']:.3f}/{s['f1']:.3f}")
            if textures:
                cells.append(f"{100 * np.mean([(t > threshold).mean() for t in textures]):.3f}")
            print(f"{name}  {rate:.3f}  {threshold:.5f}  " + "  ".join(cells), flush=True)
        if textures:
            flagged = [100 * (t > own).mean() for t in textures]
            print(f"{name}  own threshold {own:.5f}: also-clean {np.mean(flagged):.3f}% of pixels flagged "
                  f"(median photo {np.median(flagged):.3f}%, worst {max(flagged):.2f}%, "
                  f"{sum(f == 0 for f in flagged)} of {len(flagged)} photos untouched)", flush=True)


if __name__ == "__main__":
    main()
