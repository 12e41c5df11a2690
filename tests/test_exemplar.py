"""The exemplar stage (--fill realistic): texture comes from the photo, known pixels never change."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from restore.inpaint.engine import Inpainter
from restore.inpaint.exemplar import synthesize

torch.set_num_threads(1)


def _stripes(h: int = 96, w: int = 112) -> np.ndarray:
    """Diagonal stripes with a period of 8 px on a slow colour ramp: texture a blur cannot make."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    wave = 0.5 + 0.35 * np.sign(np.sin(2 * np.pi * (x + y) / 8.0))
    ramp = 0.8 + 0.2 * x / w
    return np.stack([wave * ramp, wave * 0.9, wave * (1.1 - 0.2 * ramp)], -1).clip(0, 1).astype(np.float32)


def _hole(h: int, w: int, y0: int = 30, x0: int = 36, size: int = 28) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[y0 : y0 + size, x0 : x0 + size] = True
    return hole


def _smooth_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """What a drab network fill looks like: the surroundings' mean colour, softly blended."""
    guide = image.copy()
    guide[hole] = image[~hole].mean(0)
    return guide


def _detail(image: np.ndarray) -> np.ndarray:
    luma = image.mean(-1)
    return luma - cv2.GaussianBlur(luma, (0, 0), 1.5)


def test_exemplar_fill_reproduces_a_periodic_texture():
    image = _stripes()
    hole = _hole(*image.shape[:2])
    given = image.copy()
    given[hole] = 0.0
    guide = _smooth_fill(image, hole)
    (out,) = synthesize([given], [hole], [guide])
    inner = np.zeros_like(hole)
    inner[34:54, 40:60] = True  # away from the blur's reach across the border
    ring = cv2.dilate(hole.astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool) & ~hole
    energy_hole = np.sqrt((_detail(out)[inner] ** 2).mean())
    energy_ring = np.sqrt((_detail(image)[ring] ** 2).mean())
    assert energy_hole > 0.7 * energy_ring  # the stripes continue, the hole is not flat
    err_exemplar = np.abs(out[hole] - image[hole]).mean()
    err_smooth = np.abs(guide[hole] - image[hole]).mean()
    assert err_exemplar < 0.5 * err_smooth


def test_outside_the_hole_the_guide_is_returned_and_fixed_seeds_repeat():
    rng = np.random.default_rng(1)
    image = rng.random((80, 72, 3), dtype=np.float32)
    hole = _hole(80, 72, 20, 20, 24)
    guide = _smooth_fill(image, hole)
    first = synthesize([image], [hole], [guide])[0]
    again = synthesize([image], [hole], [guide])[0]
    assert np.array_equal(first, again)
    assert np.array_equal(first[~hole], guide[~hole])
    assert not np.allclose(first[hole], guide[hole])


def test_windows_of_different_sizes_in_one_call():
    shapes = [(64, 80), (96, 96), (64, 80), (40, 130)]
    images, holes, guides = [], [], []
    for i, (h, w) in enumerate(shapes):
        image = _stripes(h, w)
        hole = _hole(h, w, 10 + i, 12 + 2 * i, 14)
        images.append(image)
        holes.append(hole)
        guides.append(_smooth_fill(image, hole))
    outs = synthesize(images, holes, guides)
    for (h, w), out, image, hole, guide in zip(shapes, outs, images, holes, guides, strict=True):
        assert out.shape == (h, w, 3) and np.isfinite(out).all()
        assert np.array_equal(out[~hole], guide[~hole])
        assert np.abs(out[hole] - image[hole]).mean() < np.abs(guide[hole] - image[hole]).mean()


def test_a_window_with_no_complete_patch_keeps_the_guide():
    image = np.full((12, 12, 3), 0.5, np.float32)
    hole = np.ones((12, 12), bool)
    hole[0, 0] = False
    guide = np.full_like(image, 0.25)
    (out,) = synthesize([image], [hole], [guide])
    assert np.array_equal(out, guide)


