"""Engine, sessions and the declarative base shared by every model module.

``Database`` owns one engine. ``session()`` is a plain unit of work (commit on success,
rollback on error). ``serialized(key)`` is a unit of work that holds a lock named ``key``
for its whole duration, so check-then-write sequences (quota counting) cannot interleave:
SQLite takes its single write lock up front (``BEGIN IMMEDIATE``), PostgreSQL takes a
transaction-scoped advisory lock on a hash of the key.

``write(fn)`` runs ``fn(session)`` in a unit of work and runs it again, from the start, when
PostgreSQL aborted the transaction as a deadlock victim or for a serialization failure (the
whole transaction was rolled back, so running it again is safe as long as ``fn`` does nothing
but database work). Writers keep one lock order to make deadlocks rare (see
``placement.allocations``); the retry covers the cycles no order can rule out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator

from novalite.db.write_lock import WriteLock
from novalite.randomness import uuid4

LOG = logging.getLogger(__name__)
T = TypeVar("T")
# PostgreSQL's SQLSTATEs for "the transaction was rolled back; run it again"
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
WRITE_ATTEMPTS = 5


def run_retrying(
    begin: Callable[[], AbstractContextManager[Session]],
    fn: Callable[[Session], T],
    *,
    attempts: int = WRITE_ATTEMPTS,
) -> T:
    """``fn(session)`` in the unit of work ``begin()`` opens, run again (in a new one) while the
    database rolls it back for a ``retryable`` reason, up to ``attempts`` runs in all."""
    for attempt in range(1, attempts + 1):
        try:
            with begin() as s:
                return fn(s)
        except DBAPIError as exc:
            if attempt == attempts or not retryable(exc):
                raise
            LOG.warning(
                "transaction rolled back by the database (%s); running it again (%d of %d)",
                getattr(exc.orig, "sqlstate", "?"),
                attempt + 1,
                attempts,
            )
            time.sleep(random.uniform(0.0, 0.02 * attempt))  # noqa: S311 - jitter, not security
    raise AssertionError("unreachable")


def retryable(exc: BaseException) -> bool:
    """True for a database error that aborted the whole transaction for a reason another run
    of the same transaction would not meet again (deadlock victim, serialization failure)."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


# PostgreSQL's SQLSTATEs for "the server is gone or not taking connections": connection exceptions
# (class 08), admin/crash shutdown, starting up or shutting down, too many connections
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# how long a client is told to wait (Retry-After) while the database cannot be reached
UNAVAILABLE_RETRY_AFTER = 5


