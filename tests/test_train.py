"""Training: synthetic masks behave, a short run checkpoints, resumes and exports loadable weights."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import EXAMPLES

from restore.model.generator import GeneratorConfig
from restore.model.weights import WeightsError, load_generator
from restore.train import loop
from restore.train.data import (
    BatchStream,
    load_photos,
    make_crops_batch,
    sample_batch,
    sample_crops,
    step_rng,
    to_model_input,
)
from restore.train.loop import TrainConfig, train
from restore.train.losses import discriminator_loss, hole_depth, reconstruction_loss
from restore.train.masks import MASK_KINDS, MAX_HOLE_FRACTION, make_mask, training_mask
from restore.train.slim import slim_checkpoint


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_masks_are_seeded_non_empty_and_at_most_half(kind):
    a = make_mask(kind, 192, 256, np.random.default_rng(4))
    b = make_mask(kind, 192, 256, np.random.default_rng(4))
    c = make_mask(kind, 192, 256, np.random.default_rng(5))
    assert a.shape == (192, 256) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0 < a.mean() <= MAX_HOLE_FRACTION
    assert set(np.unique(a)) <= {0.0, 1.0}


def test_mask_sizes_order_thin_below_thick():
    rng = np.random.default_rng(0)
    def widest(kind):  # the largest inscribed radius says how wide the strokes are
        import cv2
        return np.median([cv2.distanceTransform(make_mask(kind, 256, 256, rng).astype(np.uint8),
                                                cv2.DIST_L2, 3).max() for _ in range(20)])
    assert widest("thin") < widest("medium") < widest("thick")
    assert widest("scratch") <= widest("thin")


def test_training_mix_is_never_empty():
    rng = np.random.default_rng(1)
    assert all(0 < training_mask(128, 128, rng).mean() <= MAX_HOLE_FRACTION for _ in range(30))


def test_short_run_checkpoints_resumes_and_exports(tmp_path):
    tiny = GeneratorConfig(base_channels=8, blocks=1)
    cfg = TrainConfig(data=EXAMPLES / "originals", out=tmp_path / "model.pt", work_dir=tmp_path / "work",
                      steps=3, batch_size=2, crop=64, sample_every=2, log_every=1, generator=tiny)
    metrics = train(cfg)
    assert metrics["step"] == 3
    state = torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3
    assert (tmp_path / "work" / "samples" / "step0000002.png").exists()
    cfg.steps, cfg.resume = 5, True
    assert train(cfg)["step"] == 5  # continued, not restarted
    lines = [json.loads(x) for x in (tmp_path / "work" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5]
    model = load_generator(tmp_path / "model.pt")
    assert model.config == tiny
    with pytest.raises(WeightsError, match="training checkpoint"):
        load_generator(tmp_path / "work" / "checkpoint.pt")
    out = model(torch.zeros(1, 3, 64, 64), torch.ones(1, 1, 64, 64))
    assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()


def test_batches_made_by_worker_processes_are_the_in_process_ones_in_step_order():
    photos = load_photos(EXAMPLES / "originals", max_side=128)
    with BatchStream(make_crops_batch, photos, (2, 64, 0.5, 3, 0), start=7, workers=0) as inline:
        expected = [next(inline) for _ in range(5)]
    with BatchStream(make_crops_batch, photos, (2, 64, 0.5, 3, 0), start=7, workers=2) as pooled:
        got = [next(pooled) for _ in range(5)]
    for (crops_a, masks_a), (crops_b, masks_b) in zip(expected, got, strict=True):
        assert crops_a.dtype == np.uint8 and crops_a.shape == (2, 64, 64, 3) and masks_a.shape == (2, 64, 64)
        assert np.array_equal(crops_a, crops_b) and np.array_equal(masks_a, masks_b)
    # Step 9's batch is step 9's wherever the stream started: what makes resume exact.
    assert np.array_equal(expected[2][0], sample_crops(photos, 2, 64, step_rng(3, 0, 9), 0.5)[0])
    images, masks = to_model_input(*expected[0])
    assert images.dtype == np.float32 and -1 <= images.min() and images.max() <= 1
    assert masks.shape == (2, 1, 64, 64) and set(np.unique(masks)) <= {0.0, 1.0}


def test_resume_from_a_weights_only_checkpoint_keeps_the_weights_and_restarts_adam(tmp_path):
    """A slim checkpoint (fp16 generator and discriminator, no optimiser) is how a run travels to
    a GPU machine under its upload limit; resuming it must continue from those weights."""
    tiny = GeneratorConfig(base_channels=8, blocks=1)
    cfg = TrainConfig(data=EXAMPLES / "originals", out=tmp_path / "model.pt", work_dir=tmp_path / "work",
                      steps=2, batch_size=2, crop=64, sample_every=100, log_every=1, generator=tiny,
                      lr_g=0.05, lr_d=0.05)  # big steps: weights far (~0.1) from a fresh start
    train(cfg)
    full = torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=True)
    slim_dir = tmp_path / "slim"
    slim_checkpoint(tmp_path / "work" / "checkpoint.pt", slim_dir / "checkpoint.pt")
    slim = torch.load(slim_dir / "checkpoint.pt", weights_only=True)
    assert "opt_g" not in slim and slim["generator"]["encoder.0.0.weight"].dtype == torch.float16
    cfg.work_dir, cfg.resume, cfg.steps, cfg.lr_g, cfg.lr_d = slim_dir, True, 3, 0.0, 0.0
    train(cfg)
    resumed = torch.load(slim_dir / "checkpoint.pt", weights_only=True)
    assert resumed["step"] == 3 and "opt_g" in resumed
    for key in ("generator", "discriminator", "generator_ema"):  # lr 0: the loaded weights, kept
        source = full["generator" if key == "generator_ema" else key]  # EMA starts from the generator
        weights = [n for n in source if n.endswith("weight")]
        assert all(torch.allclose(resumed[key][n], source[n], atol=1e-2) for n in weights), key


def test_calibrated_copy_measures_its_own_batchnorm_statistics():
    from restore.model.generator import InpaintGenerator
    from restore.train.data import load_photos, photo_draw
    from restore.train.loop import calibrated_copy

    model = InpaintGenerator(GeneratorConfig(base_channels=8, blocks=1)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    photos = load_photos(EXAMPLES / "originals", max_side=128)
    calibrated = calibrated_copy(model, photo_draw(photos, 64), torch.device("cpu"), step=0, batches=2,
                                 batch_size=2)
    assert not calibrated.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # original untouched
    mean_before = model.encoder[0][1].running_mean
    mean_after = calibrated.encoder[0][1].running_mean
    assert not torch.allclose(mean_before, mean_after)
    weights = [k for k in before if k.endswith("weight")]
    assert all(torch.equal(calibrated.state_dict()[k], before[k]) for k in weights)


def test_sigterm_ends_training_with_a_checkpoint(tmp_path):
    """A stopped job (Ctrl-C, scheduler's SIGTERM) saves where it was, so --resume loses nothing."""
    import signal
    import subprocess
    import sys
    import time

    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "restore", "train", str(EXAMPLES / "originals"),
                             "--out", str(tmp_path / "m.pt"), "--work-dir", str(work), "--steps", "100000",
                             "--batch-size", "1", "--crop", "64", "--base-channels", "8", "--blocks", "1",
                             "--log-every", "1", "--workers", "1", "--quiet"])
    # --workers: spawned batch makers re-import ``python -m restore``; it must not run the CLI again.
    deadline = time.time() + 120
    while time.time() < deadline and not (work / "metrics.jsonl").exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0
    step = torch.load(work / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < step < 100000
    assert load_generator(tmp_path / "m.pt").config.base_channels == 8


def test_perceptual_term_without_its_package_says_what_to_install_default_needs_none(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import restore.train.perceptual as perceptual
    from restore.cli import main
    from restore.eval import MissingPackage

    def missing(trunk: str = "alex"):
        raise MissingPackage("stlpips-pytorch is not installed: pip install 'restore[eval]'")

    monkeypatch.setattr(perceptual, "load_stlpips", missing)
    args = ["train", str(EXAMPLES / "originals"), "--out", str(tmp_path / "m.pt"), "--steps", "1",
            "--batch-size", "1", "--crop", "64", "--base-channels", "8", "--blocks", "1", "--quiet"]
    result = CliRunner().invoke(main, [*args, "--perceptual-weight", "0.05"])
    assert result.exit_code == 2
    assert "restore[eval]" in result.output and "--perceptual-weight 0" in result.output
    assert not (tmp_path / "m.pt").exists()
    result = CliRunner().invoke(main, args)  # off by default: no package needed
    assert result.exit_code == 0, result.output
    assert load_generator(tmp_path / "m.pt").config.base_channels == 8


def test_perceptual_term_is_trained_and_logged_when_asked_for(tmp_path):
    pytest.importorskip("stlpips_pytorch")
    cfg = TrainConfig(data=EXAMPLES / "originals", out=tmp_path / "model.pt", work_dir=tmp_path / "work",
                      steps=2, batch_size=2, crop=64, log_every=1, sample_every=100,
                      generator=GeneratorConfig(base_channels=8, blocks=1), perceptual_weight=0.05)
    assert train(cfg)["perceptual"] > 0
    cfg.perceptual_weight, cfg.steps, cfg.resume = 0.0, 3, True
    assert train(cfg)["perceptual"] == 0  # off: not computed


def test_lowpass_hole_loss_leaves_texture_free_but_pins_colour():
    real = torch.zeros(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None]) % 2 * 0.4 - 0.2  # zero mean per 8x8 block
    textured = real + mask * checker
    tinted = real + mask * torch.tensor([0.2, 0.0, -0.2])[:, None, None]
    assert reconstruction_loss(textured, real, mask) > 0.1  # per pixel, texture costs like a wrong colour
    assert reconstruction_loss(textured, real, mask, hole_lowpass=8, hole_pixel_weight=0) < 1e-6
    # With hole pixels counted once, as known ones are, texture costs a sixth of what it did.
    assert reconstruction_loss(textured, real, mask, hole_lowpass=8).item() == pytest.approx(
        reconstruction_loss(textured, real, mask).item() / 6, rel=0.05)
    # A cast costs what it costs per pixel: block means see it whole.
    cast = reconstruction_loss(tinted, real, mask, hole_lowpass=8, hole_pixel_weight=0).item()
    assert cast == pytest.approx(reconstruction_loss(tinted, real, mask).item(), rel=0.01)
    outside = real + (1 - mask) * checker  # the known area is still compared pixel by pixel
    assert reconstruction_loss(outside, real, mask, hole_lowpass=8) > 0.05


def test_share_labels_call_a_cell_that_grazes_the_hole_mostly_real():
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :, :9] = 1  # columns 0-8: cell column 0 wholly hole, column 1 one pixel of eight
    score = torch.zeros(1, 1, 4, 4)  # the discriminator's cells: 8 x 8 pixels each
    grazing = score.clone()
    grazing[..., 1] = 4.0  # "this cell is real"
    for kind in ("any", "share"):
        assert discriminator_loss(score, score, mask, kind).item() == pytest.approx(2 * np.log(2), rel=1e-4)
    # Calling the grazing column real is wrong under "any", nearly right under "share".
    assert discriminator_loss(score, grazing, mask, "any") > discriminator_loss(score, score, mask, "any")
    assert discriminator_loss(score, grazing, mask, "share") < discriminator_loss(score, score, mask, "share")


