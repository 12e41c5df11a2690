"""The push-pull first guess and the generator that corrects it."""

from __future__ import annotations

import torch

from restore.model.generator import GeneratorConfig, InpaintGenerator, reshaped, with_prefill
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
    del config["prefill"], config["padding"]  # as files from before the options have it
    blob = {"format": WEIGHTS_FORMAT, "config": config, "state_dict": model.state_dict()}
    save_atomic(blob, tmp_path / "m.pt")
    loaded = load_generator(tmp_path / "m.pt")
    assert loaded.config.prefill is False and loaded.config.padding == "reflect"
    padded = [m for m in loaded.modules() if isinstance(m, torch.nn.Conv2d) and m.padding != (0, 0)]
    assert {m.padding_mode for m in padded} == {"reflect"}


def test_padding_switch_keeps_the_weights_and_changes_the_output():
    torch.manual_seed(0)
    old = InpaintGenerator(GeneratorConfig(base_channels=8, blocks=1, padding="reflect")).eval()
    new = reshaped(old, padding="zeros").eval()
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values(),
                                                 strict=True))
    image, mask = torch.rand(1, 3, 64, 64) * 2 - 1, torch.zeros(1, 1, 64, 64)
    mask[:, :, 24:40, 24:40] = 1
    with torch.no_grad():
        a, b = old(image, mask), new(image, mask)
    assert not torch.equal(a, b)  # the padding is really different
    assert new.config.padding == "zeros" and GeneratorConfig().padding == "zeros"
