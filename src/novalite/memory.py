"""Giving memory back once a burst of work is over.

A boot-and-delete churn of 10,000 servers left ``novalite serve`` at its peak (bench/README.md,
rounds 13 and 14b) although no Python object outlived its server. What stayed was native memory:

* every pooled SQLite connection keeps its own page cache (``PRAGMA cache_size``, up to 64 MB), its
  parsed schema and its prepared statements. The page cache fills with the pages a connection
  touched, so it grows with the database file, and the file grows with every server ever created
  (deleted rows stay, as in Nova, until they are archived);
* glibc's malloc keeps what Python and SQLite freed at the top of its heap and in partly used
  pages rather than handing it back.

``IdleRelease`` watches a counter of units of work (``Database.units``). Once at least
``min_units`` were counted since the last release and at most ``quiet_units`` in the last ``idle``
seconds, it runs its ``release`` callable once; the next release needs a new burst. A few units
are allowed in a quiet spell: periodic tasks that tick every second (the conductor's, with
``shelved_offload_time`` or ``resize_confirm_window`` set) must not keep a process from ever
releasing. ``start(db)`` wires it to a
database: the idle pooled connections are closed (``Database.release_idle_connections``; the next
unit of work opens a fresh one, about a millisecond), the cyclic collector runs, and
``malloc_trim(0)`` returns the free heap to the OS. A heartbeat or a single request never counts
as a burst, so a quiet service is not trimmed over and over.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import functools
import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)

IDLE_SECONDS = 2.0  # at most QUIET_UNITS units of work in this long: the burst is over
QUIET_UNITS = 4
MIN_UNITS = 100  # units of work since the last release that make a burst worth releasing after
POLL_SECONDS = 0.5


@functools.cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def trim_heap() -> bool:
    """glibc's ``malloc_trim(0)``: hand the free memory at the top of the heap and the free pages
    inside it back to the OS. False where there is no such call."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class IdleRelease:
    """Runs ``release`` once after each burst of work (see the module's docstring)."""

    def __init__(
        self,
        units: Callable[[], int],
        release: Callable[[], None],
        *,
        idle: float = IDLE_SECONDS,
        min_units: int = MIN_UNITS,
        quiet_units: int = QUIET_UNITS,
        poll: float = POLL_SECONDS,
        name: str = "idle-release",
    ):
        self.units, self.release = units, release
        self.idle, self.min_units, self.quiet_units = idle, min_units, quiet_units
        self.poll, self.name = poll, name
        self.releases = 0  # how many times ``release`` ran
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Callable[[], None]:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self.stop

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        released_at = self.units()
        # (time, counter) of the polls in the last ``idle`` seconds, oldest first
        seen: collections.deque[tuple[float, int]] = collections.deque([(time.monotonic(), released_at)])
        while not self._stop.wait(self.poll):
            at, now = time.monotonic(), self.units()
            seen.append((at, now))
            while len(seen) > 1 and at - seen[1][0] >= self.idle:
                seen.popleft()  # seen[0] stays the newest poll at least ``idle`` seconds old
            if at - seen[0][0] < self.idle or now - seen[0][1] > self.quiet_units:
                continue  # not quiet (or not for long enough yet)
            if now - released_at >= self.min_units:
                released_at = now
                try:
                    self.release()
                except Exception:  # never let the watcher die: the service goes on without it
                    LOG.exception("releasing memory after a burst of work failed")
                self.releases += 1


def start(db: Any, **kwargs: Any) -> Callable[[], None]:
    """Release ``db``'s idle connections and the free heap after each burst of work in this
    process; returns the stop function."""

    def release() -> None:
        db.release_idle_connections()
        gc.collect()
        trim_heap()

    return IdleRelease(lambda: db.units, release, **kwargs).start()