def unavailable(exc: BaseException) -> bool:
    """True for a database error that says the database server cannot be reached (stopped,
    restarting, the connection dropped) rather than something wrong with the statement: a request
    meeting it gets a 503 and the pool reconnects (``pool_pre_ping``) once the server is back."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not type(exc.orig).__module__.startswith("psycopg"):  # SQLite's errors are the statement's
        return False
    if isinstance(exc, InterfaceError):
        return True
    if isinstance(exc, OperationalError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate is None:  # refused, reset, closed: no message from a server
            return True
        return str(sqlstate).startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES
    return False


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_uuid() -> str:
    return uuid4()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Naive UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value


class Base(DeclarativeBase):
    pass


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # autocommit-style isolation so SQLAlchemy's "BEGIN" below is ours to issue
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


# Connections kept open. The threads that use the database at once: the HTTP worker threads (40),
# the conductor's 4 and the compute agents' build pool (max_concurrent_builds). With fewer kept
# connections than that, every connection beyond the pool is opened and closed again per unit of
# work: on PostgreSQL a new backend process each time (236 connections for 300 boots and deletes
# with the old 10 + 20). Connections are opened on demand, so a quiet process holds only what its
# busiest moment needed; the total stays under PostgreSQL's default max_connections (100).
POOL_SIZE = 48
POOL_OVERFLOW = 32
# compiled statements cached per engine (SQLAlchemy's default is 500; the API, scheduler and
# compute agents together use more distinct statements than that, and a miss recompiles)
QUERY_CACHE_SIZE = 2000


class Database:
    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # units of work started so far (``memory.IdleRelease`` sees a burst end by it); bumped
        # without a lock: an increment lost to a race only delays a release
        self.units = 0
        self._write_lock = (
            WriteLock()
        )  # SQLite: serialises the writers (this process's; see share_with_processes)
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url,
                poolclass=QueuePool,
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
                query_cache_size=QUERY_CACHE_SIZE,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)

            @event.listens_for(self.engine, "begin")
            def _begin(conn: Any) -> None:
                # straight to the DBAPI connection: through exec_driver_sql this statement cost
                # more than the rest of a short read unit (every unit of work runs it)
                mode = conn.info.pop("begin_mode", "")
                conn.connection.driver_connection.execute(
                    "BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN"
                )

        else:
            self.engine = create_engine(
                url,
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
                pool_pre_ping=True,
                query_cache_size=QUERY_CACHE_SIZE,
            )

    @contextmanager
    def _unit(self, *, write: bool, lock_key: str | None = None) -> Iterator[Session]:
        self.units += 1
        if self.is_sqlite and write:
            # one writer at a time anyway: queue on a Python lock (FIFO-ish, no sleeping) rather
            # than in SQLite's busy handler, which backs off up to 100 ms per retry under load
            # (after 30 s, as long as SQLite's own busy timeout, go on and let SQLite decide)
            locked = self._write_lock.acquire(timeout=30)
            try:
                with self._unit_inner(write=write, lock_key=lock_key) as s:
                    yield s
            finally:
                if locked:
                    self._write_lock.release()
            return
        with self._unit_inner(write=write, lock_key=lock_key) as s:
            yield s

    @contextmanager
    def _unit_inner(self, *, write: bool, lock_key: str | None = None) -> Iterator[Session]:
        with self.engine.connect() as conn:
            if self.is_sqlite and write:
                # SQLite in WAL mode: a deferred transaction that reads and then writes
                # fails with SQLITE_BUSY when another writer got in between; taking the
                # write lock up front makes writers queue on busy_timeout instead.
                conn.info["begin_mode"] = "IMMEDIATE"
            with Session(bind=conn, expire_on_commit=False) as s:
                try:
                    if lock_key is not None and not self.is_sqlite:
                        digest = hashlib.sha1(lock_key.encode()).digest()
                        lock_id = int.from_bytes(digest[:8], "big", signed=True)
                        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id})
                    yield s
                    s.commit()
                except BaseException:
                    s.rollback()
                    raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work that may write: commit on success, rollback on error."""
        with self._unit(write=True) as s:
            yield s

    def write(self, fn: Callable[[Session], T], *, attempts: int = WRITE_ATTEMPTS) -> T:
        """``fn(session)`` in a unit of work (``session()``), run again from the start when the
        database rolled the transaction back as a deadlock victim or serialization failure."""
        return run_retrying(self.session, fn, attempts=attempts)

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only unit of work (no write lock on SQLite)."""
        with self._unit(write=False) as s:
            yield s

    @contextmanager
    def serialized(self, key: str) -> Iterator[Session]:
        """A unit of work holding the lock ``key`` until it commits or rolls back.

        SQLite: the database write lock (one writer at a time anyway).
        PostgreSQL: a transaction-scoped advisory lock on a hash of ``key``.
        """
        with self._unit(write=True, lock_key=key) as s:
            yield s

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a file-backed SQLite database (None otherwise)."""
        if not self.is_sqlite or "///" not in self.url:
            return None
        path = self.url.split("///", 1)[1].split("?", 1)[0]
        return Path(path) if path and path != ":memory:" else None

    def share_with_processes(self, *, priority: bool = False) -> None:
        """Another process writes to this database too (the two processes of ``novalite serve``):
        SQLite writers queue on a lock file beside the database as well as on the thread lock;
        ``priority`` (the API process) puts this process's writers ahead (``db.write_lock``)."""
        path = self.sqlite_path
        if path is not None:
            self._write_lock.share_with_processes(path, priority=priority)

    def dispose(self) -> None:
        self.engine.dispose()

    def release_idle_connections(self) -> None:
        """Close the pooled connections no unit of work holds now (SQLite database files only):
        each keeps a page cache that grows with the file, its parsed schema and its prepared
        statements. Units of work in progress keep theirs, which go back to the pool as ever and
        are closed by the next release; the next units open fresh connections. A PostgreSQL
        connection's caches live in its server process, and an in-memory SQLite database would be
        lost with its connections: both are left alone.

        ``QueuePool.dispose`` rather than ``Engine.dispose``: the engine's replaces the pool, and a
        connection checked out meanwhile went back to the old pool and stayed open for good. The
        pool's count of connections forgets those held during the release, so until the next one
        it may open that many beyond its limit."""
        if self.sqlite_path is not None:
            self.engine.pool.dispose()


