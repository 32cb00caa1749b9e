"""The SQLite writers' lock: one write transaction at a time, in this process and, once
``share_with_processes`` is called, in every process on the same database file.

SQLite has one write lock per database. When two writers meet, the loser waits in SQLite's busy
handler, which sleeps and retries (up to 100 ms a retry): under load that is where latency goes.
Writers therefore queue here first, on a lock that wakes the next one the moment it is free:

* in one process, a ``threading.RLock`` (re-entrant: a writer may open a nested unit of work);
* across processes (``novalite serve`` with the engine in its own process), also an exclusive
  ``flock`` on ``<database>.writelock``, taken when a thread of this process takes the outermost
  hold and released with it. The kernel wakes the next waiter; nothing polls.

Each process opens the lock file itself (a descriptor inherited through ``fork`` would share one
lock with the parent, which is no lock at all).

Requests come first. ``flock`` has no queue order: when the lock is released, whichever waiter
runs first takes it, and that is usually the engine, whose next writer is already running while
the woken API thread still waits for the CPU. So a writer that serves requests
(``priority=True``: the API process) also holds ``<database>.writegate`` exclusively while it
waits for and holds the lock, and the other writers pass through that gate (a shared ``flock``,
let go at once) before they queue: while a request's write waits, no new background write starts,
so it waits for at most the one in progress.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path


class WriteLock:
    def __init__(self) -> None:
        self._local = threading.RLock()
        self._path: Path | None = None
        self._gate_path: Path | None = None
        self.priority = False
        self._depth = 0
        self._fds: tuple[int, int] = (-1, -1)
        self._fd_pid = 0

    def share_with_processes(self, database_path: Path, *, priority: bool = False) -> None:
        """From now on, also exclude the writers of other processes on ``database_path``;
        ``priority``: this process's writers go ahead of the others' (see above)."""
        with self._local:
            self._path = database_path.with_name(database_path.name + ".writelock")
            self._gate_path = database_path.with_name(database_path.name + ".writegate")
            self.priority = priority
            self._fds, self._fd_pid = (-1, -1), 0

    @property
    def shared(self) -> bool:
        return self._path is not None

    def acquire(self, timeout: float = -1) -> bool:
        if not self._local.acquire(timeout=timeout):
            return False
        if self._path is None:
            return True
        self._depth += 1
        if self._depth == 1:
            try:
                self._lock_files()
            except BaseException:
                self._depth -= 1
                self._local.release()
                raise
        return True

    def _lock_files(self) -> None:
        lock, gate = self._files()
        if self.priority:
            fcntl.flock(gate, fcntl.LOCK_EX)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
            except BaseException:
                fcntl.flock(gate, fcntl.LOCK_UN)
                raise
            return
        fcntl.flock(gate, fcntl.LOCK_SH)  # waits while a priority writer waits or writes
        fcntl.flock(gate, fcntl.LOCK_UN)
        fcntl.flock(lock, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._path is not None:
            self._depth -= 1
            if self._depth == 0:
                lock, gate = self._fds
                fcntl.flock(lock, fcntl.LOCK_UN)
                if self.priority:
                    fcntl.flock(gate, fcntl.LOCK_UN)
        self._local.release()

    def _files(self) -> tuple[int, int]:
        pid = os.getpid()
        if self._fds[0] < 0 or self._fd_pid != pid:
            assert self._path is not None and self._gate_path is not None
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            self._fds = (os.open(self._path, flags, 0o600), os.open(self._gate_path, flags, 0o600))
            self._fd_pid = pid
        return self._fds

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
