"""Run an iterator one step ahead on its own thread, so its work overlaps the consumer's.

The video job's detector (torch, which releases the GIL) looks at the next batch of frames while
the current one is propagated (numpy and OpenCV, mostly one core): on 2 cores the job kept only
about 1.4 of them busy before (docs/experiments.md, "video: the detector one batch ahead").
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


class Ahead(Generic[T]):
    """Iterate over ``source`` on a worker thread, at most ``depth`` items ahead of the consumer.

    Items and the source's exception (re-raised in the consumer) arrive in order. ``close()``
    (also on leaving a ``with`` block) stops the worker after its current item.
    """

    def __init__(self, source: Iterator[T], depth: int = 1, name: str = "restore-ahead") -> None:
        self._source = source
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            for item in self._source:
                if not self._put((item, None)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put((_END, exc))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:  # on this thread, the one that ran it (a reader then stops ffmpeg)
                close()

    def _put(self, entry: tuple[object, BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        item, error = self._queue.get()
        if item is _END:
            self._queue.put((_END, None))  # later calls end too (and do not raise twice)
            if error is not None:
                raise error
            raise StopIteration
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def __enter__(self) -> Ahead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
