"""Window planning: every hole pixel covered, context around it, tiles only where needed."""

from __future__ import annotations

import numpy as np

from restore.inpaint.windows import Box, deep_hole, feather, plan_regions, split_tiles


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