def test_hole_border_weights_the_rim_per_pixel_and_leaves_the_middle_to_block_means():
    real = torch.zeros(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 8:56, 8:56] = 1
    depth = hole_depth(mask, 64)
    assert depth[0, 0, 8, 30] == 1 and depth[0, 0, 31, 31] == 24 and depth[0, 0, 0, 0] == 0
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None]) % 2 * 0.4 - 0.2
    rim = real + checker * ((depth >= 1) & (depth <= 2))
    middle = real + checker * (depth >= 20)
    def loss(fake, border) -> float:
        return reconstruction_loss(fake, real, mask, hole_lowpass=8, hole_border=border).item()
    # At the rim an outline costs nearly what it does with the full per-pixel weight ...
    assert loss(rim, 4) > 3 * loss(rim, 0)
    assert loss(rim, 4) == pytest.approx(reconstruction_loss(rim, real, mask).item(), rel=0.3)
    # ... while deep inside texture is left to the block means as before.
    assert loss(middle, 4) == pytest.approx(loss(middle, 0), rel=0.05)


def test_transpose_turns_the_asked_share_of_crops_on_their_side_and_is_off_by_default():
    rows = np.tile(np.arange(64, dtype=np.uint8)[:, None, None] * 4, (1, 64, 3))  # varies down y only
    def sideways(*transpose):
        images, _ = sample_batch([rows], 200, 32, np.random.default_rng(0), *transpose)
        along_x = np.abs(np.diff(images, axis=3)).mean(axis=(1, 2, 3))
        return float((along_x > 0.01).mean())
    assert sideways() == 0.0
    assert 0.35 < sideways(0.5) < 0.65 and sideways(1.0) == 1.0


