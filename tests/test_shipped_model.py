"""The model that ships inside the package: loads safely, small, and tiles consistently."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from restore.inpaint.engine import Inpainter
from restore.model.weights import WEIGHTS_FORMAT, default_weights_path, load_generator


def test_shipped_weights_load_with_weights_only_and_are_small():
    path = default_weights_path()
    assert path.exists() and path.stat().st_size <= 30 * 1024 * 1024
    blob = torch.load(path, map_location="cpu", weights_only=True)
    assert blob["format"] == WEIGHTS_FORMAT
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())
    model = load_generator()
    assert not model.training


def test_tiled_matches_untiled_away_from_seams(photo):
    """A large image run in 256-px tiles agrees with one 1024-px window, except near tile seams
    (the network's fill; the realistic one's patches come from each window, so tiles differ)."""
    big = cv2.resize(photo, (1024, 560), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros(big.shape[:2], np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(12):  # thin scratches spread over the whole frame
        x0, x1 = rng.integers(0, 1024, 2)
        cv2.line(mask, (int(x0), 0), (int(x1), 559), 1, 3)
    mask = mask > 0
    whole = Inpainter(device="cpu", precision="fp32", tile=1024, fill="smooth").repair([big], [mask])[0]
    tiled = Inpainter(device="cpu", precision="fp32", tile=256, fill="smooth").repair([big], [mask])[0]
    assert np.array_equal(whole[~mask], big[~mask]) and np.array_equal(tiled[~mask], big[~mask])
    diff = np.abs(whole.astype(np.float32) - tiled)[mask]
    spread = np.abs(whole.astype(np.float32) - big)[mask]  # how far the repair is from the damage-free photo
    assert diff.mean() < 0.3 * spread.mean()
    assert np.median(diff) <= 4


def test_hole_at_an_edge_of_an_odd_sized_image_is_not_seen_through_padding():
    """Windows are padded to the model's multiple by mirroring; mirrored holes must stay holes.

    Uses the trained model: a randomly initialised one is too insensitive to show the leak.
    """
    rng = np.random.default_rng(9)
    image = rng.integers(0, 256, (101, 99, 3)).astype(np.uint8)
    mask = np.zeros((101, 99), bool)
    mask[90:, 20:60] = True
    mask[30:50, 94:] = True
    a, b = image.copy(), image.copy()
    a[mask], b[mask] = 0, 255
    out_a, out_b = Inpainter(device="cpu", precision="fp32").repair([a, b], [mask, mask])
    assert np.array_equal(out_a, out_b)