def test_one_window_without_coarse_sources_does_not_stop_its_batch():
    """Same-shape windows share a batch; a window whose coarse levels hold no complete known patch
    (a dense scribble) plans fewer levels and gets synthesised too, and so do the others."""
    h, w = 96, 112
    image = _stripes(h, w)
    scribble = np.zeros((h, w), bool)
    scribble[::12] = True  # 11 px gaps: full-resolution patches fit, half-resolution ones do not
    scribble[:, ::12] = True
    images, holes = [image, image], [_hole(h, w), scribble]
    guides = [_smooth_fill(image, hole) for hole in holes]
    outs = synthesize(images, holes, guides)
    for out, hole, guide in zip(outs, holes, guides, strict=True):
        assert np.array_equal(out[~hole], guide[~hole])
        assert np.abs(out[hole] - image[hole]).mean() < np.abs(guide[hole] - image[hole]).mean()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_realistic_fill_keeps_known_pixels_bit_identical(tiny_model, photo, dtype):
    inpainter = Inpainter(tiny_model, device="cpu", tile=256, batch_size=4, fill="realistic")
    image = photo[:200, :240].astype(dtype) * (257 if dtype == np.uint16 else 1)
    mask = np.zeros(image.shape[:2], bool)
    mask[60:110, 80:150] = True
    mask[150:153, 10:200] = True
    (out,) = inpainter.repair([image], [mask])
    assert out.dtype == image.dtype
    assert np.array_equal(out[~mask], image[~mask])
    smooth = Inpainter(tiny_model, device="cpu", tile=256, batch_size=4, fill="smooth")
    assert not np.array_equal(out[mask], smooth.repair([image], [mask])[0][mask])


def test_a_realistic_fill_does_not_depend_on_the_photos_batched_with_it(tiny_model, photo):
    inpainter = Inpainter(tiny_model, device="cpu", tile=256, batch_size=4, fill="realistic")
    image, other = photo[:160, :200].copy(), photo[40:200, 30:230].copy()
    mask = np.zeros(image.shape[:2], bool)
    mask[50:90, 60:120] = True
    alone = inpainter.repair([image], [mask])[0]
    first, _ = inpainter.repair([image, other], [mask, mask])  # one batch of two same-shape windows
    _, second = inpainter.repair([other, image], [mask, mask])
    assert np.array_equal(alone, first) and np.array_equal(alone, second)


def test_a_region_larger_than_a_tile_gets_patches_in_tiles_and_hairlines_keep_the_network_fill(
        tiny_model, photo):
    """A scan-like region (a hairline across the frame joins everything into one region larger than
    the tile): the wide hole is synthesised in tiles, the 2 px hairline keeps the network's fill,
    and nothing outside the holes changes."""
    image = cv2.resize(photo, (600, 400), interpolation=cv2.INTER_AREA)
    mask = np.zeros(image.shape[:2], bool)
    mask[150:190, 250:330] = True  # wide
    mask[:, 100:102] = True  # a hairline from top to bottom
    mask[170, 100:250] = True  # joining them
    kwargs = {"device": "cpu", "precision": "fp32", "tile": 256, "batch_size": 4}
    realistic = Inpainter(tiny_model, fill="realistic", **kwargs).repair([image], [mask])[0]
    smooth = Inpainter(tiny_model, fill="smooth", **kwargs).repair([image], [mask])[0]
    assert np.array_equal(realistic[~mask], image[~mask])
    hairline = np.zeros_like(mask)
    hairline[:, 100:102] = True
    hairline[165:176, :] = False  # where the joining line meets it, the hole is wider
    assert np.array_equal(realistic[hairline], smooth[hairline])
    wide = np.zeros_like(mask)
    wide[155:185, 255:325] = True
    assert np.abs(realistic[wide].astype(int) - smooth[wide]).mean() > 2


def test_unknown_fill_is_refused(tiny_model):
    with pytest.raises(ValueError, match="fill"):
        Inpainter(tiny_model, device="cpu", fill="sharp")


