"""Model soup: the average of exported generators, BatchNorm re-measured."""

from __future__ import annotations

import pytest
import torch
from conftest import EXAMPLES

from restore.model.generator import GeneratorConfig, InpaintGenerator
from restore.model.weights import export_generator, load_generator
from restore.train.soup import main, soup


def _export(path, config, seed):
    torch.manual_seed(seed)
    model = InpaintGenerator(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    export_generator(model, path)
    return {k: v.float() for k, v in load_generator(path).state_dict().items()}


def test_soup_is_the_weighted_mean_of_the_weights_with_batchnorm_remeasured(tmp_path):
    tiny = GeneratorConfig(base_channels=8, blocks=1)
    a = _export(tmp_path / "a.pt", tiny, 0)
    b = _export(tmp_path / "b.pt", tiny, 1)
    main([str(tmp_path / "s.pt"), str(EXAMPLES / "originals"), f"{tmp_path / 'a.pt'}:3",
          str(tmp_path / "b.pt")])
    souped = load_generator(tmp_path / "s.pt").state_dict()
    weights = [k for k in a if k.endswith("weight")]
    for k in weights:  # fp16 on disk: compare at its precision
        assert torch.allclose(souped[k].float(), 0.75 * a[k] + 0.25 * b[k], atol=2e-3, rtol=2e-3), k
    means = [k for k in a if k.endswith("running_mean")]
    assert means and not any(torch.allclose(souped[k].float(), 0.75 * a[k] + 0.25 * b[k]) for k in means)
    plain = soup([(tmp_path / "a.pt", 1.0), (tmp_path / "b.pt", 1.0)])  # no photos: stats averaged too
    assert all(torch.allclose(plain.state_dict()[k], (a[k] + b[k]) / 2, atol=1e-6) for k in means)


def test_soup_refuses_models_of_another_shape(tmp_path):
    _export(tmp_path / "a.pt", GeneratorConfig(base_channels=8, blocks=1), 0)
    _export(tmp_path / "b.pt", GeneratorConfig(base_channels=8, blocks=2), 0)
    with pytest.raises(ValueError, match="another shape"):
        soup([(tmp_path / "a.pt", 1.0), (tmp_path / "b.pt", 1.0)])
