"""The engine changes masked pixels only, at every bit depth and channel layout."""

from __future__ import annotations

import numpy as np
import pytest

from restore.inpaint.engine import Inpainter


@pytest.fixture(scope="module")
def inpainter(tiny_model):
    return Inpainter(tiny_model, device="cpu", tile=256, batch_size=4)



def _mask(shape, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    for _ in range(6):
        y, x = rng.integers(0, shape[0] - 12), rng.integers(0, shape[1] - 12)
        mask[y : y + 10, x : x + rng.integers(2, 12)] = True
    return mask


@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (1, np.uint8), (4, np.uint8),
                                            (2, np.uint16), (3, np.uint16)])
def test_pixels_outside_the_mask_are_bit_exact(inpainter, channels, dtype):
    rng = np.random.default_rng(3)
    top = 65535 if dtype == np.uint16 else 255
    image = rng.integers(0, top + 1, (150, 230, channels)).astype(dtype)
    mask = _mask(image.shape[:2])
    (out,) = inpainter.repair([image], [mask])
    assert out.dtype == image.dtype and out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])
    if channels in (2, 4):  # alpha is never touched, not even inside the hole
        assert np.array_equal(out[..., -1], image[..., -1])
    assert not np.array_equal(out[mask][..., 0], image[mask][..., 0])


def test_hole_content_is_ignored(inpainter, photo):
    """Whatever was under the hole (damage) must not leak into the repair."""
    mask = _mask(photo.shape[:2], seed=5)
    a, b = photo.copy(), photo.copy()
    a[mask] = 0
    b[mask] = 255
    out_a, out_b = inpainter.repair([a, b], [mask, mask])
    assert np.array_equal(out_a[mask], out_b[mask])


def test_batching_across_images_gives_the_same_result_as_one_by_one(inpainter, photo):
    masks = [_mask(photo.shape[:2], seed=s) for s in range(3)]
    together = inpainter.repair([photo] * 3, masks)
    alone = [inpainter.repair([photo], [m])[0] for m in masks]
    for t, a in zip(together, alone, strict=True):
        assert np.abs(t.astype(int) - a).max() <= 1


def test_hole_wider_than_a_tile_takes_the_coarse_path_and_fills_everything(inpainter, photo):
    mask = np.zeros(photo.shape[:2], bool)
    mask[40:400, 60:560] = True  # far wider than tile=256 can see around
    (out,) = inpainter.repair([photo], [mask])
    assert np.array_equal(out[~mask], photo[~mask])
    assert out[mask].std() > 0  # filled, not left blank


def test_mask_of_the_wrong_size_is_an_error(inpainter, photo):
    with pytest.raises(ValueError, match="mask"):
        inpainter.repair([photo], [np.zeros((10, 10), bool)])



def test_thin_damage_gets_small_tiles_and_wide_damage_full_ones(tiny_model, photo, spy_windows):
    import cv2

    inpainter = Inpainter(tiny_model, device="cpu", tile=512)
    image = cv2.resize(photo, (1400, 1000))
    scratch = np.zeros((1000, 1400), np.uint8)
    cv2.line(scratch, (50, 0), (1300, 999), 1, 3)
    calls = spy_windows(inpainter)
    (out,) = inpainter.repair([image], [scratch > 0])
    assert calls and max(max(c) for c in calls) < 512  # small tiles along the scratch
    assert sum(h * w for h, w in calls) < 0.5 * 1400 * 1000
    assert np.array_equal(out[scratch == 0], image[scratch == 0])
    calls.clear()
    blob = np.zeros((1000, 1400), bool)
    blob[300:600, 400:800] = True
    inpainter.repair([image], [blob])
    assert max(max(c) for c in calls) == 512


