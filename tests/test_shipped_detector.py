"""The shipped damage detectors: they leave clean photos alone and find drawn damage; the default
one (when it ships) also drives `restore images` without masks on the examples."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import EXAMPLES

from restore.cli import main
from restore.detect.detector import Detector
from restore.detect.weights import default_detector_path, preview_detector_path
from restore.eval.detection import Counts

needs_default = pytest.mark.skipif(not default_detector_path().exists(),
                                   reason="no default detector ships yet")
SHIPPED = [pytest.param("preview", id="preview"), pytest.param(None, id="default", marks=needs_default)]


@pytest.fixture(scope="module", params=SHIPPED)
def detector(request) -> Detector:
    return Detector(request.param, device="cpu")


def _rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("path", [preview_detector_path(),
                                  pytest.param(default_detector_path(), marks=needs_default)])
def test_shipped_detector_loads_with_weights_only_and_is_small(path):
    assert path.stat().st_size <= 10 * 2**20
    blob = torch.load(path, map_location="cpu", weights_only=True)
    assert blob["format"] == "restore-detect-v1" and 0.5 <= blob["meta"]["threshold"] < 1
    # A threshold calibrated for each number of flipped views; the default count's is "threshold".
    meta = blob["meta"]
    assert sorted(meta["thresholds"]) == ["1", "2", "3", "4"]
    assert meta["threshold"] == meta["thresholds"][str(meta["views"])]
    for views in (1, meta["views"]):
        calibrated = meta["thresholds"][str(views)]
        assert Detector(path, device="cpu", views=views).threshold == pytest.approx(calibrated)


def test_without_a_default_detector_images_without_masks_is_a_usage_error(tmp_path):
    if default_detector_path().exists():
        pytest.skip("a default detector ships")
    result = CliRunner().invoke(main, ["images", str(EXAMPLES / "damaged"), str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2 and "--detector preview" in result.output
    assert not (tmp_path / "out").exists()


def test_clean_photos_come_back_almost_unflagged(detector):
    originals = sorted((EXAMPLES / "originals").rglob("*.jpg"))
    masks = detector.detect([_rgb(p) for p in originals])
    assert max(float(m.mean()) for m in masks) < 0.005


def test_a_drawn_scratch_and_dust_are_found(detector):
    image = _rgb(EXAMPLES / "originals" / "lanterns.jpg")
    truth = np.zeros(image.shape[:2], np.uint8)
    pts = np.array([(60 + 0.45 * y + 12 * np.sin(y / 40), y) for y in range(0, image.shape[0], 4)], np.int32)
    cv2.polylines(truth, [pts], False, 1, 2, cv2.LINE_AA)
    for x, y in [(400, 60), (520, 250), (300, 300), (150, 120)]:
        cv2.circle(truth, (x, y), 3, 1, -1)
    damaged = image.copy()
    damaged[truth > 0] = (235, 235, 225)
    (found,) = detector.detect([damaged])
    counts = Counts()
    counts.add(found, truth > 0, tolerance=2)
    scores = counts.scores()
    assert scores["recall"] > 0.8 and scores["precision"] > 0.5, scores


@needs_default
def test_restore_images_without_masks_repairs_the_examples(tmp_path):
    result = CliRunner().invoke(main, ["images", str(EXAMPLES / "damaged"), str(tmp_path / "out"),
                                       "--save-masks", str(tmp_path / "used"), "-q"], catch_exceptions=False)
    assert result.exit_code == 0
    for name in ("mountain", "lanterns"):  # scratches and dust: what the detector is for
        given = cv2.imread(str(EXAMPLES / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 0
        used = cv2.imread(str(tmp_path / "used" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 0
        assert (used & given).sum() > 0.6 * given.sum(), name  # most of the damage was found...
        assert (used & ~given).sum() < 0.5 * used.sum(), name  # ...and most of what was flagged is damage
        before = _rgb(EXAMPLES / "damaged" / f"{name}.jpg").astype(int)
        after = _rgb(tmp_path / "out" / f"{name}.jpg").astype(int)
        original = _rgb(EXAMPLES / "originals" / f"{name}.jpg").astype(int)
        # Repaired: closer to the undamaged photo inside the damage than the damaged input was.
        assert np.abs(after - original)[given].mean() < 0.5 * np.abs(before - original)[given].mean(), name


def test_the_coarse_look_finds_more_of_large_damage():
    """Wider than the network's view, a solid hole is found mostly by the shrunk second scan."""
    from restore.detect.synth import paint_damage

    image = _rgb(EXAMPLES / "originals" / "lanterns.jpg")
    image = cv2.resize(image, (image.shape[1] * 2, image.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    damaged, truth = paint_damage(image, np.random.default_rng(2), types=("hole",), count=1, negatives=0.0)
    recall = {}
    for side in (None, 256):
        counts = Counts()
        counts.add(Detector("preview", device="cpu", coarse_side=side).detect([damaged])[0], truth, 2)
        recall[side] = counts.scores()["recall"]
    assert recall[256] > recall[None] + 0.1
