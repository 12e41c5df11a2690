"""Loading and saving detector weights: a plain dict of tensors, read with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from restore.detect.model import DamageNet, DetectorConfig
from restore.model.weights import read_weights, save_atomic

DETECTOR_FORMAT = "restore-detect-v1"


# Names for the detector that ships inside the package: "default", and "preview", its name from
# before it became the default (kept so scripts that say --detector preview keep working).
SHIPPED_NAMES = ("default", "preview")


def default_detector_path() -> Path:
    """The detector inside the package, used whenever no other one is named."""
    return Path(__file__).resolve().parents[1] / "weights" / "detect.pt"


def resolve_detector_path(model: str | os.PathLike | None) -> Path:
    """None or a shipped name: the default detector; anything else is a path."""
    if model is None or str(model) in SHIPPED_NAMES:
        return default_detector_path()
    return Path(model)


def load_detector(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> DamageNet:
    """Build the network a weights file describes and load it, in eval mode."""
    path = resolve_detector_path(path)
    config, state, meta = read_weights(path, DETECTOR_FORMAT, "damage detector", "optimizer")
    model = DamageNet(DetectorConfig.from_dict(config))
    model.load_state_dict(state)
    # The probability that sensitivity 0.5 stands for, calibrated on clean training photos.
    model.threshold = float(meta.get("threshold", 0.5))
    # How many views the detector averages by default (the threshold is for this many),
    # and the thresholds calibrated for each number of views (older files have none).
    model.views = int(meta.get("views", 1))
    model.thresholds = {int(k): float(v) for k, v in meta.get("thresholds", {}).items()}
    # The coarse scan's own, per number of views (older files have none: see Detector).
    model.coarse_thresholds = {int(k): float(v) for k, v in meta.get("coarse_thresholds", {}).items()}
    return model.eval().to(device)


def export_detector(model: DamageNet, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write fp16 weights atomically."""
    state = {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    save_atomic({"format": DETECTOR_FORMAT, "config": model.config.to_dict(), "state_dict": state,
                 "meta": meta or {}}, path)
