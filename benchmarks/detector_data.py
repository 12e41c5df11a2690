"""Build the detector's training folder from ../shared/data: train/ + train-extra/, minus held-out textures.

The held-out textures (``holdout-textures.txt``: 48 look-alike surface textures and 12 aerial
photos of train-extra, the first of each kind by SHA-256, so the pick is reproducible) are never
trained on: they measure how much clean, damage-like texture a detector flags
(``compare_detectors.py --also-clean``, on the folder ``--holdout-dir`` links them into).
Scenes are what users repair and train-extra is mostly texture, so the photos of train/ are
linked ``--scene-weight`` times (training samples photos uniformly).

    python benchmarks/detector_data.py ../shared/data runs/det-data --holdout-dir runs/holdout
    restore train runs/det-data --task detect --init preview --out runs/det2/detect.pt --resume
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

HOLDOUT = Path(__file__).with_name("holdout-textures.txt")
LOOK_ALIKES = re.compile(r"crack|soil|dirt|mud|cobble|bark|gravel|rock|brick|wood|fabric|ground|stone|"
                         r"concrete|wall|sand|pav|road|cliff", re.I)


def pick_holdout(manifest: Path, textures: int = 48, aerials: int = 12) -> list[str]:
    """The held-out files: the first textures (by name a look-alike of damage) and aerials by SHA-256."""
    rows = list(csv.DictReader(manifest.open(), delimiter="\t"))
    by_sha = sorted(rows, key=lambda r: r["sha256"])
    tex = [r["file"] for r in by_sha if r["kind"] == "texture" and LOOK_ALIKES.search(r["file"])]
    aer = [r["file"] for r in by_sha if r["kind"] == "aerial"]
    return sorted(tex[:textures] + aer[:aerials])


def holdout() -> list[str]:
    return [line.strip() for line in HOLDOUT.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shared_data", type=Path, help="../shared/data")
    parser.add_argument("out", type=Path, help="folder of symlinks to create")
    parser.add_argument("--scene-weight", type=int, default=2)
    parser.add_argument("--holdout-dir", type=Path, default=None, help="also link the held-out photos here")
    parser.add_argument("--write-holdout", action="store_true", help="(re)write holdout-textures.txt")
    args = parser.parse_args()
    if args.write_holdout:
        HOLDOUT.write_text("\n".join(pick_holdout(args.shared_data / "MANIFEST-train-extra.tsv")) + "\n")
    held = set(holdout())
    args.out.mkdir(parents=True, exist_ok=True)
    count = 0
    for copy in range(args.scene_weight):
        for photo in sorted((args.shared_data / "train").iterdir()):
            link = args.out / f"train{copy}__{photo.name}"
            if not link.exists():
                link.symlink_to(photo.resolve())
            count += 1
    for photo in sorted((args.shared_data / "train-extra").iterdir()):
        if photo.name in held:
            continue
        link = args.out / f"extra__{photo.name}"
        if not link.exists():
            link.symlink_to(photo.resolve())
        count += 1
    if args.holdout_dir is not None:
        args.holdout_dir.mkdir(parents=True, exist_ok=True)
        for name in held:
            link = args.holdout_dir / name
            if not link.exists():
                link.symlink_to((args.shared_data / "train-extra" / name).resolve())
    print(f"{count} links in {args.out}; {len(held)} held out")


if __name__ == "__main__":
    main()
