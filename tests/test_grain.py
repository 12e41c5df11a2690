"""Grain: the photo's fine texture reaches the rim of a smooth fill, and nothing else changes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from restore.inpaint.engine import Inpainter
from restore.inpaint.grain import GRAIN_DEPTH, add_grain


def _grainy(seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """A smooth colour gradient under strong per-pixel noise, like a grainy film scan."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:160, 0:200].astype(np.float32)
    base = np.stack([0.3 + 0.3 * xx / 200, 0.4 + 0.2 * yy / 160, 0.5 * np.ones_like(xx)], axis=-1)
    return np.clip(base + rng.normal(0, noise, base.shape), 0, 1).astype(np.float32)


def _smooth_fill(colour: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """What a network fill looks like at the finest scale: right colours, no grain."""
    out = colour.copy()
    out[hole] = cv2.GaussianBlur(colour, (0, 0), 4)[hole]
    return out


def _fine_std(colour: np.ndarray, where: np.ndarray) -> float:
    return float((colour - cv2.GaussianBlur(colour, (0, 0), 1.0))[where].std())


def _stroke(width: int) -> np.ndarray:
    hole = np.zeros((160, 200), bool)
    hole[:, 90 : 90 + width] = True
    return hole


def test_a_smooth_thin_fill_gets_the_grain_of_its_surroundings():
    photo = _grainy()
    hole = _stroke(5)
    filled = _smooth_fill(photo, hole)
    grained = add_grain(filled, hole, strength=1.0)
    around = (cv2.dilate(hole.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0) & ~hole
    assert _fine_std(filled, hole) < 0.3 * _fine_std(photo, around)  # the smear the grain is for
    assert _fine_std(grained, hole) > 0.7 * _fine_std(photo, around)


def test_only_hole_pixels_change_and_strength_zero_changes_nothing():
    photo = _grainy(1)
    hole = _stroke(7)
    filled = _smooth_fill(photo, hole)
    grained = add_grain(filled, hole, strength=1.0)
    assert np.array_equal(grained[~hole], filled[~hole])
    assert not np.array_equal(grained[hole], filled[hole])
    assert np.array_equal(add_grain(filled, hole, strength=0.0), filled)
    assert grained.min() >= 0 and grained.max() <= 1


def test_deep_inside_a_wide_hole_the_fill_is_left_as_the_model_made_it():
    """Detail mirrored from far away draws ghost outlines; only the rim takes grain."""
    photo = _grainy(2)
    hole = _stroke(80)
    filled = _smooth_fill(photo, hole)
    grained = add_grain(filled, hole, strength=1.0)
    deep = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5) > 2 * GRAIN_DEPTH + 1
    assert deep.any()
    assert np.array_equal(grained[deep], filled[deep])
    rim = hole & ~deep
    assert not np.array_equal(grained[rim], filled[rim])


def test_a_fill_that_already_has_the_photos_grain_gets_little_more():
    """Grain is topped up to the photo's level, not stacked on top of texture the model drew."""
    photo = _grainy(3)
    hole = _stroke(5)
    grainy_fill = photo.copy()
    grainy_fill[hole] = _grainy(4)[hole]  # other grain of the same strength
    added = add_grain(grainy_fill, hole, strength=1.0) - grainy_fill
    smooth = _smooth_fill(photo, hole)
    added_to_smooth = add_grain(smooth, hole, strength=1.0) - smooth
    assert np.abs(added[hole]).mean() < 0.5 * np.abs(added_to_smooth[hole]).mean()


@pytest.mark.parametrize("shape", [(40, 60), (3, 5)])
def test_a_hole_covering_all_or_nothing_is_returned_as_it_is(shape):
    colour = _grainy()[: shape[0], : shape[1]]
    for hole in (np.zeros(shape, bool), np.ones(shape, bool)):
        assert np.array_equal(add_grain(colour, hole), colour)


def test_the_inpainter_grain_setting_reaches_the_repair(tiny_model):
    photo = np.rint(_grainy(5) * 255).astype(np.uint8)
    hole = _stroke(4)
    plain = Inpainter(tiny_model, device="cpu", tile=256, grain=0.0).repair([photo], [hole])[0]
    grained = Inpainter(tiny_model, device="cpu", tile=256, grain=1.0).repair([photo], [hole])[0]
    assert np.array_equal(plain[~hole], photo[~hole]) and np.array_equal(grained[~hole], photo[~hole])
    as_float = grained.astype(np.float32) / 255
    assert _fine_std(as_float, hole) > _fine_std(plain.astype(np.float32) / 255, hole)


def test_a_large_region_grained_tile_by_tile_matches_one_pass(monkeypatch):
    """Tiles carry enough margin that nothing a hole pixel's grain depends on is cut off."""
    import restore.inpaint.grain as grain

    rng = np.random.default_rng(6)
    photo = np.concatenate([_grainy(7), _grainy(8)], axis=1)  # 160 x 400
    hole = np.zeros(photo.shape[:2], np.uint8)
    for _ in range(6):
        (x0, x1), (y0, y1) = rng.integers(0, 400, 2), rng.integers(0, 160, 2)
        cv2.line(hole, (int(x0), int(y0)), (int(x1), int(y1)), 1, int(rng.integers(2, 8)))
    cv2.rectangle(hole, (150, 40), (230, 120), 1, -1)
    hole = hole > 0
    filled = _smooth_fill(photo, hole)
    monkeypatch.setattr(grain, "GRAIN_TILE", 48)  # 160 x 400 is then many tiles
    tiled = grain.add_grain(filled, hole, strength=1.0)
    monkeypatch.setattr(grain, "GRAIN_TILE", 10_000)
    whole = grain.add_grain(filled, hole, strength=1.0)
    assert not np.array_equal(tiled, filled)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
