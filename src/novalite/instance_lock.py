"""One ``novalite serve`` per data directory and per database.

A second serve on a live data directory used to get as far as its start-up recovery
(``compute.recovery``), which took the running service's in-flight builds for interrupted ones:
ERROR, resources released. ``hold`` runs first thing in ``serve``, before migrations, the
bootstrap, recovery or the bind, and refuses with a message naming the data directory (or the
database) and the pid that holds it:

* ``<data_dir>/novalite.pid``: an exclusive, non-blocking ``flock``; the file then holds our pid.
  The descriptor stays open (and locked) for the life of the process. It is close-on-exec, so
  nothing the process ``exec``s keeps the lock; ``fork`` shares its open file description, so the
  engine process (``services.engine_process``) holds the lock with the API process: it is released
  only once both have exited (a new serve must not start while an orphaned engine still runs).
  Neither process ever unlocks it explicitly: ``LOCK_UN`` in the child would release the lock the
  parent holds too. The file is left in place on exit: removing it would let a third process lock
  a fresh inode while a second still holds the old one.
* a SQLite database file outside the data directory: ``<database>.pid`` likewise.
* PostgreSQL: a session-level ``pg_try_advisory_lock(PG_LOCK_KEY)`` on a connection of its own,
  held for the life of the process. Two serves with different data directories share one database
  this way only. Only the all-in-one serve (and, once the engine may run on hosts of its own, the
  engine's recovery) takes it: an API-only process of a multi-host topology must not, since several
  of them may share the database; what must never run twice against one database is the engine's
  recovery. The connection crosses the engine fork unused: the child exits with ``os._exit``, which
  closes its copy of the socket without ending the session. If the server drops the connection the
  lock is gone with it (a restarted PostgreSQL has to be followed by a restart of novalite anyway).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from pathlib import Path
from typing import Any

PID_FILE = "novalite.pid"
PG_LOCK_NAME = "novalite-engine"
# the advisory lock's bigint key: the first 8 bytes of sha256("novalite-engine"), signed
PG_LOCK_KEY = int.from_bytes(hashlib.sha256(PG_LOCK_NAME.encode()).digest()[:8], "big", signed=True)
_APP_NAME_PREFIX = "novalite serve pid "

# what holds the locks, referenced for the life of the process (never collected, never closed)
_HELD: list[Any] = []


class InstanceLocked(Exception):
    """Another novalite serve holds the data directory or the database; ``str`` is the message."""


def hold(settings: Any) -> None:
    """Lock the data directory and the database (PostgreSQL, or a SQLite file elsewhere) for this
    process's life.

    Raises ``InstanceLocked`` when another process holds either (nothing has been written then but
    the data directory itself, created if missing, and the pid file)."""
    data_dir = Path(settings.data_dir)
    lock_data_dir(data_dir)
    url = str(settings.effective_database_url)
    if url.startswith("postgresql"):
        lock_database(url)
    elif url.startswith("sqlite") and "///" in url:
        name = url.split("///", 1)[1].split("?", 1)[0]
        db_file = Path(name).resolve() if name and name != ":memory:" else None
        if db_file is not None and db_file.parent != data_dir.resolve():
            # a database file outside the data directory (two data dirs could name it): its own pid file
            _lock_file(db_file.with_name(db_file.name + ".pid"), f"the database {db_file}")


def lock_data_dir(data_dir: Path) -> int:
    """``flock`` ``<data_dir>/novalite.pid`` and write our pid into it; returns the descriptor."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return _lock_file(data_dir / PID_FILE, str(data_dir))


def _lock_file(path: Path, what: str) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # no O_TRUNC: until we hold the lock, the pid in the file is the holder's
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe(_read_pid(fd))
        os.close(fd)
        raise InstanceLocked(
            f"novalite: another novalite serve ({holder}) is using {what}; stop it first"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD.append(fd)
    return fd


def held_descriptors() -> list[int]:
    """The locked files' descriptors: an engine the API process restarts in a fresh interpreter
    (``services.engine_process.spawn``) gets them passed, and so holds the lock as a forked one
    does. (The PostgreSQL advisory lock stays with the API process's session.)"""
    return [fd for fd in _HELD if isinstance(fd, int)]


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None  # the holder has not written it yet


def _describe(pid: int | None) -> str:
    if pid is None:
        return "pid unknown"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"pid {pid}, which has exited; its engine process still runs"
    except PermissionError:
        pass
    return f"pid {pid}"


def lock_database(url: str) -> Any:
    """Take the advisory lock on a connection of its own; returns that connection."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    shown = make_url(url).render_as_string(hide_password=True)
    app_name = f"{_APP_NAME_PREFIX}{os.getpid()} on {socket.gethostname()}"[:63]
    engine = create_engine(url, poolclass=NullPool, connect_args={"application_name": app_name})
    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except DBAPIError as exc:
        engine.dispose()
        raise InstanceLocked(f"novalite: cannot connect to the database {shown}: {exc.orig}") from None
    got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": PG_LOCK_KEY}).scalar()
    if not got:
        holder = _pg_holder(conn)
        conn.close()
        engine.dispose()
        raise InstanceLocked(
            f"novalite: another novalite serve ({holder}) is using the database {shown}; stop it first"
        )
    _HELD.append((engine, conn))
    return conn


def _pg_holder(conn: Any) -> str:
    from sqlalchemy import text

    unsigned = PG_LOCK_KEY & 0xFFFF_FFFF_FFFF_FFFF
    row = conn.execute(
        text(
            "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF},
    ).first()
    if row is None:
        return "pid unknown"
    name, backend = str(row[0] or ""), row[1]
    if name.startswith(_APP_NAME_PREFIX):
        return name[len("novalite serve ") :]
    return f"database session pid {backend}, application {name!r}"
