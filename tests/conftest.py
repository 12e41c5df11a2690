"""Shared fixtures: a tiny model so tests don't depend on (or wait for) the shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from restore.detect.model import DamageNet, DetectorConfig
from restore.detect.weights import export_detector
from restore.model.generator import GeneratorConfig, InpaintGenerator
from restore.model.weights import export_generator

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised, very small generator saved in the shipped file format."""
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    export_generator(InpaintGenerator(GeneratorConfig(base_channels=8, blocks=1)), path)
    return path


@pytest.fixture(scope="session")
def tiny_detector(tmp_path_factory) -> Path:
    """A randomly initialised, very small damage detector saved in the shipped file format."""
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("detector") / "tiny-detect.pt"
    export_detector(DamageNet(DetectorConfig(widths=(8, 8, 8))), path)
    return path


@pytest.fixture
def photo() -> np.ndarray:
    """A real photo (from examples/, which every clone has), RGB uint8."""
    import cv2

    bgr = cv2.imread(str(EXAMPLES / "originals" / "lanterns.jpg"))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture()
def spy_windows():
    """``spy_windows(inpainter)`` returns a list that then logs the (height, width) of every
    window the inpainter's network is given (the generator itself, after any mirroring)."""

    def attach(inpainter) -> list[tuple[int, int]]:
        calls: list[tuple[int, int]] = []
        original = inpainter._run

        def spy(crops, holes, *rest):
            calls.extend(c.shape[:2] for c in crops)
            return original(crops, holes, *rest)

        inpainter._run = spy
        return calls

    return attach
