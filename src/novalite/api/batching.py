"""Work that requests hand to one worker thread, which takes whatever has queued and processes it
together (POST /servers' create pipeline, see ``compute_api.servers``).

A coroutine ``await``s ``batcher.submit(item)``: the item joins a queue and the coroutine waits
on the event loop. The worker thread takes everything queued at that moment (at most
``max_batch``), calls ``process(items)`` once, which returns one outcome per item (a result, or
the exception that item raised), and hands all the outcomes back to the event loop in one call.

Why one thread for a whole batch instead of a thread per request: with the create pipeline on four
threads of a pool, 16 creates in flight meant five threads (the four and the event loop) passing
the GIL back and forth several times per create; on a 2-core machine every pass waits for a core
the engine process or the client holds. One worker has the event loop as its only rival, wakes it
once per batch, and the batch shares what it can (one read transaction for the checks, one
store). bench/README.md, round 7, has the figures.

The worker starts with the first ``submit`` (in the process that submits: never before a fork)
and ends with ``stop``, after the items queued before it; a later ``submit`` starts a new one.
``process`` runs outside the callers' ``contextvars`` context (novalite's code reads none).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

LOG = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
_STOP = object()


class LoopBatcher(Generic[T, R]):
    def __init__(
        self, process: Callable[[list[T]], Sequence[R | BaseException]], *, name: str, max_batch: int = 64
    ):
        self.process, self.name, self.max_batch = process, name, max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    async def submit(self, item: T) -> R:
        """Queue ``item``; its outcome once the worker has processed it (an exception is raised)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.put((item, future, loop))
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return await future

    def stop(self, timeout: float = 10.0) -> None:
        """Let the worker finish what is queued, then end it (waits up to ``timeout`` s)."""
        with self._lock:
            thread = self._thread if self._pid == os.getpid() else None
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                with self._lock:
                    if self._queue.empty():  # else items came after the stop: serve them too
                        self._thread = None
                        return
                continue
            entries = [first]
            while len(entries) < self.max_batch:
                try:
                    entry = self._queue.get_nowait()
                except queue.Empty:
                    break
                if entry is _STOP:
                    self._queue.put(_STOP)  # after this batch
                    break
                entries.append(entry)
            self._settle(entries, self._outcomes([item for item, _, _ in entries]))

    def _outcomes(self, items: list[T]) -> Sequence[R | BaseException]:
        try:
            outcomes = self.process(items)
            if len(outcomes) != len(items):
                raise RuntimeError(f"{self.name}: {len(outcomes)} outcomes for {len(items)} items")
            return outcomes
        except Exception as exc:  # a bug in process: every item of the batch gets it, the worker lives on
            LOG.exception("%s: processing a batch of %d failed", self.name, len(items))
            return [exc] * len(items)

    @staticmethod
    def _settle(entries: list[Any], outcomes: Sequence[Any]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for (_item, future, loop), outcome in zip(entries, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, pairs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, pairs)
            except RuntimeError:  # that event loop is closed: nobody waits for these any more
                pass


def _resolve(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, outcome in pairs:
        if future.done():  # cancelled: the client went away (the work itself is done)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