def test_a_blot_on_a_hairline_does_not_give_the_whole_hairline_large_tiles(tiny_model, photo, spy_windows):
    """Tile sides follow the hole's local width: the blot gets a larger tile, the rest of the
    scratch keeps tiles sized for a hairline, and every hole pixel is still filled."""
    import cv2

    inpainter = Inpainter(tiny_model, device="cpu", tile=512, classical_depth=0)  # the network's tiles
    image = cv2.resize(photo, (1400, 1000))
    scratch = np.zeros((1000, 1400), np.uint8)
    cv2.line(scratch, (0, 500), (1399, 500), 1, 3)
    calls = spy_windows(inpainter)
    inpainter.repair([image], [scratch > 0])
    thin = sorted(calls)
    calls.clear()
    cv2.circle(scratch, (700, 500), 20, 1, -1)  # a blot 41 px across, on the scratch
    damaged = image.copy()
    damaged[scratch > 0] = 255
    (out,) = inpainter.repair([damaged], [scratch > 0])
    sides = [max(c) for c in calls]
    assert max(sides) > max(max(c) for c in thin)  # the blot needs more context ...
    assert sides.count(min(sides)) >= len(thin) - 4  # ... the hairline elsewhere does not
    assert sum(h * w for h, w in calls) < 2 * sum(h * w for h, w in thin)
    assert not (out[scratch > 0] == 255).all(axis=-1).any()  # every damaged pixel got a fill
    assert np.array_equal(out[scratch == 0], image[scratch == 0])


def test_a_black_and_white_photo_stored_as_rgb_gets_a_fill_without_colour(inpainter, photo):
    """The untrained model fills with arbitrary colours; the fill keeps to the photo's own tones."""
    grey = np.repeat(photo.mean(axis=2, keepdims=True).round().astype(np.uint8), 3, axis=2)
    mask = _mask(grey.shape[:2], seed=2)
    (out,) = inpainter.repair([grey], [mask])
    spread = out[mask].max(axis=1).astype(int) - out[mask].min(axis=1)
    assert spread.max() <= 2 and np.array_equal(out[~mask], grey[~mask])
    (coloured,) = inpainter.repair([photo], [mask])  # a colour photo keeps colour in its fill
    spread = coloured[mask].max(axis=1).astype(int) - coloured[mask].min(axis=1)
    assert spread.max() > 20


def test_chroma_clamp_leaves_colours_the_photo_has_and_keeps_luma(photo):
    from restore.inpaint.composite import LUMA, chroma_range, clamp_chroma

    hole = np.zeros(photo.shape[:2], bool)
    bounds = chroma_range(photo, hole)
    rgb = photo[::7, ::7].reshape(-1, 3).astype(np.float32) / 255
    kept = np.abs(clamp_chroma(rgb, bounds) - rgb).max(axis=1) < 1e-5
    assert kept.mean() > 0.99  # all but the rarest colours are in range
    odd = np.array([[0.1, 0.9, 0.1], [0.9, 0.1, 0.9]], np.float32)
    assert np.allclose(clamp_chroma(odd, np.zeros((2, 2), np.float32)) @ LUMA, odd @ LUMA, atol=1e-5)


