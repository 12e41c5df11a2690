"""The damage detector's parts: synthetic damage, the network, tiling, weights, training, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.nn import functional as F

from restore.cli import main
from restore.detect import synth
from restore.detect.detector import Detector, core_tiles, sensitivity_threshold
from restore.detect.model import (
    DamageNet,
    DetectorConfig,
    average_views,
    channel_tophat_cues,
    grow,
    tophat_cues,
    turn,
)
from restore.detect.synth import DAMAGE_TYPES, open_background, paint_damage, power_lines
from restore.detect.train import (
    DetectTrainConfig,
    calibrate_coarse_thresholds,
    calibrate_thresholds,
    crop_around,
    detection_loss,
    make_damage_batch,
    mine_false_alarms,
    sample_batch,
    train_detector,
    whole_photo_probabilities,
)
from restore.detect.weights import export_detector, load_detector
from restore.eval.detection import Counts
from restore.model.weights import WeightsError, save_atomic
from restore.train.data import BatchStream, load_photos


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("damage", DAMAGE_TYPES)
def test_each_damage_type_is_seeded_and_labelled(damage, photo):
    crop = np.ascontiguousarray(photo[:192, :256])
    a, label_a = paint_damage(crop, np.random.default_rng(3), types=(damage,), negatives=0.0)
    b, label_b = paint_damage(crop, np.random.default_rng(3), types=(damage,), negatives=0.0)
    assert a.dtype == np.uint8 and a.shape == crop.shape and label_a.shape == crop.shape[:2]
    assert np.array_equal(a, b) and np.array_equal(label_a, label_b)
    assert 0 < label_a.mean() < 0.6
    c, label_c = paint_damage(crop, np.random.default_rng(4), types=(damage,), negatives=0.0)
    assert not np.array_equal(label_a, label_c)


def test_axis_aligned_scratches_are_a_setting(monkeypatch):
    def orientations(share: float) -> list[float]:
        """Degrees from level of each scratch layer's principal axis (0 or 90: axis-aligned)."""
        monkeypatch.setattr(synth, "AXIS_SHARE", share)
        found = []
        for seed in range(40):
            cover = synth.scratch(256, 256, np.random.default_rng(seed), 1.0)[0]
            ys, xs = np.nonzero(cover > 0.35)
            if len(xs) > 50:
                vals, vecs = np.linalg.eigh(np.cov(np.stack([xs, ys])))
                if vals[1] > 20 * vals[0]:  # one straight-ish line, not a crossing of several
                    found.append(float(np.degrees(np.arctan2(abs(vecs[1, 1]), abs(vecs[0, 1])))))
        return found

    def off_axis(angles: list[float]) -> float:
        return float(np.mean([min(a, 90 - a) > 5 for a in angles]))

    # A line's wobble tilts its principal axis a little; at 0 nearly all lie anywhere.
    assert off_axis(orientations(1.0)) < 0.15 and off_axis(orientations(0.0)) > 0.7


def test_the_share_of_tinted_scratches_and_dust_is_a_setting(monkeypatch):
    def tinted(share: float) -> float:
        monkeypatch.setattr(synth, "TINT_SHARE", share)
        colours = [synth.scratch(8, 8, np.random.default_rng(seed), 1.0)[1][0, 0] for seed in range(200)]
        return float(np.mean([np.ptp(c) > 0 for c in colours]))  # a grey has equal channels

    assert tinted(0.0) == 0.0 and tinted(1.0) == 1.0
    assert 0.05 < tinted(0.15) < 0.3 and 0.3 < tinted(0.4) < 0.5


def test_damage_the_picture_does_not_show_can_be_left_unlabelled():
    # A mid-grey photo under scratches of every tone: where a scratch's colour is the photo's
    # own, the coverage map has it but the picture does not.
    grey = np.full((128, 160, 3), 128, np.uint8)
    kept = dropped = 0
    for seed in range(12):
        _, full = paint_damage(grey, np.random.default_rng(seed), types=("scratch",), negatives=0.0)
        _, seen = paint_damage(grey, np.random.default_rng(seed), types=("scratch",), negatives=0.0,
                               visible=0.2)
        assert not (seen & ~full).any()  # the rule only removes labels
        kept, dropped = kept + seen.sum(), dropped + (full & ~seen).sum()
    assert kept > 0 and dropped > 0