def test_fm_weight_option_reaches_the_training_loop(tmp_path):
    from click.testing import CliRunner

    from restore.cli import main

    args = ["train", str(EXAMPLES / "originals"), "--steps", "1", "--batch-size", "1", "--crop", "64",
            "--base-channels", "8", "--blocks", "1", "--quiet"]
    for name, extra, expected in (("default", [], 0.0), ("on", ["--fm-weight", "1"], 1.0)):
        result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / f"{name}.pt"), *extra])
        assert result.exit_code == 0, result.output
        state = torch.load(tmp_path / f"{name}-train" / "checkpoint.pt", weights_only=True)
        assert json.loads(state["train_config"])["fm_weight"] == expected


def test_lr_option_replaces_the_saved_learning_rates_on_resume(tmp_path):
    """--lr anneals a running inpainting run: the resumed optimisers take it (discriminator 0.4x)."""
    from click.testing import CliRunner

    from restore.cli import main

    args = ["train", str(EXAMPLES / "originals"), "--batch-size", "1", "--crop", "64", "--base-channels", "8",
            "--blocks", "1", "--quiet", "--out", str(tmp_path / "m.pt")]
    for extra, lr_g in ((["--steps", "1"], 5e-4), (["--steps", "2", "--resume", "--lr", "1e-4"], 1e-4)):
        result = CliRunner().invoke(main, [*args, *extra])
        assert result.exit_code == 0, result.output
        state = torch.load(tmp_path / "m-train" / "checkpoint.pt", weights_only=True)
        assert state["opt_g"]["param_groups"][0]["lr"] == pytest.approx(lr_g)
        assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(0.4 * lr_g)
    assert state["step"] == 2


