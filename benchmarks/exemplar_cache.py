"""Build the refiner's training cache: exemplar fills of training crops (restore/train/exemplar_cache.py).

One process per core, each its own shard; rerun the same command to resume:

    python benchmarks/detector_data.py ../shared/data runs/det-data --holdout-dir runs/holdout
    for s in 0 1; do nice python benchmarks/exemplar_cache.py runs/det-data runs/ex-cache \\
        --samples 6144 --shard $s --shards 2 & done
    restore train runs/det-data --exemplar-cache runs/ex-cache --init default --out refine.pt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from restore.model.weights import load_generator
from restore.train.data import load_photos
from restore.train.exemplar_cache import build_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="folder of clean photos")
    parser.add_argument("out", type=Path, help="cache folder")
    parser.add_argument("--samples", type=int, default=6144)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--model", default=None, help="guide network (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.monotonic()
    made = build_cache(load_generator(args.model), load_photos(args.data), args.out, args.samples,
                       args.crop, args.seed, args.shard, args.shards)
    print(f"shard {args.shard}: {made} samples in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
