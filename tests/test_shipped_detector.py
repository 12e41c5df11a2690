"""The shipped damage detector: it leaves clean photos alone, finds drawn damage, and drives the bare
`restore images`, `restore detect` and `restore video` commands (no mask flags) on the examples."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import EXAMPLES

from restore.cli import main
from restore.detect.detector import Detector
from restore.detect.weights import SHIPPED_NAMES, default_detector_path, resolve_detector_path
from restore.eval.detection import Counts


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(device="cpu")


def _rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_every_shipped_name_is_the_default_detector():
    assert {resolve_detector_path(name) for name in (None, *SHIPPED_NAMES)} == {default_detector_path()}


def test_shipped_detector_loads_with_weights_only_and_is_small():
    path = default_detector_path()
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


def test_restore_images_without_masks_repairs_the_examples(tmp_path):
    result = CliRunner().invoke(main, ["images", str(EXAMPLES / "damaged"), str(tmp_path / "out"),
                                       "--save-masks", str(tmp_path / "used")], catch_exceptions=False)
    assert result.exit_code == 0
    assert "the detector found damage in" in result.output  # the summary says what it found
    for name in ("mountain", "lanterns"):  # scratches and dust: what the detector is for
        given = cv2.imread(str(EXAMPLES / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 0
        used = cv2.imread(str(tmp_path / "used" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 0
        assert (used & given).sum() > 0.4 * given.sum(), name  # much of the damage was found...
        assert (used & ~given).sum() < 0.25 * used.sum(), name  # ...and most of what was flagged is damage
        before = _rgb(EXAMPLES / "damaged" / f"{name}.jpg").astype(int)
        after = _rgb(tmp_path / "out" / f"{name}.jpg").astype(int)
        original = _rgb(EXAMPLES / "originals" / f"{name}.jpg").astype(int)
        # Repaired: closer to the undamaged photo inside the damage than the damaged input was.
        assert np.abs(after - original)[given].mean() < 0.75 * np.abs(before - original)[given].mean(), name


def test_bare_commands_leave_clean_photos_alone(tmp_path):
    """No mask flags on clean photos: a photo where nothing is found comes back byte for byte, and
    what is flagged elsewhere is a few scattered pixels, repaired only there."""
    originals = EXAMPLES / "originals"
    result = CliRunner().invoke(main, ["images", str(originals), str(tmp_path / "out"), "-q",
                                       "--save-masks", str(tmp_path / "used")], catch_exceptions=False)
    assert result.exit_code == 0
    untouched = 0
    for source in sorted(originals.rglob("*.jpg")):
        relative = source.relative_to(originals)
        used = (tmp_path / "used" / relative).with_suffix(".png")
        flagged = cv2.imread(str(used), cv2.IMREAD_GRAYSCALE) > 0
        if not flagged.any():
            assert (tmp_path / "out" / relative).read_bytes() == source.read_bytes(), relative
            untouched += 1
        else:
            assert flagged.mean() < 0.005, relative
    assert untouched >= 2
    result = CliRunner().invoke(main, ["detect", str(originals), str(tmp_path / "masks"), "-q"])
    assert result.exit_code == 0 and len(list((tmp_path / "masks").rglob("*.png"))) == 4


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


def test_bare_restore_video_finds_its_own_masks(tmp_path, tiny_model):
    clip = Path(__file__).parent / "data" / "tiny.mp4"
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(main, ["video", str(clip), "-o", str(out), "--model", str(tiny_model),
                                       "--save-masks", str(tmp_path / "masks"), "-q"], catch_exceptions=False)
    assert result.exit_code == 0

    def frames(path: Path) -> int:
        return int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))

    assert frames(out) == frames(clip) == len(list((tmp_path / "masks").glob("*.png")))
