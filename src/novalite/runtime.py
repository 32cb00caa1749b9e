"""The running deployment: settings, database, token provider and the services built on them.

One ``Runtime`` per process. Routes reach it through ``request.app.state.runtime``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text

from novalite.config import Settings
from novalite.db.base import Database
from novalite.errors import EngineNotRunning
from novalite.identity.keys import KeyRepository
from novalite.identity.revocation import RevocationList
from novalite.identity.tokens import TokenProvider

LOG = logging.getLogger(__name__)

if TYPE_CHECKING:
    from novalite.compute.api import ComputeAPI
    from novalite.conductor.rpcapi import ConductorClient
    from novalite.scheduler.service import SchedulerService
    from novalite.volume.storage import VolumeStorage


@dataclass
class Services:
    """The services of the deployment this process reaches (in the glossary's sense: the
    conductor, the scheduler, the compute side), one typed attribute each, set by
    ``services.startup`` (in the API process of a two-process serve, clients that reach the
    engine process). ``None`` until started and after stop."""

    conductor: ConductorClient | None = None  # RPC client: schedule and build, reschedule
    compute_api: ComputeAPI | None = None  # what the servers API asks of the compute side
    scheduler: SchedulerService | None = None

    def require_conductor(self) -> ConductorClient:
        if self.conductor is None:
            raise EngineNotRunning("the conductor is not running in this process")
        return self.conductor

    def require_compute_api(self) -> ComputeAPI:
        if self.compute_api is None:
            raise EngineNotRunning("the compute side is not running in this process")
        return self.compute_api

    def clear_engine(self) -> None:
        """Forget what ``services.startup`` registered (its ``stop``)."""
        self.conductor = self.compute_api = self.scheduler = None


@dataclass
class Runtime:
    settings: Settings
    db: Database
    tokens: TokenProvider
    # service name -> (catalog type, catalog name, url suffix); filled by each service's router
    catalog: list[tuple[str, str, str]] = field(default_factory=list)
    services: Services = field(default_factory=Services)
    volume_storage: VolumeStorage | None = None  # where volumes' data lives; volume.storage_for
    # "all": API and engine in this process; "api" / "engine": one half of a two-process
    # ``novalite serve`` (services.engine_process), joined by ``peer``, a connected socket
    role: str = "all"
    peer: Any = None

    def __post_init__(self) -> None:
        # every service's token check sees the revocation events of this database
        if self.tokens.revocations is None:
            self.tokens.revocations = RevocationList(self.db)

    @property
    def public_url(self) -> str:
        return self.settings.effective_public_url


# where novalite before the key repository kept its one Fernet key (a row named "fernet")
_LEGACY_KEY_TABLE = "service_keys"


def load_token_key(db: Database, settings: Settings) -> KeyRepository:
    """The token key repository (``identity.keys``), created on first start.

    A database from before the repository may still hold the key in ``service_keys``: it becomes
    the primary key file (tokens signed with it stay valid), then the table is dropped, so the
    database holds no secret. The table is read with plain SQL: it is no model any more."""
    repo = KeyRepository(settings.effective_token_key_dir, settings.max_active_keys)
    legacy = _legacy_key(db)
    if repo.initialize(legacy):
        if legacy is not None:
            LOG.warning("moved the token signing key from the database to %s", repo.path)
        elif not db.is_sqlite:
            LOG.warning(
                "created new token keys in %s: if other API hosts use this database, copy their key "
                "repository here instead, or their tokens will not validate on this host",
                repo.path,
            )
    if legacy is not None or _has_legacy_table(db):
        with db.session() as s:
            s.execute(text(f"DROP TABLE {_LEGACY_KEY_TABLE}"))
    return repo


def _has_legacy_table(db: Database) -> bool:
    with db.engine.connect() as conn:
        return _LEGACY_KEY_TABLE in inspect(conn).get_table_names()


def _legacy_key(db: Database) -> bytes | None:
    if not _has_legacy_table(db):
        return None
    with db.reader() as s:
        value = s.execute(text(f"SELECT value FROM {_LEGACY_KEY_TABLE} WHERE name = 'fernet'")).scalar()
    return str(value).encode() if value else None


# The cyclic garbage collector's thresholds once the service runs (CPython's default: 700, 10, 10).
# Each request allocates thousands of short-lived objects (ORM rows, dicts, coroutine frames), so
# with the default the young generation is collected every few requests and the oldest one, which
# walks every object the process holds, every few hundred: a pause of tens of milliseconds that
# lands on whichever requests are in flight (bench/README.md, "Costs behind the code's choices":
# POST p99 and CPU per server with both settings).
GC_THRESHOLDS = (5000, 20, 20)


# glibc's mallopt parameter for the number of malloc arenas
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 1) -> None:
    """One malloc arena for the whole process (glibc only; call before any thread starts).

    glibc gives threads arenas of their own, up to eight per core, and an arena keeps what it
    once held. A page of 1,000 servers is built in one thread (the database read) and serialised
    in another (the event loop): each arena then kept its own few MB of freed memory
    (bench/README.md, "Costs behind the code's choices": memory with both settings; boot and
    list speed unchanged, since nearly every allocation happens under the GIL anyway)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return
    mallopt(_M_ARENA_MAX, arenas)


def settle_heap() -> None:
    """Called once start-up is done: collect the start-up garbage, move everything that is left
    (modules, models, compiled statements, route tables) out of the collector's sight for good
    (``gc.freeze``: those objects live as long as the process) and raise the thresholds; then
    hand the heap the start-up freed back to the OS (``memory.trim_heap``: the API process held
    16-19 MB of free heap after start-up, bench/README.md round 14b)."""
    import gc

    from novalite.memory import trim_heap

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    trim_heap()
