"""Loading and saving generator weights.

A weights file is a plain dict of tensors and primitives, so ``torch.load(...,
weights_only=True)`` can read it without executing code from the file. It carries the
generator's config so any size of model loads without flags.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from restore.model.generator import GeneratorConfig, InpaintGenerator

WEIGHTS_FORMAT = "restore-inpaint-v1"


def default_weights_path() -> Path:
    """The model that ships inside the package."""
    return Path(__file__).resolve().parents[1] / "weights" / "inpaint.pt"


def default_refiner_path() -> Path:
    """The refiner of ``--fill realistic``, where one ships (a generator with ``refine=True``)."""
    return default_weights_path().with_name("refine.pt")


class WeightsError(Exception):
    """The weights file is missing, unreadable or not a restore model."""


def read_weights(path: Path, fmt: str, what: str, checkpoint_key: str) -> tuple[dict, dict, dict]:
    """(config, fp32 state dict, meta) from an exported weights file of format ``fmt``, checked.

    A training checkpoint (it holds ``checkpoint_key``) is refused with a pointer to the export:
    for the generator, its EMA weights carry the live model's BatchNorm statistics.
    """
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise WeightsError(f"{what} file not found: {path}") from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not our file"
        raise WeightsError(f"cannot read {what} {path}: {exc}") from exc
    if isinstance(blob, dict) and checkpoint_key in blob:
        raise WeightsError(f"{path} is a training checkpoint; use the model `restore train --out` wrote")
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise WeightsError(f"{path} is not a restore {what}")
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    return blob["config"], state, dict(blob.get("meta") or {})


def load_generator(path: str | os.PathLike | None = None,
                   device: str | torch.device = "cpu") -> InpaintGenerator:
    """Build the generator described by a weights file and load it, in eval mode."""
    path = Path(path) if path is not None else default_weights_path()
    config, state, _ = read_weights(path, WEIGHTS_FORMAT, "inpainting model", "generator_ema")
    model = InpaintGenerator(GeneratorConfig.from_dict(config))
    model.load_state_dict(state)
    return model.eval().to(device)


def export_generator(model: InpaintGenerator, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write fp16 weights (half the size, same quality after upcasting) atomically."""
    state = {k: v.detach().half() if v.is_floating_point() else v.detach()
             for k, v in model.state_dict().items()}
    blob = {"format": WEIGHTS_FORMAT, "config": model.config.to_dict(), "state_dict": state,
            "meta": meta or {}}
    save_atomic(blob, path)


def save_atomic(obj: object, path: str | os.PathLike) -> None:
    """torch.save to a temp file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; weights are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
