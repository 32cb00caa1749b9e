"""A queue drained in batches by one thread.

``submit(item)`` returns at once; the worker takes whatever is queued (up to ``max_batch``)
and hands it to ``process(items)`` in one call. Under load the conductor thus schedules many
requests with one read and one claim transaction; when idle a batch is a single request and
nothing waits for company. ``stop()`` finishes the batch in hand and returns; safe twice.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

LOG = logging.getLogger(__name__)
T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(self, process: Callable[[list[T]], None], *, max_batch: int = 32, name: str = "batcher"):
        self.process, self.max_batch = process, max_batch
        self._queue: queue.Queue[T] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: T) -> None:
        self._queue.put(item)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _take(self) -> list[T]:
        try:
            items = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(items) < self.max_batch:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _run(self) -> None:
        while not self._stop.is_set():
            items = self._take()
            if not items:
                continue
            try:
                self.process(items)
            except Exception:  # one bad batch must not stop the conductor
                LOG.exception("processing a batch of %d failed", len(items))