def test_a_hole_at_the_picture_border_is_given_mirrored_context(tiny_model, photo):
    """Beyond a window's edge the network sees zero padding; at the picture's own border the
    engine mirrors the picture around narrow damage first, so it never meets the padding head-on."""
    image = photo[:200, :240].copy()
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def spied(pad):
        inpainter = Inpainter(tiny_model, device="cpu", tile=512, border_pad=pad)
        original_run = inpainter._run  # what the network is given

        def spy(crops, holes):
            seen.extend(zip(crops, holes, strict=True))
            return original_run(crops, holes)

        inpainter._run = spy
        return inpainter

    corner = np.zeros(image.shape[:2], bool)
    corner[:8, :30] = True  # touches the top and left borders only
    spied(0).repair([image], [corner])
    (plain, _), = seen
    seen.clear()
    inpainter = spied(16)
    (out,) = inpainter.repair([image], [corner])
    assert np.array_equal(out[~corner], image[~corner])
    (crop, hole), = seen
    assert crop.shape[:2] == (plain.shape[0] + 16, plain.shape[1] + 16)  # mirrored above and left
    # the first rows and columns are the picture mirrored about its border, holes included
    assert np.allclose(crop[16 + 1 : 16 + 10, 16:], crop[16 - 1 : 16 - 10 : -1, 16:])
    # rows 0-7 are the hole: mirrored, rows 9-23 of the crop; the rest is known context
    assert hole[9:24, 16:46].all() and not hole[:9].any() and not hole[24:].any()
    seen.clear()
    middle = np.zeros(image.shape[:2], bool)
    middle[90:110, 100:130] = True  # far from every border: nothing to mirror
    inpainter.repair([image], [middle])
    spied(0).repair([image], [middle])
    (padded, _), (unpadded, _) = seen
    assert padded.shape == unpadded.shape
    seen.clear()
    wide = np.zeros(image.shape[:2], bool)
    wide[:70, :80] = True  # a wide hole at the corner: its mirror image would only be more hole
    inpainter.repair([image], [wide])
    spied(0).repair([image], [wide])
    assert [c.shape for c, _ in seen[: len(seen) // 2]] == [c.shape for c, _ in seen[len(seen) // 2 :]]


@pytest.mark.parametrize("height,width", [(70, 2), (3, 79), (1, 1), (5, 1)])
def test_an_image_a_few_pixels_wide_is_repaired(inpainter, height, width):
    """Narrower than the network's multiple: the crop cannot be mirrored to size, and is extended."""
    rng = np.random.default_rng(height * 100 + width)
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    mask = np.zeros((height, width), bool)
    mask[height // 2, :] = True
    (out,) = inpainter.repair([image], [mask])
    assert np.array_equal(out[~mask], image[~mask])


def test_where_the_network_gives_no_number_the_hole_gets_the_smooth_first_guess(tiny_model):
    import torch

    inpainter = Inpainter(tiny_model, device="cpu", tile=256)

    class Broken(torch.nn.Module):
        multiple = 8

        def forward(self, image, mask):
            return torch.full_like(image, float("nan"))

    inpainter.model = Broken()
    image = np.full((40, 50, 3), 100, np.uint8)
    mask = np.zeros((40, 50), bool)
    mask[10:20, 5:30] = True
    (out,) = inpainter.repair([image], [mask])
    assert np.abs(out.astype(int) - 100).max() <= 1


def _dust(shape, count, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, np.uint8)
    for _ in range(count):
        centre = (int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0])))
        cv2.circle(mask, centre, int(rng.integers(1, 8)), 1, -1)
    return mask > 0


def test_scattered_dust_is_filled_in_small_windows_and_nothing_else_changes(tiny_model, photo, spy_windows):
    import cv2

    inpainter = Inpainter(tiny_model, device="cpu", tile=512, classical_depth=0)  # the network's windows
    image = cv2.resize(photo, (1500, 1000))
    mask = _dust(image.shape[:2], 150)
    mask[600:603, 100:1400] = True  # and one long hairline
    calls = spy_windows(inpainter)
    (out,) = inpainter.repair([image], [mask])
    assert np.array_equal(out[~mask], image[~mask])
    assert (np.abs(out.astype(int) - image)[mask].max(axis=-1) > 0).mean() > 0.9  # the holes were filled
    assert sum(h * w for h, w in calls) < 0.5 * image.shape[0] * image.shape[1]
    assert sum(max(c) <= 96 for c in calls) >= 120  # one small window per speck, roughly


def test_a_speck_inside_a_regions_box_is_filled_once_and_hole_content_still_ignored(tiny_model, photo):
    """Spot windows overlap regions and each other; every hole pixel is written from exactly one,
    and neither sees what was under any hole."""
    import cv2

    inpainter = Inpainter(tiny_model, device="cpu", tile=256)
    image = cv2.resize(photo, (900, 700))
    mask = _dust(image.shape[:2], 120, seed=3)
    mask[200:320, 300:420] = True  # a large hole whose region holds specks
    a, b = image.copy(), image.copy()
    a[mask] = 0
    b[mask] = 255
    out_a, out_b = inpainter.repair([a, b], [mask, mask])
    assert np.array_equal(out_a[mask], out_b[mask])
    assert np.array_equal(out_a[~mask], a[~mask])


def test_peak_float_memory_stays_below_one_full_size_float_copy(tiny_model, photo):
    """Windows are cut from the uint8 pixels as needed; no whole-image float copy is made."""
    import tracemalloc

    import cv2

    inpainter = Inpainter(tiny_model, device="cpu", tile=512)
    image = cv2.resize(photo, (3000, 2000))
    mask = _dust(image.shape[:2], 600, seed=4)
    mask[1000:1003, 100:2900] = True
    mask[200:1800, 1500:1502] = True
    tracemalloc.start()
    (out,) = inpainter.repair([image], [mask])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    float_copy = image.shape[0] * image.shape[1] * 3 * 4
    assert peak < 0.8 * float_copy  # it includes the uint8 output (a quarter of this)
    assert np.array_equal(out[~mask], image[~mask])
