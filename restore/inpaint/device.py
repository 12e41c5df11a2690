"""Choosing where the model runs."""

from __future__ import annotations

import torch


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` takes CUDA, then Apple MPS, then the CPU; an explicit name must be available."""
    name = name.lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA GPU is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps asked for, but Apple MPS is not available")
    if name not in {"cpu", "cuda", "mps"} and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda or mps")
    return torch.device(name)
