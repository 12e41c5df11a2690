"""The push-pull first guess, the generator that corrects it, and switches between its options."""

from __future__ import annotations

import pytest
import torch

from restore.model.generator import FourierUnit, GeneratorConfig, InpaintGenerator, reshaped, with_prefill
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
    del config["prefill"], config["padding"], config["spectrum"]  # as files from before the options have it
    blob = {"format": WEIGHTS_FORMAT, "config": config, "state_dict": model.state_dict()}
    save_atomic(blob, tmp_path / "m.pt")
    loaded = load_generator(tmp_path / "m.pt")
    assert loaded.config.prefill is False and loaded.config.padding == "reflect"
    assert loaded.config.spectrum == "half"
    padded = [m for m in loaded.modules() if isinstance(m, torch.nn.Conv2d) and m.padding != (0, 0)]
    assert {m.padding_mode for m in padded} == {"reflect"}


@pytest.mark.parametrize(("option", "old_value", "new_value"),
                         [("padding", "reflect", "zeros"), ("spectrum", "half", "full")])
def test_switching_an_option_keeps_the_weights_and_changes_the_output(option, old_value, new_value):
    torch.manual_seed(0)
    old = InpaintGenerator(GeneratorConfig(base_channels=8, blocks=1, **{option: old_value})).eval()
    new = reshaped(old, **{option: new_value}).eval()
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values(),
                                                 strict=True))
    image, mask = torch.rand(1, 3, 64, 64) * 2 - 1, torch.zeros(1, 1, 64, 64)
    mask[:, :, 24:40, 24:40] = 1
    with torch.no_grad():
        a, b = old(image, mask), new(image, mask)
    assert not torch.allclose(a, b)  # the option really changes the function
    assert getattr(new.config, option) == new_value == getattr(GeneratorConfig(), option)


def test_full_spectrum_fourier_unit_treats_x_and_y_alike():
    """Transposing the input transposes the output: no axis is special (the half spectrum's
    column of vertical frequencies is, and drew horizontal streaks in wide holes)."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 12, 12)
    for spectrum, alike in (("full", True), ("half", False)):
        unit = FourierUnit(4, spectrum).eval()
        with torch.no_grad():
            unit.norm.running_mean.normal_()
            a, b = unit(x.transpose(-1, -2)), unit(x).transpose(-1, -2)
        assert torch.allclose(a, b, atol=1e-5) == alike, spectrum
    assert GeneratorConfig().spectrum == "full"

