"""Rich progress bar for training; falls back to one log line per update off a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


class TrainProgress:
    def __init__(self, total_steps: int, quiet: bool = False) -> None:
        self.console = Console(stderr=True, quiet=quiet)
        self.progress = Progress(
            TextColumn("step {task.completed}/{task.total}"), BarColumn(),
            TextColumn("{task.fields[losses]}"), TimeRemainingColumn(), console=self.console,
        )
        self.task = self.progress.add_task("train", total=total_steps, losses="")

    def __enter__(self) -> TrainProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, metrics: dict) -> None:
        text = " ".join(f"{k}={v}" for k, v in metrics.items() if k != "step")
        self.progress.update(self.task, completed=metrics["step"], losses=text)
        if not self.console.is_terminal:
            self.console.log(f"step {metrics['step']} {text}")
