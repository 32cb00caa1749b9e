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
        self._depth = 0
        self._fd = -1
        self._fd_pid = 0

    def share_with_processes(self, database_path: Path) -> None:
        """From now on, also exclude the writers of other processes on ``database_path``."""
        with self._local:
            self._path = database_path.with_name(database_path.name + ".writelock")

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
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            except BaseException:
                self._depth -= 1
                self._local.release()
                raise
        return True

    def release(self) -> None:
        if self._path is not None:
            self._depth -= 1
            if self._depth == 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._local.release()

    def _file(self) -> int:
        pid = os.getpid()
        if self._fd < 0 or self._fd_pid != pid:
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = pid
        return self._fd

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
