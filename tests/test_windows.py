"""Window planning: every hole pixel covered, context around it, tiles only where needed."""

from __future__ import annotations

import numpy as np

from restore.inpaint.windows import (
    SPOT_CONTEXT,
    SPOT_SIDES,
    Box,
    deep_hole,
    feather,
    plan_regions,
    plan_spots,
    split_tiles,
)


def _covered(mask: np.ndarray, boxes: list[Box]) -> np.ndarray:
    cover = np.zeros_like(mask)
    for b in boxes:
        cover[b.slices] = True
    return cover


def test_every_hole_pixel_lies_in_a_region_and_regions_do_not_overlap():
    rng = np.random.default_rng(1)
    mask = np.zeros((900, 1300), bool)
    for _ in range(40):
        y, x = rng.integers(0, 880), rng.integers(0, 1280)
        mask[y : y + rng.integers(1, 20), x : x + rng.integers(1, 20)] = True
    regions = plan_regions(mask, tile=512)
    assert (_covered(mask, regions) | ~mask).all()
    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            assert not a.overlaps(b)


def test_small_hole_gets_context_and_a_batchable_side():
    mask = np.zeros((1000, 1000), bool)
    mask[500:510, 500:506] = True
    (region,) = plan_regions(mask, tile=512, min_context=48)
    assert region.height == region.width and region.height % 64 == 0
    assert region.y0 <= 500 - 48 and region.y1 >= 510 + 48
    assert region.height < 1000  # not the whole image


def test_no_damage_means_no_work():
    assert plan_regions(np.zeros((300, 300), bool)) == []


def test_tiles_cover_a_long_scratch_but_skip_clean_tiles():
    mask = np.zeros((2000, 3000), bool)
    mask[1000:1003, :] = True
    region = Box(0, 0, 2000, 3000)
    tiles = split_tiles(region, mask, tile=512, overlap=64)
    assert (_covered(mask, tiles) | ~mask).all()
    assert all(t.height <= 512 and t.width <= 512 for t in tiles)
    assert len(tiles) < 20  # a full grid would be 4 x 7 = 28 tiles


def test_feather_is_one_at_region_borders_and_ramps_inside():
    region = Box(0, 0, 100, 200)
    left, right = Box(0, 0, 100, 120), Box(0, 80, 100, 200)
    wl, wr = feather(left, region, 40), feather(right, region, 40)
    assert wl[:, 0].min() == 1.0 and wr[:, -1].min() == 1.0
    assert wl[50, -1] < 0.1 and wr[50, 0] < 0.1
    total = np.zeros((100, 200))
    total[left.slices] += wl
    total[right.slices] += wr
    assert total.min() > 0


def test_deep_hole_marks_only_the_far_interior():
    mask = np.zeros((400, 400), bool)
    mask[50:350, 50:350] = True
    deep = deep_hole(mask, reach=64)
    assert deep[200, 200] and not deep[60, 200] and not deep[~mask].any()


def _specks(shape, count, seed=0):
    """Dust: ``count`` round specks 2-15 px across, anywhere in the frame."""
    import cv2

    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, np.uint8)
    for _ in range(count):
        r = int(rng.integers(1, 8))
        cv2.circle(mask, (int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0]))), r, 1, -1)
    return mask > 0


def test_many_specks_get_small_windows_of_their_own_not_a_frame_sized_region():
    mask = _specks((2000, 3000), 400)
    spots, rest = plan_spots(mask)
    assert not rest.any() and plan_regions(rest) == []
    assert all(max(s.window.height, s.window.width) <= max(SPOT_SIDES) for s in spots)
    assert sum(s.window.height * s.window.width for s in spots) < 0.25 * mask.size
    # Before spots, the same specks' windows merged into regions covering most of the frame.
    assert sum(b.height * b.width for b in plan_regions(mask)) > 0.5 * mask.size


def test_every_spot_pixel_is_owned_once_and_has_context_around_it():
    mask = _specks((700, 900), 150, seed=1)
    spots, rest = plan_spots(mask)
    owned = np.zeros(mask.shape, int)
    for spot in spots:
        w = spot.window
        owned[w.slices] += spot.own
        ys, xs = np.nonzero(spot.own)
        y0, y1, x0, x1 = ys.min() + w.y0, ys.max() + w.y0, xs.min() + w.x0, xs.max() + w.x0
        for near, far, lo, hi in ((y0, y1, w.y0, w.y1), (x0, x1, w.x0, w.x1)):
            at_edge = lo == 0 or hi in mask.shape
            assert at_edge or (near - lo >= SPOT_CONTEXT and hi - 1 - far >= SPOT_CONTEXT)
    assert np.array_equal(owned + rest, mask.astype(int))  # each hole pixel: one spot, or the rest


def test_long_scratches_and_dense_clusters_are_not_spots():
    mask = np.zeros((600, 800), bool)
    mask[300:302, 50:750] = True  # a hairline: regions and small tiles along it, as before
    for dy in (0, 1):  # 2x2 dots 1 px apart: each small, but their windows mostly hole
        for dx in (0, 1):
            mask[100 + dy : 180 : 3, 100 + dx : 180 : 3] = True
    mask[500:505, 400:406] = True  # one speck
    spots, rest = plan_spots(mask)
    assert rest[300, 400] and rest[139, 139]
    assert not rest[502, 402] and any(s.own.sum() == 30 and s.window.y0 <= 500 for s in spots)
