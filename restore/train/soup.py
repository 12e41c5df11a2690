"""Average exported generators of one training lineage into one model (a "model soup").

Why: along one run, exports a few thousand steps apart trade sharpness against smoothness
(more texture: better ST-LPIPS, lower SSIM), and the scores of a single export swing from one
checkpoint to the next (docs/experiments.md, 'a model soup'). The average of the
weights of models fine-tuned from a common ancestor lies between them (measured there: SSIM,
ST-LPIPS and KID between its two parents' in every class, PSNR within 0.03 dB). BatchNorm
statistics are then measured anew on training crops, as every export is
(``loop.calibrated_copy``): averaged weights do not match averaged statistics.

    python -m restore.train.soup OUT.pt DATA A.pt B.pt [C.pt:2 ...]   # PATH:WEIGHT, default 1
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from restore.model.generator import GeneratorConfig, InpaintGenerator
from restore.model.weights import WEIGHTS_FORMAT, export_generator, read_weights
from restore.train.data import load_photos, photo_draw
from restore.train.loop import TrainConfig, calibrated_copy


def soup(models: list[tuple[Path, float]], photos_dir: Path | None = None) -> InpaintGenerator:
    """The weighted mean of ``models``' weights; BatchNorm re-measured on ``photos_dir`` if given."""
    if not models:
        raise ValueError("no models to average")
    total = sum(weight for _, weight in models)
    if total <= 0 or any(weight < 0 for _, weight in models):
        raise ValueError("weights must be non-negative and not all zero")
    config, mean, crop = None, {}, None
    for path, weight in models:
        cfg, state, meta = read_weights(path, WEIGHTS_FORMAT, "inpainting model", "generator_ema")
        crop = crop or meta.get("crop")  # statistics measured at the crop the lineage trained on
        if config is None:
            config = cfg
        elif cfg != config:
            raise ValueError(f"{path} has another shape than {models[0][0]}: only one lineage averages")
        for name, tensor in state.items():
            if not tensor.is_floating_point():
                mean[name] = tensor  # counters (num_batches_tracked): reset by calibration
            else:
                mean[name] = mean.get(name, 0) + tensor * (weight / total)
    model = InpaintGenerator(GeneratorConfig.from_dict(config))
    model.load_state_dict(mean)
    if photos_dir is not None:
        model = calibrated_copy(model, photo_draw(load_photos(photos_dir), int(crop or TrainConfig.crop)),
                                torch.device("cpu"), step=0)
    return model.eval()


def _parse(arg: str) -> tuple[Path, float]:
    """PATH or PATH:WEIGHT (a colon inside the path, as in C:\\, stays part of it)."""
    path, colon, weight = arg.rpartition(":")
    if not colon:
        return Path(arg), 1.0
    try:
        return Path(path), float(weight)
    except ValueError:
        return Path(arg), 1.0


def main(argv: list[str]) -> None:
    if len(argv) < 4:
        sys.exit("usage: python -m restore.train.soup OUT DATA MODEL[:WEIGHT] MODEL[:WEIGHT] ...")
    out, data, *sources = argv
    models = [_parse(s) for s in sources]
    export_generator(soup(models, Path(data)), out,
                     meta={"soup": [[str(p), w] for p, w in models], "data": data})
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
