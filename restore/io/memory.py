"""Give freed image buffers back to the system, so a long batch's memory stays flat."""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 1 << 20  # bytes: blocks this large are mapped on their own and unmapped when freed


def return_freed_memory() -> bool:
    """Fix glibc's mmap threshold at 1 MB (Linux with glibc only; a user's own
    ``MALLOC_MMAP_THRESHOLD_`` wins). Returns whether it was set.

    Why: glibc raises the threshold after the first large block is freed (up to 32 MB), so later
    decoded images, masks and windows below that size come from per-thread heap arenas (readers,
    writers, torch) that fragment and rarely shrink. A folder of 24 MP scans grew from 1.24 to
    1.51 GB over 20 scans (median RSS per quarter of the run); with the threshold fixed, 0.97 to
    1.05 GB over 12, peak 1.55 GB instead of 1.85-1.94, at the same speed
    (docs/experiments.md, 'scan-scale windows by local width').
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl, or another libc without mallopt)
        return False