def test_hard_negatives_alone_are_not_labelled(photo):
    crop = np.ascontiguousarray(photo[:192, :256])
    image, label = paint_damage(crop, np.random.default_rng(0), count=0, negatives=1.0)
    assert not label.any() and not np.array_equal(image, crop)


def test_power_lines_pass_behind_textured_parts_of_the_scene():
    # Plain sky above, busy texture below: a wire shows against the sky only, as a real one does.
    rng = np.random.default_rng(0)
    scene = np.full((128, 256, 3), 0.8, np.float32)
    scene[64:] = rng.uniform(0.2, 0.9, (64, 256, 1))
    cover = power_lines(scene, np.random.default_rng(1), 1.0)
    sky, texture = slice(8, 56), slice(72, 120)
    assert cover[sky].max() > 0.5
    assert cover[texture].max() < 1e-6
    assert open_background(scene, rng)[sky].min() > 0.99


def test_network_keeps_the_size_and_sees_locally():
    torch.manual_seed(0)
    net = DamageNet(DetectorConfig(widths=(8, 8, 8))).eval()
    x = torch.zeros(1, 3, 64, 96)
    with torch.no_grad():
        base = net(x)
        x[0, :, 33, 50] = 1.0  # one bright pixel
        poked = net(x)
    assert base.shape == (1, 1, 64, 96)
    changed = (poked - base).abs()[0, 0] > 1e-6
    assert changed[28:38, 45:55].any() and changed.sum() < changed.numel()  # a local effect, not global


