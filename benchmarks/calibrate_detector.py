"""Re-calibrate a detector's thresholds (full-resolution and coarse, per number of views) on a
folder of clean photos, and write a copy of the weights with them.

Calibrate on training photos only, never on what you evaluate on. What training itself does at
every checkpoint (on the mixed training folder); this lets a run be calibrated on another set,
e.g. ``../shared/data/train`` alone, without retraining.

    python benchmarks/calibrate_detector.py runs/det3/detect.pt ../shared/data/train runs/det3/cal.pt
    python benchmarks/calibrate_detector.py runs/det3/detect.pt ../shared/data/train out.pt --coarse-only
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from restore.detect.train import calibrate_coarse_thresholds, calibrate_thresholds
from restore.detect.weights import load_detector
from restore.train.data import load_photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("photos", type=Path, help="clean photos (training photos only)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--coarse-only", action="store_true", help="keep the full-resolution thresholds")
    args = parser.parse_args()
    model = load_detector(args.weights)
    photos = load_photos(args.photos)
    device = torch.device("cpu")
    blob = torch.load(args.weights, weights_only=True)
    meta = blob.setdefault("meta", {})
    if not args.coarse_only:
        full = calibrate_thresholds(model, photos, device)
        meta.update(threshold=full[int(meta.get("views", 1))],
                    thresholds={str(k): v for k, v in full.items()})
    coarse = calibrate_coarse_thresholds(model, photos, device)
    meta.update(coarse_thresholds={str(k): v for k, v in coarse.items()}, calibrated_on=str(args.photos))
    torch.save(blob, args.out)
    print({"threshold": meta.get("threshold"), "coarse_thresholds": meta["coarse_thresholds"]})


if __name__ == "__main__":
    main()