@pytest.mark.parametrize("native", [True, False])
def test_training_uses_bf16_only_where_the_cpu_computes_it_natively(monkeypatch, native):
    # Emulated bf16 made a detector training step 10x slower than fp32 on an AVX2 CPU.
    monkeypatch.setattr(loop, "cpu_has_fast_bf16", lambda: native)
    with loop.training_autocast(torch.device("cpu")):
        out = torch.nn.functional.linear(torch.ones(2, 4), torch.ones(3, 4))
    assert out.dtype == (torch.bfloat16 if native else torch.float32)


def test_discriminator_warmup_leaves_the_generator_alone_then_hands_over(tmp_path):
    """--d-warmup: the first steps train only the discriminator (the generator and its EMA stay
    as loaded); after them both train as usual."""
    tiny = GeneratorConfig(base_channels=8, blocks=1)
    base = dict(data=EXAMPLES / "originals", batch_size=2, crop=64, sample_every=100, log_every=1,
                generator=tiny)
    train(TrainConfig(out=tmp_path / "init.pt", work_dir=tmp_path / "w0", steps=1, **base))
    loaded = load_generator(tmp_path / "init.pt")
    init, params = loaded.state_dict(), [n for n, _ in loaded.named_parameters()]
    cfg = TrainConfig(out=tmp_path / "model.pt", work_dir=tmp_path / "work", init=tmp_path / "init.pt",
                      steps=2, d_warmup_steps=2, **base)
    # The same run at step 0 (same seed): the discriminator the warm-up starts from.
    train(dataclasses.replace(cfg, steps=0, out=tmp_path / "start.pt", work_dir=tmp_path / "start"))
    start = torch.load(tmp_path / "start" / "checkpoint.pt", weights_only=True)["discriminator"]
    train(cfg)
    warm = torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(warm["generator"][n], init[n]) for n in params)
    assert all(torch.equal(warm["generator_ema"][n], init[n]) for n in params)
    assert not torch.allclose(warm["discriminator"]["score.weight"], start["score.weight"])
    lines = [json.loads(x) for x in (tmp_path / "work" / "metrics.jsonl").read_text().splitlines()]
    assert [x["rec"] for x in lines] == [0.0, 0.0] and all(x["d"] > 0 for x in lines)
    cfg.steps, cfg.resume = 3, True
    train(cfg)
    after = torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=True)
    assert any(not torch.equal(after["generator"][n], init[n]) for n in params)
    assert json.loads((tmp_path / "work" / "metrics.jsonl").read_text().splitlines()[-1])["rec"] > 0


