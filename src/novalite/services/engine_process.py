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
  end of a pipe close and stops. If the engine dies, the API process keeps serving and starts a
  new engine (``EngineProcess``): a fresh interpreter (``python -m novalite.services.engine_child``;
  forking a process whose threads run is unsafe) that builds its ``Runtime`` from the same
  Settings, with a new socket pair that the API side's transport attaches in place of the dead
  link. Restarts back off (``restart_delays``: 0.5 s, doubling up to 30 s, back to 0.5 s once an
  engine ran ``STABLE_AFTER`` s), so an engine that dies at start does not spin. In the gap a
  create is still accepted and a delete still counts (their instances wait in the database for
  the new engine's recovery, ``compute.recovery``); anything else that needs the engine gets 503
  with Retry-After (``messaging.transport.PeerUnavailable``). The new engine holds the data
  directory's lock with the API process (``instance_lock.held_descriptors``), as the forked one
  does.

``Settings.engine_process``: ``auto`` (the default) forks when the process may use two or more
CPUs and the database is a file or a server; ``on`` / ``off`` force it.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger(__name__)
STOP_TIMEOUT = 15.0
THREAD_WAIT = 5.0  # how long fork waits for start-up helper threads to finish
FIRST_DELAY, MAX_DELAY = 0.5, 30.0  # engine restarts: the first delay, doubled up to the cap
STABLE_AFTER = 30.0  # an engine that ran this long counts as healthy: the next restart waits FIRST_DELAY


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


def restart_delays() -> Callable[[], float]:
    """The waits before successive restarts: 0.5, 1, 2, 4 ... 30, 30 ... seconds."""
    state = {"next": FIRST_DELAY}

    def next_delay() -> float:
        delay = state["next"]
        state["next"] = min(MAX_DELAY, delay * 2)
        return delay

    return next_delay


@dataclass
class _Child:
    """One engine process: its pid, how to wait for its exit status, the write end of its
    parent-alive pipe (closed once it is gone)."""

    pid: int
    wait: Callable[[], int]
    alive_w: int
    started_at: float = dataclasses.field(default_factory=time.monotonic)
    reaped: bool = False  # its pid may belong to another process now: never signal it

    def close_pipe(self) -> None:
        """Close the parent-alive pipe's write end, once (a descriptor number closed twice could
        be another file's by then)."""
        fd, self.alive_w = self.alive_w, -1
        if fd >= 0:
            _close(fd)


def _forked(pid: int, alive_w: int) -> _Child:
    def wait() -> int:
        _pid, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    return _Child(pid, wait, alive_w)


class EngineProcess:
    """The API process's handle on the engine: notices its death and starts the next one."""

    def __init__(self, runtime: Any, child: _Child):
        self.runtime = runtime
        self.child = child
        self.restarts = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._exited = threading.Event()
        self.exit_status: int | None = None
        self._supervisor = threading.Thread(target=self._supervise, name="engine-supervisor", daemon=True)

    @property
    def pid(self) -> int:
        return self.child.pid

    def watch(self) -> None:
        """Start noticing the engine's exit (call once the API side runs)."""
        self._supervisor.start()

    def _supervise(self) -> None:
        next_delay = restart_delays()
        while True:
            child = self.child
            self.exit_status = child.wait()
            with self._lock:
                child.reaped = True
                child.close_pipe()
            if self._stopping.is_set():
                break
            if time.monotonic() - child.started_at >= STABLE_AFTER:
                next_delay = restart_delays()
            if not self._restart(child, next_delay):
                break
        self._exited.set()

    def _restart(self, dead: _Child, next_delay: Callable[[], float]) -> bool:
        """Start engines until one runs (backing off); False once the API process is stopping."""
        while True:
            delay = next_delay()
            LOG.error(
                "the engine process (pid %d) exited with status %s; starting a new one in %.1f s",
                dead.pid,
                self.exit_status,
                delay,
            )
            if self._stopping.wait(delay):
                return False
            with self._lock:
                if self._stopping.is_set():
                    return False
                try:
                    child, api_end = spawn(self.runtime)
                except Exception:
                    LOG.exception("could not start a new engine process")
                    continue
                self.child = child
                self.restarts += 1
            _relink(self.runtime, api_end)
            LOG.warning("engine process %d started (restart %d)", child.pid, self.restarts)
            return True

    def stop(self) -> None:
        """Stop the engine and wait for it (then kill it after ``STOP_TIMEOUT`` s)."""
        with self._lock:
            self._stopping.set()
            child = self.child
            if not child.reaped:
                _signal(child.pid, signal.SIGTERM)
        pid = child.pid
        if not self._supervisor.is_alive() and not self._exited.is_set():
            self._supervisor.start()
        if not self._exited.is_set():
            if not self._exited.wait(STOP_TIMEOUT):
                LOG.error(
                    "the engine process (pid %d) did not stop within %.0f s; killing it",
                    pid,
                    STOP_TIMEOUT,
                )
                with self._lock:
                    if not child.reaped:
                        _signal(pid, signal.SIGKILL)
                self._exited.wait(5)
        with self._lock:
            self.child.close_pipe()


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _relink(runtime: Any, api_end: socket.socket) -> None:
    """The API side's transport sends to the new engine from now on (its dead link is closed)."""
    conductor = runtime.services.conductor
    transport = getattr(conductor, "transport", None)
    old, runtime.peer = runtime.peer, api_end
    if transport is not None and transport.is_memory:
        transport.attach_peer(api_end, name="api")
    elif old is not None and old is not api_end:  # not attached yet: services.startup will take the new one
        old.close()


def spawn(runtime: Any) -> tuple[_Child, socket.socket]:
    """A new engine in a fresh interpreter (``novalite.services.engine_child``): its end of a new
    socket pair, a parent-alive pipe and the data directory's lock are passed as descriptors, the
    Settings on its stdin. Returns the child and the API's end of the link."""
    from novalite import instance_lock

    api_end, engine_end = socket.socketpair()
    alive_r, alive_w = os.pipe()
    locks = instance_lock.held_descriptors()
    argv = [
        sys.executable,
        "-m",
        "novalite.services.engine_child",
        "--link-fd",
        str(engine_end.fileno()),
        "--parent-fd",
        str(alive_r),
    ]
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, pass_fds=(engine_end.fileno(), alive_r, *locks), close_fds=True
        )
    except BaseException:
        api_end.close()
        _close(alive_w)
        raise
    finally:
        engine_end.close()
        _close(alive_r)
    assert proc.stdin is not None
    try:
        proc.stdin.write(settings_to_json(runtime.settings).encode())
        proc.stdin.close()
    except OSError:  # it died at once: the supervisor sees its exit status
        LOG.warning("the new engine process (pid %d) exited before reading its settings", proc.pid)
    return _Child(proc.pid, proc.wait, alive_w), api_end


def settings_to_json(settings: Any) -> str:
    return json.dumps(dataclasses.asdict(settings), default=str)


def settings_from_json(text: str) -> Any:
    from pathlib import Path

    from novalite.config import Settings

    values = json.loads(text)
    names = {f.name for f in dataclasses.fields(Settings)}
    settings = Settings(**{k: v for k, v in values.items() if k in names})
    settings.data_dir = Path(settings.data_dir)
    return settings


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
        engine_main(runtime, engine_end, alive_r)  # never returns
    engine_end.close()
    os.close(alive_r)
    runtime.db.share_with_processes(priority=True)  # a request's write goes before the engine's next
    runtime.role, runtime.peer = "api", api_end
    return EngineProcess(runtime, _forked(pid, alive_w))


def engine_main(runtime: Any, link: socket.socket, parent_alive_r: int) -> None:
    """Run the engine in this process until told to stop, then exit (never returns)."""
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
    from novalite import memory

    stop_release = memory.start(runtime.db)  # idle connections and free heap go back after each burst
    LOG.info("engine process %d running", os.getpid())
    while not stop_requested.wait(1.0):
        pass
    stop_release()
    stop()
    runtime.db.dispose()
    return 0
