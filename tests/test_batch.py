"""The batch skeleton's memory rules: how far decoding runs ahead, how many images go to the model
at once. Large scans must not pile up in memory while the model works on one."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import restore.batch as batch
from restore.io.discover import Job
from restore.io.images import Picture


def _jobs(count: int) -> list[Job]:
    return [Job(Path(f"in/{i}.png"), Path(f"{i}.png"), Path(f"out/{i}.png"), None) for i in range(count)]


def _loader(side: int, loaded: list[int]):
    def load(job: Job) -> batch._Loaded:
        loaded.append(int(job.source.stem))
        return batch._Loaded(job, Picture(np.zeros((side, side, 3), np.uint8), "PNG"), None, 0.0)
    return load


@pytest.mark.parametrize(("side", "ahead"), [(10, 8), (100, 3)])
def test_decoding_runs_ahead_by_count_for_small_images_and_by_bytes_for_large_ones(monkeypatch, side, ahead):
    monkeypatch.setattr(batch, "PREFETCH_BYTES", 3 * 100 * 100 * 3)  # three 100x100 RGB images
    loaded: list[int] = []
    consumed = 0
    most_ahead = 0
    with ThreadPoolExecutor(2) as pool:
        for _, future in batch._prefetch(_jobs(20), _loader(side, loaded), 8, pool):
            future.result()
            time.sleep(0.01)  # a slow model: every decode that may run ahead has
            most_ahead = max(most_ahead, len(loaded) - consumed)  # this one included
            consumed += 1
    assert consumed == 20 and sorted(loaded) == list(range(20))
    assert most_ahead == ahead


def test_large_images_go_to_the_model_one_at_a_time_small_ones_in_batches(monkeypatch):
    monkeypatch.setattr(batch, "CHUNK_PIXELS", 100 * 100)
    calls: list[int] = []

    def compute(chunk):
        calls.append(len(chunk))
        return [None] * len(chunk)

    def write(item, pixels, seconds):
        return batch.FileResult(str(item.job.source), str(item.job.output), "restored")

    for side, expected in [(100, [1] * 6), (40, [4, 2])]:
        calls.clear()
        batch._run(_jobs(6), True, lambda r: None, 4, 8, _loader(side, []), compute, write, ("m", "cpu"),
                   None, batch.Summary())
        assert calls == expected


def test_freed_buffers_go_back_at_once_only_when_images_are_large(monkeypatch):
    """A fixed mmap threshold keeps a folder of scans flat but slows small photos down."""
    calls: list[int] = []
    monkeypatch.setattr(batch, "return_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(batch, "LARGE_IMAGE_BYTES", 100 * 100 * 3)
    for side, expected in [(40, False), (100, True)]:
        calls.clear()
        with ThreadPoolExecutor(2) as pool:
            for _, future in batch._prefetch(_jobs(4), _loader(side, []), 8, pool):
                future.result()
        assert bool(calls) is expected