def test_images_command_takes_fill(tmp_path, tiny_model, photo):
    from restore.cli import main

    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    src.mkdir()
    masks.mkdir()
    small = cv2.cvtColor(cv2.resize(photo, (160, 120), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(src / "a.png"), small)
    mask = np.zeros((120, 160), np.uint8)
    mask[40:80, 50:100] = 255
    cv2.imwrite(str(masks / "a.png"), mask)
    args = ["images", str(src), str(out), "--masks", str(masks), "--model", str(tiny_model),
            "--fill", "realistic", "-q"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    after = cv2.imread(str(out / "a.png"))
    assert np.array_equal(after[mask == 0], small[mask == 0])
    _refiner(tmp_path / "refine.pt", 0.5)
    result = CliRunner().invoke(main, [*args, "--refiner", str(tmp_path / "refine.pt"), "--overwrite"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    refined = cv2.imread(str(out / "a.png"))
    assert np.array_equal(refined[mask == 0], small[mask == 0])
    assert not np.array_equal(refined[mask > 0], after[mask > 0])
    result = CliRunner().invoke(main, [*args, "--refiner", str(tiny_model), "--overwrite"])
    assert result.exit_code == 2 and "not a refiner" in result.output


def _refiner(path, bias: float) -> None:
    """A tiny refiner whose correction is a constant ``bias`` (0: it returns the given fill)."""
    from restore.model.generator import GeneratorConfig, InpaintGenerator, as_refiner
    from restore.model.weights import export_generator

    torch.manual_seed(0)
    refiner = as_refiner(InpaintGenerator(GeneratorConfig(base_channels=8, blocks=1)))
    torch.nn.init.constant_(refiner.head.bias, bias)
    export_generator(refiner.eval(), path)


def test_a_refiner_corrects_the_exemplar_fill_and_nothing_else(tmp_path, tiny_model, photo):
    image = photo[:200, :240]
    mask = np.zeros(image.shape[:2], bool)
    mask[60:110, 80:150] = True
    plain = Inpainter(tiny_model, device="cpu", precision="fp32", tile=256, fill="realistic", refiner=None)
    expected = plain.repair([image], [mask])[0]
    _refiner(tmp_path / "zero.pt", 0.0)
    _refiner(tmp_path / "shift.pt", 0.5)
    for name, same in (("zero.pt", True), ("shift.pt", False)):
        refined = Inpainter(tiny_model, device="cpu", precision="fp32", tile=256, fill="realistic",
                            refiner=tmp_path / name)
        (out,) = refined.repair([image], [mask])
        assert np.array_equal(out[~mask], image[~mask])
        close = np.abs(out[mask].astype(int) - expected[mask].astype(int)).max() <= 1
        assert close == same


def test_an_inpainting_model_is_refused_as_refiner(tiny_model):
    with pytest.raises(ValueError, match="not a refiner"):
        Inpainter(tiny_model, device="cpu", fill="realistic", refiner=tiny_model)


def test_the_guide_is_loosened_only_deep_inside_wide_holes():
    from restore.inpaint.exemplar import ExemplarSettings, deep_share

    hole = np.zeros((96, 160), bool)
    hole[20:24, 8:70] = True  # a 4 px scratch
    hole[30:80, 90:140] = True  # a 50 px hole
    share = deep_share(torch.from_numpy(~hole)[None, None], ExemplarSettings())[0, 0].numpy()
    assert share[~hole].max() < 0.05  # known pixels are never "deep"
    assert share[20:24, 8:70].max() == 0  # a scratch keeps the network's tight guide
    assert share[40:70, 100:130].min() > 0.99  # the middle of a wide hole gets the loose one
    assert share[30, 90:140].max() < share[55, 90:140].max()  # looser from the rim inwards


def test_the_depth_rule_leaves_a_scratch_alone_and_changes_a_wide_fill():
    """The synthesis uses the rule: a 4 px scratch's fill is what it was with one narrow blur
    and the full correction everywhere, a wide hole's is not."""
    from restore.inpaint.exemplar import ExemplarSettings

    image = _stripes(96, 160)
    flat = ExemplarSettings(wide_sigma=0.0, correct_deep=1.0)
    for hole, same in ((np.zeros((96, 160), bool), True), (_hole(96, 160, 24, 60, 44), False)):
        if same:
            hole[40:44, 20:140] = True
        guide = _smooth_fill(image, hole)
        by_depth = synthesize([image], [hole], [guide])[0]
        plain = synthesize([image], [hole], [guide], flat)[0]
        assert np.array_equal(by_depth, plain) == same
