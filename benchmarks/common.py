"""What every benchmark script needs: timing, memory and the machine's name.

Scripts run as ``python benchmarks/bench_X.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from collections.abc import Callable


def timed(repeats: int, run: Callable[[], object], warmup: bool = False) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``run`` (after one untimed call with ``warmup``)."""
    if warmup:
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def rss_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MB; ``ru_maxrss`` where /proc is missing (not Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
