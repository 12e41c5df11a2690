"""Give freed image buffers back to the system, so a long batch's memory stays flat."""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 1 << 20  # bytes: blocks this large are mapped on their own and unmapped when freed


def return_freed_memory() -> bool:
    """Fix glibc's mmap threshold at 1 MB (Linux with glibc only; a user's own
    ``MALLOC_MMAP_THRESHOLD_`` wins). Returns whether it was set. The batch calls it once it
    meets a large image (``batch.LARGE_IMAGE_BYTES``).

    Why: glibc raises the threshold after the first large block is freed (up to 32 MB), so later
    decoded images, masks and windows below that size come from per-thread heap arenas (readers,
    writers, torch) that fragment and rarely shrink. A folder of 24 MP scans grew from 1.24 to
    1.51 GB over 20 scans (median RSS per quarter of the run); with the threshold fixed once the
    first scan is decoded, 1.04 to 1.13 GB over 12, peak 1.60 GB instead of 1.85-1.94. Not for
    small photos: every block over
    1 MB is then mapped and zeroed afresh, and 512 px photos took 1.7x as long
    (docs/experiments.md, 'tiles by local width, a folder of scans').
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl, or another libc without mallopt)
        return False