def test_d_warmup_option_reaches_the_loop_is_off_by_default_and_only_for_inpainting(tmp_path):
    from click.testing import CliRunner

    from restore.cli import main

    data = str(EXAMPLES / "originals")
    args = ["train", data, "--steps", "1", "--batch-size", "1", "--crop", "64", "--quiet"]
    tiny = ["--base-channels", "8", "--blocks", "1"]
    def warmup_saved(name: str) -> int:
        state = torch.load(tmp_path / f"{name}-train" / "checkpoint.pt", weights_only=True)
        return json.loads(state["train_config"])["d_warmup_steps"]

    assert CliRunner().invoke(main, [*args, *tiny, "--out", str(tmp_path / "new.pt")]).exit_code == 0
    assert warmup_saved("new") == 0
    fine_tune = ["--init", str(tmp_path / "new.pt"), "--d-warmup", "3", "--out", str(tmp_path / "ft3.pt")]
    result = CliRunner().invoke(main, [*args, *fine_tune])
    assert result.exit_code == 0, result.output
    assert warmup_saved("ft3") == 3
    detect = [*args, "--task", "detect", "--d-warmup", "5", "--out", str(tmp_path / "d.pt")]
    result = CliRunner().invoke(main, detect)
    assert result.exit_code == 2 and "--d-warmup" in result.output


def test_refiner_trains_on_a_cache_of_exemplar_fills(tmp_path):
    """--exemplar-cache: the cache is built from photos with a guide network, then a refiner
    fine-tuned from that network trains on it, resumes, and exports a model marked as a refiner."""
    from restore.model.generator import InpaintGenerator
    from restore.model.weights import export_generator
    from restore.train.data import load_photos
    from restore.train.exemplar_cache import CHUNK, build_cache, load_cache

    torch.manual_seed(0)
    guide = InpaintGenerator(GeneratorConfig(base_channels=8, blocks=1)).eval()
    export_generator(guide, tmp_path / "guide.pt")
    photos = load_photos(EXAMPLES / "originals", max_side=128)
    count = CHUNK + 3  # two chunks, the second short
    made = sum(build_cache(guide, photos, tmp_path / "cache", count, size=64, shard=s, shards=2)
               for s in (0, 1))
    assert made == count and build_cache(guide, photos, tmp_path / "cache", count, size=64) == 0  # resumes
    cache = load_cache(tmp_path / "cache")
    assert cache["crops"].shape == (count, 64, 64, 3) and cache["fills"].shape == (count, 64, 64, 3)
    known = cache["masks"] == 0
    assert np.array_equal(cache["fills"][known], cache["crops"][known])
    assert not np.array_equal(cache["fills"][~known], cache["crops"][~known])

    cfg = TrainConfig(data=EXAMPLES / "originals", out=tmp_path / "refine.pt", work_dir=tmp_path / "work",
                      init=tmp_path / "guide.pt", exemplar_cache=tmp_path / "cache", steps=2, batch_size=2,
                      crop=64, sample_every=2, log_every=1)
    assert train(cfg)["step"] == 2
    cfg.steps, cfg.resume = 3, True
    assert train(cfg)["step"] == 3
    refiner = load_generator(tmp_path / "refine.pt")
    assert refiner.config.refine and not guide.config.refine
    with pytest.raises(ValueError, match="pass guess"):
        refiner(torch.zeros(1, 3, 64, 64), torch.ones(1, 1, 64, 64))
    assert (tmp_path / "work" / "samples" / "step0000002.png").exists()


