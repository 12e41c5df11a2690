"""Progress bar for batch commands: files, images/s and ETA on stderr; errors as single lines."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class BatchProgress:
    """Shows progress unless ``quiet``; failed files are always printed, one line each."""

    def __init__(self, quiet: bool = False, unit: str = "images", label: str = "restoring") -> None:
        self.console = Console(stderr=True, quiet=quiet, highlight=False)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)
        self.progress = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(), console=self.console,
        )
        self.task = self.progress.add_task(label, total=None, rate="")
        self.unit = unit
        self.started = time.perf_counter()
        self.processed = 0

    def __enter__(self) -> BatchProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def plan(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def result(self, result) -> None:
        if result.status == "failed":
            line = f"error: {escape(result.path)}: {escape(result.error or 'failed')}"
            # Printed through the live display when there is one, so the bar stays intact.
            (self.errors if self.console.quiet else self.progress.console).print(line, soft_wrap=True)
        self.progress.advance(self.task)
        if result.status == "ok":  # skipped files would inflate the rate
            self.processed += 1
            speed = self.processed / (time.perf_counter() - self.started)
            self.progress.update(self.task, rate=f"{speed:.2f} {self.unit}/s")
