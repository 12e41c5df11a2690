"""The perceptual training loss (L1 on VGG16 features)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("stlpips_pytorch")

from restore.train.perceptual import PerceptualLoss  # noqa: E402


@pytest.fixture(scope="module")
def loss() -> PerceptualLoss:
    return PerceptualLoss()


def _texture() -> torch.Tensor:
    torch.manual_seed(0)
    noise = torch.rand(1, 3, 96, 96)
    return (F.avg_pool2d(noise, 3, 1, 1) * 2 - 1).clamp(-1, 1)  # fine texture, like foliage


def test_identical_images_are_at_distance_zero(loss):
    real = _texture()
    assert loss(real, real).item() == pytest.approx(0.0, abs=1e-6)


def test_a_blurred_fill_costs_more_than_a_same_texture_one(loss):
    """What the loss is for: L1 prefers the blur, the perceptual distance must not."""
    real = _texture()
    blurred = F.avg_pool2d(real, 9, 1, 4, count_include_pad=False)
    torch.manual_seed(1)
    other = (F.avg_pool2d(torch.rand(1, 3, 96, 96), 3, 1, 1) * 2 - 1).clamp(-1, 1)  # same kind of texture
    assert (blurred - real).abs().mean() < (other - real).abs().mean()
    assert loss(blurred, real) > loss(other, real)


def test_gradients_reach_the_fake_image_and_never_the_network(loss):
    real = _texture()
    fake = (real + 0.1 * torch.randn_like(real)).requires_grad_(True)
    loss(fake, real).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.trunk.training  # stays frozen whatever the training loop sets
