"""A weights-only copy of a training checkpoint, small enough to copy to another machine.

A full checkpoint holds the generator, its EMA, the discriminator and both Adam states in
fp32 (85 MB for the default generator). Kept here: generator and discriminator in fp16
(11 MB). ``--resume`` from it starts the EMA from the generator and Adam afresh (see
``loop.train``).

    python -m restore.train.slim runs/my-run/checkpoint.pt my-run-slim.pt
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from restore.model.weights import save_atomic

KEPT = ("config", "step", "seconds", "train_config")
HALVED = ("generator", "discriminator")


def slim_checkpoint(src: Path, dst: Path) -> None:
    """Write ``src``'s generator and discriminator weights (fp16) and step to ``dst``."""
    state = torch.load(src, map_location="cpu", weights_only=True)
    slim = {key: state[key] for key in KEPT if key in state}
    for key in HALVED:
        slim[key] = {name: t.half() if t.is_floating_point() else t for name, t in state[key].items()}
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    save_atomic(slim, Path(dst))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m restore.train.slim CHECKPOINT OUT")
    slim_checkpoint(Path(sys.argv[1]), Path(sys.argv[2]))
