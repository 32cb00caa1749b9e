"""Work handed to one worker thread, which takes whatever has queued (at most ``max_batch``) and
processes it together. One core, ``_Drain`` (the queue and its thread), and two ways to submit,
named like the messaging ones:

- ``CallBatcher`` (POST /servers' create pipeline, ``compute_api.servers``): a coroutine
  ``await``s ``batcher.submit(item)`` on its event loop. ``process(items)`` returns one outcome
  per item (a result, or the exception that item raised); all the outcomes of a batch go back to
  an event loop in one call (``loop.call_soon_threadsafe`` once per batch and loop). The worker
  starts with the first ``submit`` (in the process that submits: never before a fork) and ends
  with ``stop``, after the items queued before it; a later ``submit`` starts a new one.
- ``CastBatcher`` (the conductor's first builds, ``conductor.manager``): ``submit(item)`` from any
  thread returns at once; ``process(items)`` returns nothing. ``start`` starts the worker;
  ``stop`` finishes the batch in hand and returns (what is still queued is not processed); safe
  twice; ``start`` after ``stop`` raises RuntimeError (as starting a thread twice did).

Under load a batch shares what it can (one read transaction for the creates' checks, one store;
one read and one claim transaction for the conductor's scheduling); when idle a batch is a single
item and nothing waits for company.

Why one thread for a whole batch instead of a thread per request: with the create pipeline on four
threads of a pool, 16 creates in flight meant five threads (the four and the event loop) passing
the GIL back and forth several times per create; on a 2-core machine every pass waits for a core
the engine process or the client holds. One worker has the event loop as its only rival, wakes it
once per batch, and the batch shares what it can. bench/README.md, round 7, has the figures.

``process`` runs outside the submitters' ``contextvars`` context (novalite's code reads none).
This module sits outside ``api`` and ``conductor`` so that both may import it.
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
E = TypeVar("E")
_STOP = object()


class _Drain(Generic[E]):
    """A queue and at most one worker thread (per process) that takes what is queued, at most
    ``max_batch`` entries at a time, and hands them to ``handle(entries)``.

    The worker ends when it meets a stop mark (``stop_after_queue``) with nothing queued behind
    it, or after the batch in hand once ``stop_after_batch`` was called. ``handle`` must not
    raise: each submit style catches its ``process``' exceptions itself. Should something that
    is no ``Exception`` escape it (``SystemExit``, ``KeyboardInterrupt``), that worker ends and,
    unless stopped for good, another takes its place (what is queued is not left waiting)."""

    def __init__(self, handle: Callable[[list[E]], None], *, name: str, max_batch: int):
        self.handle, self.name, self.max_batch = handle, name, max_batch
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._halt = False  # set by stop_after_batch: end after the batch in hand

    def ensure_started(self) -> None:
        """Start a worker unless one runs in this process (and no stop_after_batch came)."""
        with self.lock:
            if (self._thread is None or self._pid != os.getpid()) and not self._halt:
                self._start_locked()

    def _start_locked(self) -> None:
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    @property
    def halted(self) -> bool:
        """Whether ``stop_after_batch`` was called (no worker starts any more)."""
        with self.lock:
            return self._halt

    def _running_here(self) -> threading.Thread | None:
        with self.lock:
            return self._thread if self._pid == os.getpid() else None

    def stop_after_queue(self, timeout: float) -> None:
        """Let the worker finish what is queued, then end it (waits up to ``timeout`` s)."""
        thread = self._running_here()
        if thread is None:
            return
        self.queue.put(_STOP)
        thread.join(timeout)

    def stop_after_batch(self, timeout: float) -> None:
        """Let the worker finish the batch in hand, then end it (waits up to ``timeout`` s); for
        good: a later ``ensure_started`` starts none."""
        with self.lock:
            self._halt = True
        thread = self._running_here()
        if thread is None:
            return
        self.queue.put(_STOP)  # wakes an idle worker
        if thread.is_alive():
            thread.join(timeout)

    def _take(self) -> list[E] | None:
        """The next batch (waits for its first entry); None when the first is a stop mark."""
        first = self.queue.get()
        if first is _STOP:
            return None
        entries = [first]
        while len(entries) < self.max_batch:
            try:
                entry = self.queue.get_nowait()
            except queue.Empty:
                break
            if entry is _STOP:
                self.queue.put(_STOP)  # after this batch
                break
            entries.append(entry)
        return entries

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException:  # handle let through what is no Exception: replace this worker
            LOG.exception("%s: the worker ended abnormally", self.name)
            with self.lock:
                if self._thread is threading.current_thread():
                    self._thread = None
                    if not self._halt:
                        self._start_locked()

    def _serve(self) -> None:
        while True:
            entries = self._take()
            if entries is not None:
                self.handle(entries)
            if entries is None or self._halt:
                with self.lock:
                    if self._halt or self.queue.empty():  # else items came after the stop: serve them too
                        self._thread = None
                        return


class CallBatcher(Generic[T, R]):
    """Submitters await their item's outcome on their event loop (see the module docstring)."""

    def __init__(
        self, process: Callable[[list[T]], Sequence[R | BaseException]], *, name: str, max_batch: int = 64
    ):
        self.process, self.name, self.max_batch = process, name, max_batch
        self._drain: _Drain[tuple[T, asyncio.Future[R], asyncio.AbstractEventLoop]] = _Drain(
            self._handle, name=name, max_batch=max_batch
        )

    async def submit(self, item: T) -> R:
        """Queue ``item``; its outcome once the worker has processed it (an exception is raised)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._drain.queue.put((item, future, loop))
        self._drain.ensure_started()
        return await future

    def waiting(self) -> int:
        """How many items are queued and not yet taken by the worker."""
        return self._drain.queue.qsize()

    def stop(self, timeout: float = 10.0) -> None:
        """Let the worker finish what is queued, then end it (waits up to ``timeout`` s)."""
        self._drain.stop_after_queue(timeout)

    def _handle(self, entries: list[Any]) -> None:
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


class CastBatcher(Generic[T]):
    """``submit`` returns at once; the worker runs ``process(items)`` (see the module docstring)."""

    def __init__(self, process: Callable[[list[T]], None], *, max_batch: int = 32, name: str = "batcher"):
        self.process, self.name, self.max_batch = process, name, max_batch
        self._drain: _Drain[T] = _Drain(self._handle, name=name, max_batch=max_batch)

    def start(self) -> None:
        """Start the worker; once stopped, a batcher cannot start again (RuntimeError)."""
        if self._drain.halted:
            raise RuntimeError(f"{self.name}: a CastBatcher cannot be started again once stopped")
        self._drain.ensure_started()

    def submit(self, item: T) -> None:
        self._drain.queue.put(item)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand, then end the worker (waits up to ``timeout`` s); safe twice."""
        self._drain.stop_after_batch(timeout)

    def _handle(self, items: list[T]) -> None:
        try:
            self.process(items)
        except Exception:  # one bad batch must not stop the conductor
            LOG.exception("processing a batch of %d failed", len(items))