_SAVEPOINT_NAMES = itertools.count(1)


@contextmanager
def savepoint(s: Session) -> Iterator[None]:
    """A SAVEPOINT around Core statements run on ``s.connection()``: released when the block
    ends, rolled back to when it raises (the exception propagates).

    ``Session.begin_nested`` does the same with the ORM's bookkeeping, and compiles the
    SAVEPOINT and RELEASE clauses anew each time, a hundred times the cost of this one
    (bench/README.md, "Costs behind the code's choices"), where the statements go straight to
    the DBAPI connection of the session's transaction. The price: the identity map knows
    nothing of it, so pending ORM changes are flushed before the savepoint, and the block must
    use Core statements only (an ORM object changed inside would keep its state after a
    rollback)."""
    s.flush()
    driver = s.connection().connection.driver_connection
    assert driver is not None
    name = f"nl_sp_{next(_SAVEPOINT_NAMES)}"
    driver.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        driver.execute(f"ROLLBACK TO SAVEPOINT {name}")
        driver.execute(f"RELEASE SAVEPOINT {name}")
        raise
    driver.execute(f"RELEASE SAVEPOINT {name}")


def migrations_dir() -> Path:
    return Path(__file__).parent / "migrations"


def upgrade(db_url: str, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    command.upgrade(cfg, revision)


def head_revisions() -> set[str]:
    """The migration scripts' head revision ids, read from their ``revision =`` lines."""
    import re

    revisions, parents = set(), set()
    for script in (migrations_dir() / "versions").glob("*.py"):
        source = script.read_text()
        rev = re.search(r"^revision\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", source, re.M)
        down = re.search(r"^down_revision\s*(?::[^=]+)?=\s*['\"]([^'\"]+)['\"]", source, re.M)
        if rev:
            revisions.add(rev.group(1))
        if down:
            parents.add(down.group(1))
    return revisions - parents


class SchemaOutOfDate(RuntimeError):
    """The database's schema is not the one this novalite's code needs."""


def check_schema(db_url: str) -> None:
    """Raise ``SchemaOutOfDate`` unless the database is at this code's head revision (the split
    processes never migrate: ``novalite db upgrade`` is run once per deployment)."""
    from sqlalchemy import inspect, pool

    heads = head_revisions()
    engine = create_engine(db_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            current: set[str] = set()
            if "alembic_version" in inspect(conn).get_table_names():
                current = {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}
    finally:
        engine.dispose()
    if current != heads:
        have = ", ".join(sorted(current)) or "none (an empty database)"
        raise SchemaOutOfDate(
            f"database schema is at revision {have}, this novalite needs {', '.join(sorted(heads))}: "
            "run `novalite db upgrade`"
        )
