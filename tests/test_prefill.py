"""The push-pull first guess and the generator that corrects it."""

from __future__ import annotations

import torch

from restore.model.generator import GeneratorConfig, InpaintGenerator, with_prefill
from restore.model.prefill import push_pull
from restore.model.weights import WEIGHTS_FORMAT, load_generator, save_atomic


def test_push_pull_keeps_known_pixels_and_fills_holes_from_their_surroundings():
    image = torch.zeros(1, 3, 37, 50)
    image[:, :, :, :25] = 0.8  # left half bright, right half dark
    known = torch.ones(1, 1, 37, 50)
    known[:, :, 10:20, 5:15] = 0  # a hole inside the bright half
    known[:, :, 10:20, 35:45] = 0  # and one inside the dark half
    image[known.expand_as(image) == 0] = 5.0  # garbage where unknown
    filled = push_pull(image, known)
    assert torch.equal(filled[known.expand_as(image) == 1], image[known.expand_as(image) == 1])
    # Mostly its own side's colour; a little bleeds in from the far side through coarse levels.
    assert (filled[:, :, 10:20, 5:15] - 0.8).abs().max() < 0.1
    assert filled[:, :, 10:20, 35:45].abs().max() < 0.1


def test_upgraded_generator_starts_as_the_push_pull_fill():
    torch.manual_seed(0)
    old = InpaintGenerator(GeneratorConfig(base_channels=8, blocks=1, prefill=False)).eval()
    new = with_prefill(old).eval()
    image, mask = torch.rand(2, 3, 32, 48) * 2 - 1, (torch.rand(2, 1, 32, 48) > 0.7).float()
    with torch.no_grad():
        assert torch.allclose(new(image, mask), push_pull(image, 1 - mask).clamp(-1, 1))
    assert new.config.prefill and not old.config.prefill


def test_weights_written_before_prefill_existed_load_without_it(tmp_path):
    model = InpaintGenerator(GeneratorConfig(base_channels=8, blocks=1, prefill=False))
    config = model.config.to_dict()
    del config["prefill"]  # as files from before the option have it
    blob = {"format": WEIGHTS_FORMAT, "config": config, "state_dict": model.state_dict()}
    save_atomic(blob, tmp_path / "m.pt")
    assert load_generator(tmp_path / "m.pt").config.prefill is False