def _grown_by_training(tmp_path, photo, tiny_detector, *flags: str) -> tuple[DamageNet, Path]:
    """Fine-tune the tiny detector for three steps with ``flags``; the result and the data folder."""
    data = tmp_path / "photos"
    data.mkdir()
    cv2.imwrite(str(data / "p.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    code, _ = _run("train", str(data), "--task", "detect", "--init", str(tiny_detector), *flags,
                   "--out", str(tmp_path / "d.pt"), "--crop", "64", "--batch-size", "2", "--steps", "3",
                   "--quiet")
    assert code == 0
    return load_detector(tmp_path / "d.pt"), data


def test_a_grown_detector_starts_as_the_one_it_grew_from_and_then_learns(tmp_path, tiny_detector, photo):
    small = load_detector(tiny_detector)
    big = grow(small, 2).eval()
    x = torch.rand(2, 3, 64, 80) * 2 - 1
    with torch.no_grad():
        assert torch.equal(small(x), big(x))
    assert big.config.context == 2 and len(big.context) == 2
    with pytest.raises(ValueError):
        grow(big, 1)
    trained, _ = _grown_by_training(tmp_path, photo, tiny_detector, "--blocks", "2")
    assert trained.config.context == 2
    assert any(block.body[-1].weight.abs().sum() > 0 for block in trained.context)  # no longer identity


def test_tophat_cues_light_up_thin_bright_and_dark_lines_only():
    image = torch.zeros(1, 3, 48, 64)
    image[0, :, 10, 5:60] = 0.8  # a bright hairline
    image[0, :, 30:32, 5:60] = -0.8  # a dark scratch two pixels wide
    image[0, :, 38:48, 0:30] = 0.8  # a bright area far wider than the window
    cues = tophat_cues(image, 7)[0]
    assert cues.shape == (2, 48, 64) and (cues >= 0).all()
    white, black = cues[0], cues[1]
    assert white[10, 20] > 1.0 and black[10, 20] == 0  # the bright line, only in the white cue
    assert black[30, 20] > 1.0 and white[30, 20] == 0
    assert white[42, 10] == 0 and black[42, 10] == 0  # broad structure is not a cue
    # the same as the textbook opening and closing, to bfloat16's precision
    grey = image.mean(1, keepdim=True)
    pool = lambda x: F.max_pool2d(x, 7, 1, 3)  # noqa: E731
    expected = torch.cat([grey - pool(-pool(-grey)), -pool(-pool(grey)) - grey], 1)[0] * 2
    assert torch.allclose(cues, expected, atol=0.02)


def test_a_detector_grown_with_tophat_cues_starts_unchanged_and_learns_to_use_them(tmp_path, tiny_detector,
                                                                                   photo):
    small = load_detector(tiny_detector)
    big = grow(small, 0, tophat=7).eval()
    x = torch.rand(2, 3, 64, 80) * 2 - 1
    with torch.no_grad():
        assert torch.equal(small(x), big(x))
    assert big.config.tophat == 7
    with pytest.raises(ValueError):
        grow(big, 0, tophat=5)
    trained, data = _grown_by_training(tmp_path, photo, tiny_detector, "--tophat", "7")
    assert trained.config.tophat == 7
    assert trained.stem[0][0].weight[:, -2:].abs().sum() > 0  # the cues' weights moved off zero
    out = str(tmp_path / "e.pt")
    assert _run("train", str(data), "--tophat", "6", "--out", out, "--task", "detect")[0] == 2  # even
    assert _run("train", str(data), "--tophat", "7", "--out", out)[0] == 2  # not for the inpainter


def test_channel_cues_light_up_a_coloured_line_that_luminance_cues_miss():
    # a green line on a grey picture, as bright as the grey around it
    image = torch.full((1, 3, 48, 64), 0.1)
    image[0, :, 20, 5:60] = torch.tensor([-0.2, 0.7, -0.2])[:, None]
    assert tophat_cues(image, 7)[0, :, 20, 30].abs().max() < 0.05
    cues = channel_tophat_cues(image, 7)[0]
    assert cues.shape == (2, 48, 64) and (cues >= 0).all()
    assert cues[0, 20, 30] > 1.0 and cues[1, 20, 30] > 0.5  # brighter in green, darker in red and blue
    assert cues[:, 35, 30].abs().max() == 0  # nothing off the line
    grey = torch.rand(2, 1, 40, 56).repeat(1, 3, 1, 1) * 2 - 1  # on a grey picture: the luminance cues
    assert torch.equal(channel_tophat_cues(grey, 7), tophat_cues(grey, 7))


def test_a_detector_grown_with_channel_cues_starts_unchanged_and_learns_to_use_them(tmp_path, tiny_detector,
                                                                                    photo):
    with_tophat = grow(load_detector(tiny_detector), 0, tophat=7).eval()
    big = grow(with_tophat, 0, channel_cues=True).eval()
    x = torch.rand(2, 3, 64, 80) * 2 - 1
    with torch.no_grad():
        assert torch.equal(with_tophat(x), big(x))
    assert big.config.channel_cues and big.config.tophat == 7
    with pytest.raises(ValueError):
        grow(big, 0, channel_cues=False)
    with pytest.raises(ValueError):
        grow(load_detector(tiny_detector), 0, channel_cues=True)  # no top-hat window to use
    trained, data = _grown_by_training(tmp_path, photo, tiny_detector, "--tophat", "7", "--channel-cues")
    assert trained.config.channel_cues
    assert trained.stem[0][0].weight[:, -2:].abs().sum() > 0  # the new cues' weights moved off zero
    out = str(tmp_path / "e.pt")
    assert _run("train", str(data), "--channel-cues", "--out", out, "--task", "detect")[0] == 2  # no window
    assert _run("train", str(data), "--channel-cues", "--tophat", "7", "--out", out)[0] == 2  # inpainter
    # an --init detector without top-hat cues: a usage error before training, not a traceback
    assert _run("train", str(data), "--task", "detect", "--init", str(tiny_detector), "--channel-cues",
                "--out", out, "--steps", "1", "--quiet")[0] == 2
    assert not Path(out).exists()


def test_a_widened_detector_starts_unchanged_and_its_new_channels_learn(tmp_path, tiny_detector, photo):
    small = grow(load_detector(tiny_detector), 1, tophat=7).eval()  # every kind of layer
    wide = grow(small, 1, widths=(12, 16, 20)).eval()
    assert wide.config.widths == (12, 16, 20) and wide.stem[0][0].out_channels == 12
    x = torch.rand(2, 3, 64, 80) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(small(x), wide(x), atol=1e-5)  # equal but for the sums' order in wider convs
        wide.up1[0].weight[:, 8:12].fill_(0.1)  # the new channels do reach the output once weighted
        assert not torch.allclose(small(x), wide(x), atol=1e-3)
    with pytest.raises(ValueError):
        grow(wide, 1, widths=(12, 8, 20))  # narrower
    trained, data = _grown_by_training(tmp_path, photo, tiny_detector, "--widths", "12,16,20")
    assert trained.config.widths == (12, 16, 20)
    assert trained.head.weight[:, 8:].abs().sum() > 0  # weights from new channels moved off zero
    out = str(tmp_path / "e.pt")
    for flags in (["--widths", "8,4,8"], ["--widths", "8,8"], ["--widths", "a,b,c"]):  # narrower; malformed
        assert _run("train", str(data), "--task", "detect", "--init", str(tiny_detector), *flags,
                    "--out", out, "--steps", "1", "--quiet")[0] == 2
    assert _run("train", str(data), "--widths", "8,8,8", "--out", out)[0] == 2  # not for the inpainter


def test_core_tiles_cover_every_pixel_once():
    cover = np.zeros((301, 517), int)
    for box in core_tiles(301, 517, 96):
        cover[box.slices] += 1
    assert (cover == 1).all()


@pytest.mark.parametrize("shape,dtype", [((70, 90, 3), np.uint8), ((70, 90, 1), np.uint16),
                                         ((70, 90, 4), np.uint8), ((40, 30, 2), np.uint16)])
def test_detector_takes_any_layout_and_returns_a_same_size_mask(tiny_detector, shape, dtype):
    image = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    (mask,) = Detector(tiny_detector, device="cpu", precision="fp32").detect([image])
    assert mask.shape == shape[:2] and mask.dtype == bool


def test_tiles_agree_closely_with_one_pass(tiny_detector, photo):
    image = np.ascontiguousarray(photo[:300, :400])
    whole = Detector(tiny_detector, device="cpu", precision="fp32", tile=1024).probabilities([image])[0]
    tiled = Detector(tiny_detector, device="cpu", precision="fp32", tile=192, margin=48,
                     batch_size=3).probabilities([image])[0]
    # The network's reach is wider than the margin, so tiles differ a little, mostly near their borders.
    assert np.abs(whole - tiled).mean() < 0.02


def test_views_average_the_turned_copies_each_turned_back():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    assert torch.equal(average_views(lambda v: v * 2, x, 4), x * 2)  # turning back undoes each view
    assert [turn(x, view).shape[-2:] for view in range(4)] == [(4, 5), (5, 4), (4, 5), (4, 5)]
    # Something that depends on orientation (the top-left pixel) is averaged over the views:
    # as is and transposed it is x[0, 0], mirrored x[0, -1], upside down x[-1, 0].
    corner = average_views(lambda v: v[..., :1, :1].expand_as(v), x, 4)
    assert torch.allclose(corner[0, 0, 2, 2], (2 * x[0, 0, 0, 0] + x[0, 0, 0, 4] + x[0, 0, 3, 0]) / 4)
    with pytest.raises(ValueError):
        average_views(lambda v: v, x, 5)
    with pytest.raises(ValueError):
        turn(x, 4)


def test_extra_views_skip_only_tiles_that_cannot_pass_the_threshold(tiny_detector, photo):
    image = np.ascontiguousarray(photo[:300, :400]).astype(np.float32) / 255
    detector = Detector(tiny_detector, device="cpu", precision="fp32", tile=160, margin=32, views=3)
    first = Detector(tiny_detector, device="cpu", precision="fp32", tile=160, margin=32,
                     views=1)._scan([image], 0.5)[0]
    # A threshold that half the tiles' first view can reach and the others' cannot.
    peaks = [first[box.slices].max() for box in core_tiles(300, 400, 160 - 2 * 32)]
    threshold = (float(np.median(peaks)) + 2) / 3
    passes = []
    run = detector._run
    detector._run = lambda x: passes.append(len(x)) or run(x)
    skipping = detector._scan([image], threshold)[0]
    skipped = sum(passes)
    passes.clear()
    everywhere = detector._scan([image], -1.0)[0]  # every tile can pass: every view everywhere
    assert skipped < sum(passes)
    assert np.array_equal(skipping > threshold, everywhere > threshold)
    could_pass = first > 3 * threshold - 2  # no average of three can pass where the first is below
    assert could_pass.any() and np.allclose(skipping[could_pass], everywhere[could_pass], atol=1e-5)
    # Where the extra views ran, the probability is the average of all three, not the first's.
    assert np.abs(everywhere - first).max() > 1e-3


def test_sensitivity_moves_the_threshold_both_ways_around_the_calibrated_one():
    assert sensitivity_threshold(0.9) < sensitivity_threshold(0.5) == 0.5 < sensitivity_threshold(0.1)
    assert sensitivity_threshold(0.5, 0.8) == pytest.approx(0.8)
    assert sensitivity_threshold(0.6, 0.8) < 0.8 < sensitivity_threshold(0.4, 0.8) < 0.99


def test_weights_round_trip_fp16_and_refuse_other_files(tmp_path):
    net = DamageNet(DetectorConfig(widths=(8, 16, 16))).eval()
    export_detector(net, tmp_path / "d.pt")
    loaded = load_detector(tmp_path / "d.pt")
    assert loaded.config == net.config
    blob = torch.load(tmp_path / "d.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())
    save_atomic({"optimizer": {}, "model": {}}, tmp_path / "ckpt.pt")
    with pytest.raises(WeightsError, match="checkpoint"):
        load_detector(tmp_path / "ckpt.pt")
    with pytest.raises(WeightsError, match="not a restore damage detector"):
        save_atomic({"format": "restore-inpaint-v1"}, tmp_path / "other.pt")
        load_detector(tmp_path / "other.pt")


def test_tolerant_counts_forgive_a_one_pixel_shift():
    truth = np.zeros((50, 50), bool)
    truth[10:40, 20] = True
    shifted = np.roll(truth, 1, axis=1)
    counts = Counts()
    counts.add(shifted, truth, tolerance=2)
    assert counts.scores()["f1"] == 1.0
    strict = Counts()
    strict.add(shifted, truth, tolerance=0)
    assert strict.scores()["f1"] == 0.0


def test_short_detector_training_checkpoints_resumes_and_learns_labels(tmp_path, photo):
    data, labels = tmp_path / "photos", tmp_path / "labels"
    data.mkdir()
    labels.mkdir()
    for i in range(2):
        cv2.imwrite(str(data / f"p{i}.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[50:60, :] = 255
    cv2.imwrite(str(labels / "p0.png"), mask)
    args = ["train", str(data), "--task", "detect", "--labels", str(labels), "--out", str(tmp_path / "d.pt"),
            "--crop", "64", "--batch-size", "2", "--log-every", "1", "--sample-every", "2", "--quiet"]
    assert _run(*args, "--steps", "2")[0] == 0
    detector = load_detector(tmp_path / "d.pt")
    assert detector.config == DetectorConfig() and 0.5 <= detector.threshold <= 0.99  # calibrated
    assert detector.views == 3 and sorted(detector.thresholds) == [1, 2, 3, 4]  # per number of views
    assert detector.threshold == detector.thresholds[3]
    assert _run(*args, "--steps", "4", "--resume", "--workers", "1")[0] == 0  # batches from a worker
    log = (tmp_path / "d-train" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in log]
    assert steps[-1] == 4 and steps.count(1) == 1  # resumed at 2, not restarted
    assert (tmp_path / "d-train" / "samples" / "step0000004.png").exists()
    assert len(load_photos(data)) == 2


def test_the_exported_detector_is_the_moving_average_and_a_resume_keeps_it(tmp_path, photo):
    data = tmp_path / "photos"
    data.mkdir()
    cv2.imwrite(str(data / "p.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))

    def run(name: str, decay: float, steps: int) -> tuple[dict, dict]:
        cfg = DetectTrainConfig(data=data, out=tmp_path / f"{name}.pt", work_dir=tmp_path / name, resume=True,
                                steps=steps, crop=64, batch_size=2, lr=1e-2, ema_decay=decay, hard_share=0.0,
                                detector=DetectorConfig(widths=(8, 8, 8), refine=0))
        train_detector(cfg)
        return (torch.load(tmp_path / name / "checkpoint.pt", weights_only=True),
                torch.load(tmp_path / f"{name}.pt", weights_only=True)["state_dict"])

    def same(a: dict, b: dict) -> bool:
        return all(torch.equal(a[k].half(), b[k].half()) for k in a if a[k].is_floating_point())

    ckpt, exported = run("avg", 0.9, 6)
    assert same(ckpt["ema"], exported) and not same(ckpt["model"], exported)
    again, _ = run("avg", 0.9, 6)  # nothing left to train: the average comes back as it was
    assert same(again["ema"], ckpt["ema"])
    ckpt, exported = run("last", 0.0, 6)  # decay 0: the last weights themselves
    assert same(ckpt["model"], exported)


def test_calibration_sees_the_photos_as_the_detector_will_average_them(photo):
    torch.manual_seed(0)
    model = DamageNet(DetectorConfig(widths=(8, 8, 8))).eval()
    with torch.no_grad():
        model.refine[-1].bias += 0.5  # probabilities spread above 0.5, where calibration can see them
    image = photo[:96, :128]
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(127.5).sub(1)
    with torch.no_grad():
        passes = [turn(torch.sigmoid(model(turn(x, v))), v)[0, 0].numpy() for v in range(4)]
        three = whole_photo_probabilities(model, image, torch.device("cpu"), views=3)
    assert np.allclose(three, np.mean(passes[:3], 0), atol=1e-6)
    assert not np.allclose(three, passes[0], atol=1e-4)
    thresholds = calibrate_thresholds(model, [image], torch.device("cpu"), target=0.05)
    for views in (1, 2, 3, 4):  # each number of views has the threshold its own averages call for
        expected = float(np.quantile(np.mean(passes[:views], 0), 0.95))
        assert 0.5 < expected < 0.99 and thresholds[views] == pytest.approx(expected, abs=1e-5)


def test_the_coarse_scan_has_its_own_threshold_when_the_weights_file_has_one(tmp_path, photo):
    """Calibrated on the photos shrunk as the coarse scan shrinks them, and used by the Detector;
    a file without one keeps the old rule (the full-resolution threshold, 20x stricter in odds)."""
    torch.manual_seed(0)
    model = DamageNet(DetectorConfig(widths=(8, 8, 8))).eval()
    with torch.no_grad():
        model.refine[-1].bias += 0.5
    coarse = calibrate_coarse_thresholds(model, [photo], torch.device("cpu"), side=64, target=0.05)
    h, w = photo.shape[:2]
    scale = 64 / min(h, w)
    small = cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        expected = float(np.quantile(whole_photo_probabilities(model, small, torch.device("cpu")), 0.95))
    assert sorted(coarse) == [1, 2, 3, 4] and coarse[1] == pytest.approx(expected, abs=1e-5)
    assert calibrate_coarse_thresholds(model, [photo[:60, :60]], torch.device("cpu")) == {}  # too small
    path = tmp_path / "d.pt"
    export_detector(model, path, meta={"threshold": 0.9, "views": 1, "coarse_thresholds": {"1": 0.7}})
    assert Detector(path, device="cpu").coarse_threshold == pytest.approx(0.7)
    assert Detector(path, device="cpu", sensitivity=0.6).coarse_threshold < 0.7
    export_detector(model, path, meta={"threshold": 0.9, "views": 1})
    assert Detector(path, device="cpu").coarse_threshold == pytest.approx(sensitivity_threshold(0.0, 0.9))


def test_labels_only_with_the_detect_task(tmp_path):
    code, out = _run("train", str(tmp_path), "--labels", str(tmp_path), "--out", str(tmp_path / "m.pt"))
    assert code == 2 and "--task detect" in out


def test_detect_command_mirrors_folders_and_keeps_going_past_a_bad_file(tmp_path, tiny_detector, photo):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    cv2.imwrite(str(src / "a.jpg"), cv2.cvtColor(photo[:120, :160], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(src / "sub" / "b.png"), cv2.cvtColor(photo[:90, :70], cv2.COLOR_RGB2BGR))
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code, _ = _run("detect", str(src), str(tmp_path / "out"), "--detector", str(tiny_detector),
                   "--overlay", str(tmp_path / "ov"), "--report", str(tmp_path / "r.jsonl"), "-q")
    assert code == 1
    a = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "out" / "sub" / "b.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == (120, 160) and b.shape == (90, 70) and set(np.unique(a)) <= {0, 255}
    assert (tmp_path / "ov" / "sub" / "b.png").exists()
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert sorted(r["status"] for r in rows) == ["failed", "ok", "ok"]
    # Rerun: done masks are skipped, the broken file fails again.
    code, _ = _run("detect", str(src), str(tmp_path / "out"), "--detector", str(tiny_detector), "-q")
    assert code == 1


def test_a_photo_with_nothing_to_repair_is_copied_byte_for_byte(tmp_path, tiny_model, photo):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "clean.jpg"), cv2.cvtColor(photo[:100, :100], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "empty.png"), np.zeros((100, 100), np.uint8))
    code, _ = _run("images", str(src), str(tmp_path / "out"), "--masks", str(tmp_path / "empty.png"),
                   "--model", str(tiny_model), "-q")
    assert code == 0
    assert (tmp_path / "out" / "clean.jpg").read_bytes() == (src / "clean.jpg").read_bytes()


def test_images_without_masks_uses_the_detector(tmp_path, tiny_model, tiny_detector, photo):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), cv2.cvtColor(photo[:96, :128], cv2.COLOR_RGB2BGR))
    code, _ = _run("images", str(src), str(tmp_path / "out"), "--model", str(tiny_model),
                   "--detector", str(tiny_detector), "--sensitivity", "0.99",
                   "--save-masks", str(tmp_path / "used"), "-q")
    assert code == 0
    used = cv2.imread(str(tmp_path / "used" / "a.png"), cv2.IMREAD_GRAYSCALE) > 0
    expected = Detector(tiny_detector, device="cpu", sensitivity=0.99).detect(
        [cv2.cvtColor(cv2.imread(str(src / "a.png")), cv2.COLOR_BGR2RGB)])[0]
    grown = cv2.dilate(expected.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0
    assert np.array_equal(used, grown)  # detected, then grown by the default 2 px
    out = cv2.imread(str(tmp_path / "out" / "a.png"))
    original = cv2.imread(str(src / "a.png"))
    assert np.array_equal(out[~used], original[~used])


def test_eval_task_detect_is_seeded_and_writes_results(tmp_path, tiny_detector):
    from conftest import EXAMPLES

    args = ["eval", str(EXAMPLES / "originals"), "--task", "detect", "--types", "scratch,mixed",
            "--detector", str(tiny_detector), "--limit", "2"]
    reports = []
    for run in ("a", "b"):
        code, out = _run(*args, "--out", str(tmp_path / run))
        assert code == 0 and "scratch" in out
        reports.append(json.loads((tmp_path / run / "results.json").read_text()))
    assert reports[0]["types"] == reports[1]["types"]  # same seed, same damage, same scores
    assert reports[0]["views"] == 1  # a file without per-view calibration: seen once
    code, out = _run(*args, "--types", "scratch", "--detector-views", "2", "--out", str(tmp_path / "c"))
    assert code == 0 and "2 views" in out
    assert json.loads((tmp_path / "c" / "results.json").read_text())["views"] == 2
    assert set(reports[0]["types"]) == {"scratch", "mixed", "clean"}
    for row in (reports[0]["types"]["scratch"], reports[0]["types"]["mixed"]):
        assert all(0.0 <= row[k] <= 1.0 for k in ("precision", "recall", "f1", "iou"))
        assert row["damaged_percent"] > 0
    assert (tmp_path / "a" / "overlays" / "scratch-0-truth.png").exists()
    code, _ = _run("eval", str(EXAMPLES / "originals"), "--task", "detect", "--types", "smudge",
                   "--detector", str(tiny_detector))
    assert code == 2


class _FlagsOneSpot(torch.nn.Module):
    """Stands in for the network: confident damage on a 3 x 3 blob at (y, x), nothing elsewhere."""

    multiple = 16

    def __init__(self, y: int, x: int) -> None:
        super().__init__()
        self.y, self.x = y, x

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = torch.full((image.shape[0], 1, *image.shape[-2:]), -9.0)
        logits[..., self.y - 1 : self.y + 2, self.x - 1 : self.x + 2] = 2.0
        logits[..., self.y, self.x] = 5.0
        return logits


def test_mining_finds_where_the_detector_fires_on_clean_photos(photo):
    spots = mine_false_alarms(_FlagsOneSpot(40, 70), [photo, photo], [1], torch.device("cpu"))
    assert spots == [(1, 40, 70)]  # the peak of the blob, in the photo that was searched


def test_hard_crops_hold_the_spot_away_from_the_edge(photo):
    marked = photo.copy()
    marked[100, 150] = (255, 0, 255)
    rng = np.random.default_rng(3)
    for _ in range(20):
        crop = crop_around(marked, 100, 150, 64, rng)
        ys, xs = np.nonzero((crop == (255, 0, 255)).all(2))
        assert crop.shape == (64, 64, 3) and len(ys) == 1
        assert 8 <= ys[0] < 56 and 8 <= xs[0] <= 56


def test_hard_share_draws_crops_around_mined_spots(photo, monkeypatch):
    monkeypatch.setattr("restore.detect.train.paint_damage",
                        lambda rgb, rng, **_: (rgb, np.zeros(rgb.shape[:2], bool)))  # crops as cut
    flat = np.full((400, 400, 3), 128, np.uint8)
    flat[100:103, 150:153] = 255  # the only bright spot in the photo
    holding = {share: sum(bool((img > 0.9).any()) for img in sample_batch(
        [flat], [], 32, 64, np.random.default_rng(0), hard=[(0, 101, 151)], hard_share=share)[0])
        for share in (0.0, 1.0)}
    assert holding[1.0] == 32 and holding[0.0] < 16


def test_damage_batches_from_workers_are_the_in_process_ones_and_take_new_spots(photo):
    shared = ([photo], [])
    spot = [(0, 101, 151)]
    first, later = (2, 64, 3, [], 0.0), (2, 64, 3, spot, 1.0)
    with BatchStream(make_damage_batch, shared, first, start=5, workers=0) as inline:
        expected = [next(inline) for _ in range(3)]
    with BatchStream(make_damage_batch, shared, first, start=5, workers=2) as pooled:
        got = [next(pooled) for _ in range(3)]
        pooled.args = later  # new mined spots: batches submitted from now on use them
        after = [next(pooled) for _ in range(5)]  # 4 were already in flight with the old spots
    for (img_a, lab_a), (img_b, lab_b) in zip(expected, got, strict=True):
        assert img_a.dtype == np.uint8 and img_a.shape == (2, 64, 64, 3) and lab_a.dtype == bool
        assert np.array_equal(img_a, img_b) and np.array_equal(lab_a, lab_b)
    assert np.array_equal(after[0][0], make_damage_batch(shared, first, 8)[0])
    assert np.array_equal(after[4][0], make_damage_batch(shared, later, 12)[0])
    assert not np.array_equal(after[4][0], make_damage_batch(shared, first, 12)[0])


def test_the_coarse_scan_adds_only_what_it_is_sure_of(tiny_detector):
    """Full-resolution probabilities are raised to the shrunk scan's where that one is above the
    stricter coarse threshold, and nowhere else."""
    detector = Detector(tiny_detector, device="cpu", coarse_side=64)
    image = np.zeros((256, 384, 3), np.uint8)
    sure, unsure = detector.coarse_threshold + (1 - detector.coarse_threshold) / 2, detector.threshold + 1e-4

    def scan(colours, threshold):
        out = []
        for colour in colours:
            p = np.zeros(colour.shape[:2], np.float32)
            if colour.shape[0] == 64:  # the coarse scan: sure on the left, merely above threshold right
                p[16:48, 8:40], p[16:48, 56:88] = sure, unsure
            out.append(p)
        return out

    detector._scan = scan
    (prob,) = detector.probabilities([image])
    assert prob[72:184, 40:152].min() > detector.threshold  # the sure block, at full resolution
    assert prob[:, 224:].max() == 0  # the unsure one is not added
    (mask,) = detector.detect([np.zeros((40, 50, 3), np.uint8)])  # too small to shrink: one scan
    assert mask.shape == (40, 50)


def test_axis_share_applies_to_a_training_run_only(tmp_path, photo, monkeypatch):
    data = tmp_path / "photos"
    data.mkdir()
    cv2.imwrite(str(data / "p.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    seen: list[float] = []
    painter = synth.scratch

    def spy(*args):
        seen.append(synth.AXIS_SHARE)
        return painter(*args)

    monkeypatch.setitem(synth.PAINTERS, "scratch", spy)
    code, _ = _run("train", str(data), "--task", "detect", "--axis-share", "0.7", "--steps", "3",
                   "--crop", "64", "--batch-size", "4", "--out", str(tmp_path / "d.pt"), "--quiet")
    assert code == 0 and seen and set(seen) == {0.7}
    assert synth.AXIS_SHARE == 0.0  # the exam's draws are untouched afterwards
    assert _run("train", str(data), "--axis-share", "0.5", "--out", str(tmp_path / "g.pt"))[0] == 2


def test_the_ignore_band_forgives_a_line_drawn_wider_but_not_a_miss_or_a_far_alarm():
    target = torch.zeros(1, 1, 32, 32)
    target[..., 16] = 1  # a 1 px upright line
    confident = torch.full_like(target, -8.0)
    confident[..., 16] = 8.0
    wider = confident.clone()
    wider[..., 15:18] = 8.0  # flags a pixel either side of the line
    far = confident.clone()
    far[..., 4] = 8.0  # an alarm well away from it
    missed = torch.full_like(target, -8.0)

    def loss(logits: torch.Tensor, band: int = 0) -> float:
        return detection_loss(logits, target, band).item()

    assert loss(wider) > loss(confident) + 0.1  # charged without a band
    assert loss(wider, 2) == pytest.approx(loss(confident, 2), abs=1e-4)
    assert loss(far, 2) > loss(confident, 2) + 0.1
    assert loss(missed, 2) > loss(confident, 2) + 0.1
