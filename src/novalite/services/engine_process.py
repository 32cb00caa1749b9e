"""``novalite serve`` on two cores: the HTTP API in this process, the engine in a forked child.

The engine is everything behind ``POST /servers``' 202: the conductor and its scheduler, the
compute agents and their builds, the heartbeats. In one process all of it shares one core's worth
of Python (the GIL) with the API, so every build slows the requests in flight. Nova keeps its API
apart from the conductor and the computes for the same reason.

How the two halves meet:

* the database: each process opens its own connections after the fork; on SQLite both queue their
  write transactions on ``<database>.writelock`` (``db.write_lock``);
* messages: with ``memory://`` a socket pair made before the fork (``messaging.peer``): the API's
  casts and calls reach the engine's consumers, replies come back. With a broker (``amqp://``)
  both halves simply use it;
* lifetime: the API process leads. On SIGTERM/SIGINT it stops serving, then stops the engine
  (SIGTERM, up to ``STOP_TIMEOUT`` s, then SIGKILL). If the API process dies, the engine sees its
  end of a pipe close and stops. If the engine dies, the API process logs it and shuts down with a
  non-zero exit status, so a supervisor restarts the pair; builds still waiting for a host are
  handed to the next engine on start (``compute.recovery``).

``Settings.engine_process``: ``auto`` (the default) forks when the process may use two or more
CPUs and the database is a file or a server; ``on`` / ``off`` force it.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

LOG = logging.getLogger(__name__)
STOP_TIMEOUT = 15.0
THREAD_WAIT = 5.0  # how long fork waits for start-up helper threads to finish


def wanted(runtime: Any) -> bool:
    """Whether ``serve`` should run the engine in its own process (``Settings.engine_process``)."""
    choice = str(runtime.settings.engine_process).lower()
    if choice in ("off", "no", "false", "0"):
        return False
    shareable = not runtime.db.is_sqlite or runtime.db.sqlite_path is not None
    if choice in ("on", "yes", "true", "1"):
        if not shareable:
            raise ValueError("engine_process=on needs a database file or server, not an in-memory SQLite")
        return True
    if choice != "auto":
        raise ValueError(f"engine_process must be auto, on or off, not {choice!r}")
    return shareable and _usable_cpus() >= 2


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class EngineProcess:
    """The parent's handle on the forked engine."""

    def __init__(self, pid: int, parent_alive_w: int):
        self.pid = pid
        self._parent_alive_w = parent_alive_w
        self._stopping = threading.Event()
        self._exited = threading.Event()
        self.exit_status: int | None = None
        self.died_unexpectedly = False
        self._reaper = threading.Thread(target=self._reap, name="engine-reaper", daemon=True)

    def watch(self) -> None:
        """Start noticing the engine's exit (call once the API side runs)."""
        self._reaper.start()

    def _reap(self) -> None:
        _pid, status = os.waitpid(self.pid, 0)
        self.exit_status = os.waitstatus_to_exitcode(status)
        self._exited.set()
        if not self._stopping.is_set():
            self.died_unexpectedly = True
            LOG.error(
                "the engine process (pid %d) exited with status %s; stopping the API too",
                self.pid,
                self.exit_status,
            )
            os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> None:
        """Stop the engine and wait for it (then kill it after ``STOP_TIMEOUT`` s)."""
        self._stopping.set()
        if not self._reaper.is_alive() and not self._exited.is_set():
            self._reaper.start()
        if not self._exited.is_set():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if not self._exited.wait(STOP_TIMEOUT):
                LOG.error(
                    "the engine process (pid %d) did not stop within %.0f s; killing it",
                    self.pid,
                    STOP_TIMEOUT,
                )
                os.kill(self.pid, signal.SIGKILL)
                self._exited.wait(5)
        try:
            os.close(self._parent_alive_w)
        except OSError:
            pass


def start(runtime: Any) -> EngineProcess | None:
    """``fork`` when ``Settings.engine_process`` asks for it; None: serve in one process.

    A fork is only safe while this process runs no other thread. Should one still run at this
    point, ``auto`` falls back to one process with a warning and ``on`` fails."""
    if not wanted(runtime):
        return None
    try:
        return fork(runtime)
    except ThreadsRunning as exc:
        if str(runtime.settings.engine_process).lower() != "auto":
            raise
        LOG.warning("%s; serving in one process", exc)
        return None


class ThreadsRunning(RuntimeError):
    pass


def fork(runtime: Any) -> EngineProcess:
    """Fork the engine. Returns in the parent, which becomes the API half (``runtime.role``
    "api"); the child runs the engine until told to stop and never returns.

    Call with no other thread running (else ``ThreadsRunning``) and before any event loop exists."""
    for thread in threading.enumerate():  # start-up helpers (password hashing) that are finishing
        if thread is not threading.current_thread():
            thread.join(THREAD_WAIT)
    others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    if others:
        raise ThreadsRunning(f"cannot fork the engine while other threads run: {others}")
    runtime.db.share_with_processes()
    runtime.db.dispose()  # no connection may cross the fork: each process opens its own
    gc.collect()
    gc.freeze()  # start-up objects: neither collector walks (and so copies) their pages
    api_end, engine_end = socket.socketpair()
    alive_r, alive_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        api_end.close()
        os.close(alive_w)
        _engine_main(runtime, engine_end, alive_r)  # never returns
    engine_end.close()
    os.close(alive_r)
    runtime.db.share_with_processes(priority=True)  # a request's write goes before the engine's next
    runtime.role, runtime.peer = "api", api_end
    return EngineProcess(pid, alive_w)


def _engine_main(runtime: Any, link: socket.socket, parent_alive_r: int) -> None:
    code = 1
    try:
        code = _run_engine(runtime, link, parent_alive_r)
    except BaseException:
        LOG.exception("the engine process failed")
    finally:
        logging.shutdown()
        os._exit(code)


def _run_engine(runtime: Any, link: socket.socket, parent_alive_r: int) -> int:
    from novalite.runtime import settle_heap
    from novalite.services import startup

    stop_requested = threading.Event()
    # the terminal's Ctrl-C reaches both processes: the API process leads the shutdown
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())

    def parent_gone() -> None:
        try:
            os.read(parent_alive_r, 1)  # returns b"" once every write end is closed
        except OSError:
            pass
        stop_requested.set()

    threading.Thread(target=parent_gone, name="engine-parent-watch", daemon=True).start()
    runtime.role, runtime.peer = "engine", link
    stop = startup.start(runtime)
    settle_heap()
    LOG.info("engine process %d running", os.getpid())
    while not stop_requested.wait(1.0):
        pass
    stop()
    runtime.db.dispose()
    return 0
