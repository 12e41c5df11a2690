"""Thin damage (dust specks, hairlines) is filled classically, without the network."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from restore.inpaint.engine import CLASSICAL_METHOD, CLASSICAL_RADIUS, Inpainter


def _thin_damage(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Specks of 1-5 px across (some touching the picture's edges) and two 3 px hairlines."""
    rng = np.random.default_rng(seed)
    height, width = shape
    lines = np.zeros(shape, np.uint8)
    cv2.line(lines, (0, height // 2), (width - 1, height // 3), 1, 3)
    cv2.line(lines, (0, height - 40), (width - 1, height - 60), 1, 3)
    mask = np.zeros(shape, np.uint8)
    for _ in range(80):  # specks apart from the lines (a speck on a line makes it deeper there)
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(mask, centre, int(rng.integers(0, 3)), 1, -1)
    mask &= cv2.dilate(lines, np.ones((9, 9), np.uint8)) == 0
    mask[:3, 40:90] = 1  # along the top edge: OpenCV's Telea would read these pixels
    mask[50:120, :2] = 1  # and the left one
    return (mask | lines) > 0


@pytest.fixture()
def scan(photo) -> np.ndarray:
    return cv2.resize(photo, (900, 600))


def test_thin_damage_gets_opencvs_fill_and_no_network_window(tiny_model, scan, spy_windows):
    inpainter = Inpainter(tiny_model, device="cpu", tile=256, grain=0, fill="smooth", classical_depth=3)
    calls = spy_windows(inpainter)
    mask = _thin_damage(scan.shape[:2])
    (out,) = inpainter.repair([scan], [mask])
    assert calls == []
    assert np.array_equal(out[~mask], scan[~mask])
    opencv = cv2.inpaint(np.where(mask[..., None], 0, scan), mask.view(np.uint8), CLASSICAL_RADIUS,
                         CLASSICAL_METHOD)
    # cut into cores with a margin, the fill is OpenCV's own (bar pixels near a core's seam)
    assert np.median(np.abs(out[mask].astype(int) - opencv[mask])) <= 1
    # and nothing like the network's untrained colours
    assert np.abs(out[mask].astype(int) - opencv[mask]).mean() < 3


def test_a_blot_deeper_than_the_limit_still_goes_to_the_network(tiny_model, scan, spy_windows):
    mask = _thin_damage(scan.shape[:2], seed=2)
    cv2.circle(mask.view(np.uint8), (450, 300), 20, 1, -1)  # 41 px across
    areas = {}
    for depth in (0, 3):
        inpainter = Inpainter(tiny_model, device="cpu", tile=512, classical_depth=depth)
        calls = spy_windows(inpainter)
        (out,) = inpainter.repair([scan], [mask])
        assert np.array_equal(out[~mask], scan[~mask])
        areas[depth] = sum(h * w for h, w in calls)
    assert 0 < areas[3] < 0.5 * areas[0]  # the blot's windows, not the specks' and hairlines'


@pytest.mark.parametrize(("channels", "dtype"),
                         [(1, np.uint16), (2, np.uint8), (3, np.uint16), (4, np.uint8)])
def test_classical_fill_at_every_bit_depth_and_layout(tiny_model, channels, dtype):
    rng = np.random.default_rng(3)
    top = 65535 if dtype == np.uint16 else 255
    image = cv2.GaussianBlur(rng.integers(0, top + 1, (200, 260, channels)).astype(np.float32), (0, 0), 3)
    image = image.reshape(200, 260, channels).astype(dtype)
    mask = _thin_damage(image.shape[:2], seed=4)
    damaged = image.copy()
    damaged[mask] = top
    inpainter = Inpainter(tiny_model, device="cpu", tile=256, grain=0, classical_depth=3)
    (out,) = inpainter.repair([damaged], [mask])
    assert out.dtype == dtype and out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])
    if channels in (2, 4):  # alpha is never touched
        assert np.array_equal(out[..., -1], damaged[..., -1])
    error = np.abs(out[mask][..., :1].astype(float) - image[mask][..., :1]).mean()
    assert error < 0.1 * np.abs(damaged[mask][..., :1].astype(float) - image[mask][..., :1]).mean()


def test_a_mask_grown_by_dilation_still_counts_as_thin(tiny_model, scan, spy_windows):
    """Detected masks are grown by 2 px; the depth limit grows with them, or every dilated
    hairline and speck would go back to the network."""
    from restore.batch import grow_mask

    mask = grow_mask(_thin_damage(scan.shape[:2], seed=5), 2)
    seen = {}
    for grown in (0, 2):
        inpainter = Inpainter(tiny_model, device="cpu", tile=256, classical_depth=3)
        calls = spy_windows(inpainter)
        (out,) = inpainter.repair([scan], [mask], grown=[grown])
        assert np.array_equal(out[~mask], scan[~mask])
        seen[grown] = len(calls)
    assert seen[0] > 0 and seen[2] == 0


def test_batch_tells_the_engine_how_much_each_mask_was_grown(tiny_model, tmp_path, photo):
    from restore.batch import ImagesOptions, restore_images

    cv2.imwrite(str(tmp_path / "a.png"), photo)
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), _thin_damage(photo.shape[:2]).astype(np.uint8) * 255)
    inpainter = Inpainter(tiny_model, device="cpu", tile=256)
    grown: list = []
    original = inpainter.repair

    def spy(images, masks, given=None):
        grown.append(given)
        return original(images, masks, given)

    inpainter.repair = spy
    for dilate in (None, 1):  # given masks are not grown unless --dilate says so
        restore_images(str(tmp_path / "a.png"), tmp_path / f"out{dilate}", inpainter,
                       ImagesOptions(masks=tmp_path / "masks", dilate=dilate))
    assert grown == [[0], [1]]