def test_a_low_pass_refiner_can_shift_a_fills_tone_but_not_smooth_its_texture():
    """--refine-lowpass: whatever the head says, the correction is constant over blocks of that
    size, blended smoothly; so the given fill's fine texture always comes through."""
    from restore.model.generator import InpaintGenerator, as_refiner

    torch.manual_seed(0)
    trunk = InpaintGenerator(GeneratorConfig(base_channels=8, blocks=1)).eval()
    free, low = as_refiner(trunk), as_refiner(trunk, lowpass=8)
    assert low.config.refine_lowpass == 8 and free.config.refine_lowpass == 0
    for model in (free, low):
        torch.nn.init.normal_(model.head.weight, std=0.5)  # a correction with texture of its own
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 8:56, 8:56] = 1
    fill = (torch.rand(1, 3, 64, 64) * 2 - 1) * 0.5  # grainy
    base = torch.lerp(image, fill, mask)

    def roughness(delta: torch.Tensor) -> float:
        return float((delta[..., 1:, :] - delta[..., :-1, :]).abs().mean())

    with torch.no_grad():
        free_delta, low_delta = free(image, mask, fill) - base, low(image, mask, fill) - base
    assert low_delta.abs().mean() > 0.01  # it does correct
    assert roughness(low_delta) < 0.25 * roughness(free_delta)


def test_diffaug_moves_and_cuts_the_mask_with_the_pixels_and_passes_gradients():
    from restore.train import diffaug

    torch.manual_seed(0)
    n, h, w = 4, 32, 48
    images = torch.rand(n, 3, h, w, requires_grad=True)
    mask = (torch.rand(n, 1, h, w) > 0.7).float()
    aug = diffaug.draw(n, h, w, torch.device("cpu"), ("translation", "cutout"),
                       torch.Generator().manual_seed(1))
    assert aug.shift.abs().max() > 0 and (aug.keep == 0).any()
    # Geometry only: an image that is its mask (every channel) comes out as the moved, cut mask.
    assert torch.equal(aug(mask.expand(n, 3, h, w)), aug.geometry(mask).expand(n, 3, h, w))
    for i, (dy, dx) in enumerate(aug.shift.tolist()):
        moved = aug.geometry(images)[i]
        y, x = h // 2, w // 2
        if aug.keep[i, 0, y, x]:
            assert torch.equal(moved[:, y, x], images[i, :, y - dy, x - dx])
    aug.geometry(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    colour = diffaug.draw(n, h, w, torch.device("cpu"), ("color",), torch.Generator().manual_seed(2))
    assert torch.equal(colour.geometry(images), images)  # no policy moves pixels that was not asked
    assert not torch.allclose(colour(images), images)


def test_diffaug_option_reaches_the_loop_is_off_by_default_and_rejects_unknown_policies(tmp_path):
    from click.testing import CliRunner

    from restore.cli import main

    args = ["train", str(EXAMPLES / "originals"), "--steps", "2", "--batch-size", "2", "--crop", "64",
            "--base-channels", "8", "--blocks", "1", "--quiet"]
    for name, extra, expected in (("off", [], []), ("on", ["--diffaug", "color,translation,cutout"],
                                                    ["color", "translation", "cutout"])):
        result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / f"{name}.pt"), *extra])
        assert result.exit_code == 0, result.output
        state = torch.load(tmp_path / f"{name}-train" / "checkpoint.pt", weights_only=True)
        assert json.loads(state["train_config"])["diffaug"] == expected
        assert (tmp_path / f"{name}.pt").exists()
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "bad.pt"), "--diffaug", "zoom"])
    assert result.exit_code == 2 and "zoom" in result.output
