"""Allocations: claim, release and move what a consumer holds, with compare-and-swap writes.

A claim runs inside a SAVEPOINT of the caller's transaction (``db.base.savepoint``: Core
statements only), so a failed claim leaves no trace and the caller may try the next candidate
in the same transaction (all-or-nothing multi-create claims every instance in one
transaction). Guarantees:

* capacity: each resource class is taken with ``UPDATE inventories SET used = used + n
  WHERE ... AND used + n <= capacity`` -- two concurrent claims can never both get the
  last units (the database serialises the rows);
* provider generation: bumped on every allocation change (compare-and-swap when the caller
  passes the generation it saw);
* consumer generation: a new consumer must not exist yet (``consumer_generation=None``); an
  existing one is matched on its generation. Either mismatch is ``AllocationConflict``.

``release`` is idempotent: releasing a consumer with nothing allocated does nothing.

Lock order (PostgreSQL takes row locks; SQLite has one writer at a time): every writer of a
provider's inventories -- claim, release, ``providers.set_inventories`` -- first updates the
provider's row (the generation bump), several providers in order of uuid. The provider row is
then a per-provider mutex: two writers can no longer lock one provider's inventory rows in
opposite orders (a release used to give back class by class while a claim's single UPDATE
locked them in scan order, and PostgreSQL killed one of the two as a deadlock). Cycles through
other tables or across multi-provider transactions remain possible in principle;
``Database.write`` runs such a deadlock victim again.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Integer, Table, bindparam, case, delete, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from novalite.db.base import savepoint, utcnow
from novalite.db.models.placement import Allocation, Consumer, Inventory, ResourceProvider
from novalite.db.precompiled import Precompiled
from novalite.errors import Conflict
from novalite.placement.providers import bump_generation, bump_generation_by_uuid

# provider uuid -> resource class -> amount (placement's "allocation request" shape)
AllocationRequest = Mapping[str, Mapping[str, int]]


class AllocationConflict(Conflict):
    """The claim cannot be made as asked: capacity, provider or consumer generation changed."""

    def __init__(self, message: str):
        super().__init__(message, kind="placement.concurrent_update")


@dataclass(frozen=True)
class ConsumerRef:
    uuid: str
    project_id: str
    user_id: str


@functools.lru_cache(maxsize=128)
def _take_statement(rcs: tuple[str, ...]) -> Precompiled:
    """One conditional UPDATE for all classes of one provider (amounts bound as amount_<i>)."""
    inv = cast(Table, Inventory.__table__)
    amount = case(
        {rc: bindparam(f"amount_{i}", type_=Integer) for i, rc in enumerate(rcs)},
        value=inv.c.resource_class,
        else_=0,
    )
    capacity = (inv.c.total - inv.c.reserved) * inv.c.allocation_ratio
    return Precompiled(
        update(inv)
        .where(
            inv.c.resource_provider_id == bindparam("provider_id", type_=Integer),
            inv.c.resource_class.in_([literal(rc) for rc in rcs]),
            inv.c.used + amount <= capacity,
            inv.c.min_unit <= amount,
            inv.c.max_unit >= amount,
            (amount % inv.c.step_size) == 0,
        )
        .values(used=inv.c.used + amount)
    )


def _take(s: Session, provider_id: int, resources: Mapping[str, int]) -> bool:
    """Add the amounts to the provider's usage when every one fits; False when any does not."""
    rcs = tuple(resources)
    params: dict[str, Any] = {f"amount_{i}": resources[rc] for i, rc in enumerate(rcs)}
    params["provider_id"] = provider_id
    return _take_statement(rcs).run(s, params) == len(rcs)


_INV = cast(Table, Inventory.__table__)
_ALLOC = cast(Table, Allocation.__table__)
_CONSUMERS = cast(Table, Consumer.__table__)
_GIVE_BACK = (
    update(_INV)
    .where(_INV.c.resource_provider_id == bindparam("provider_id"), _INV.c.resource_class == bindparam("rc"))
    .values(used=_INV.c.used - bindparam("amount", type_=Integer))
)
_CONSUMER_GENERATION = select(_CONSUMERS.c.generation).where(_CONSUMERS.c.uuid == bindparam("uuid"))
_HELD = select(_ALLOC.c.id).where(_ALLOC.c.consumer_id == bindparam("uuid")).limit(1)
_ADD_CONSUMER = insert(_CONSUMERS)
_BUMP_CONSUMER = (
    update(_CONSUMERS)
    .where(_CONSUMERS.c.uuid == bindparam("consumer_uuid"), _CONSUMERS.c.generation == bindparam("seen"))
    .values(generation=_CONSUMERS.c.generation + 1)
)
_PROVIDERS = cast(Table, ResourceProvider.__table__)
_HELD_ROWS = (
    select(_PROVIDERS.c.uuid, _ALLOC.c.resource_provider_id, _ALLOC.c.resource_class, _ALLOC.c.used)
    .join(_PROVIDERS, _PROVIDERS.c.id == _ALLOC.c.resource_provider_id)
    .where(_ALLOC.c.consumer_id == bindparam("uuid"))
)
_DROP_ALLOCATIONS = delete(_ALLOC).where(_ALLOC.c.consumer_id == bindparam("uuid"))
_DROP_CONSUMER = delete(_CONSUMERS).where(_CONSUMERS.c.uuid == bindparam("uuid"))
_ADD_ALLOCATIONS = Precompiled(insert(_ALLOC))


def _give_back(s: Session, provider_id: int, rc: str, amount: int) -> None:
    s.connection().execute(_GIVE_BACK, {"provider_id": provider_id, "rc": rc, "amount": amount})


@functools.lru_cache(maxsize=4)
def _add_new_consumer(dialect: str) -> Precompiled | None:
    """INSERT of a consumer that does nothing when the uuid exists (SQLite and PostgreSQL); it
    returns the uuid when it inserted (rowcount is not reliable for it with psycopg)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return Precompiled(
            sqlite.insert(_CONSUMERS)
            .on_conflict_do_nothing(index_elements=[_CONSUMERS.c.uuid])
            .returning(_CONSUMERS.c.uuid)
        )
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return Precompiled(
            postgresql.insert(_CONSUMERS)
            .on_conflict_do_nothing(index_elements=[_CONSUMERS.c.uuid])
            .returning(_CONSUMERS.c.uuid)
        )
    return None


def _check_consumer(s: Session, consumer: ConsumerRef, generation: int | None) -> None:
    conn = s.connection()
    if generation is None:
        # the usual case, a first claim: one statement; an existing consumer falls through
        add = _add_new_consumer(conn.dialect.name)
        if add is not None:
            now = utcnow()
            if (
                add.first(
                    conn,
                    {
                        "uuid": consumer.uuid,
                        "project_id": consumer.project_id,
                        "user_id": consumer.user_id,
                        "consumer_type": "INSTANCE",
                        "generation": 0,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                is not None
            ):
                return
    current = conn.execute(_CONSUMER_GENERATION, {"uuid": consumer.uuid}).scalar()
    if generation is None:
        if current is not None:
            if conn.execute(_HELD, {"uuid": consumer.uuid}).first() is not None:
                raise AllocationConflict(f"consumer {consumer.uuid} already has allocations")
            _bump_consumer(s, consumer.uuid, current)
            return
        now = utcnow()
        conn.execute(
            _ADD_CONSUMER,
            {
                "uuid": consumer.uuid,
                "project_id": consumer.project_id,
                "user_id": consumer.user_id,
                "consumer_type": "INSTANCE",
                "generation": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
        return
    if current is None or current != generation:
        raise AllocationConflict(f"consumer generation conflict for {consumer.uuid}")
    _bump_consumer(s, consumer.uuid, generation)


def _bump_consumer(s: Session, uuid: str, seen: int) -> None:
    if s.connection().execute(_BUMP_CONSUMER, {"consumer_uuid": uuid, "seen": seen}).rowcount != 1:
        raise AllocationConflict(f"consumer generation conflict for {uuid}")


def claim(
    s: Session,
    consumer: ConsumerRef,
    request: AllocationRequest,
    *,
    consumer_generation: int | None = None,
    provider_generations: Mapping[str, int] | None = None,
) -> None:
    """Allocate ``request`` to ``consumer`` or raise ``AllocationConflict`` leaving nothing behind."""
    try:
        with savepoint(s):
            _claim(s, consumer, request, consumer_generation, provider_generations or {})
    except IntegrityError as exc:  # a concurrent first claim inserted the same consumer
        raise AllocationConflict(f"consumer {consumer.uuid} was claimed concurrently") from exc


def _claim(
    s: Session,
    consumer: ConsumerRef,
    request: AllocationRequest,
    consumer_generation: int | None,
    provider_generations: Mapping[str, int],
) -> None:
    _check_consumer(s, consumer, consumer_generation)
    conn = s.connection()
    rows: list[dict[str, Any]] = []
    for provider_uuid in sorted(request):  # the lock order: providers by uuid (see module doc)
        wanted = {rc: int(n) for rc, n in request[provider_uuid].items() if n > 0}
        # the provider's row first (the generation bump also gives its id): it is the lock every
        # writer of the provider's inventories takes before them
        try:
            provider_id = bump_generation_by_uuid(s, provider_uuid, provider_generations.get(provider_uuid))
        except Conflict as exc:
            raise AllocationConflict(exc.message) from exc
        if provider_id is None:
            raise AllocationConflict(f"resource provider {provider_uuid} does not exist")
        if wanted and not _take(s, provider_id, wanted):
            raise AllocationConflict(f"unable to allocate {wanted} on resource provider {provider_uuid}")
        rows.extend(
            {
                "resource_provider_id": provider_id,
                "consumer_id": consumer.uuid,
                "resource_class": rc,
                "used": n,
            }
            for rc, n in wanted.items()
        )
    if rows:
        _ADD_ALLOCATIONS.run_many(conn, rows)


def release(s: Session, consumer_uuid: str) -> bool:
    """Remove every allocation of ``consumer_uuid`` (and the consumer). Idempotent; True if any."""
    conn = s.connection()
    # (provider uuid, provider id, class, amount) in the lock order a claim uses
    rows = sorted(conn.execute(_HELD_ROWS, {"uuid": consumer_uuid}).all())
    for provider_id in dict.fromkeys(r[1] for r in rows):  # each provider's row before its inventories
        bump_generation(s, provider_id)
    for _uuid, provider_id, rc, used in rows:
        _give_back(s, provider_id, rc, used)
    if rows:
        conn.execute(_DROP_ALLOCATIONS, {"uuid": consumer_uuid})
    conn.execute(_DROP_CONSUMER, {"uuid": consumer_uuid})
    return bool(rows)


def release_many(s: Session, consumer_uuids: list[str]) -> None:
    """``release`` for several consumers (batched reads)."""
    for uuid in consumer_uuids:
        release(s, uuid)


def move(s: Session, consumer: ConsumerRef, request: AllocationRequest) -> None:
    """Replace the consumer's allocations with ``request`` (reschedule: old host -> alternate)."""
    with savepoint(s):
        release(s, consumer.uuid)
        claim(s, consumer, request)


def allocations_of(s: Session, consumer_uuid: str) -> dict[str, dict[str, int]]:
    """provider uuid -> resource class -> amount held by the consumer."""
    q = (
        select(ResourceProvider.uuid, Allocation.resource_class, Allocation.used)
        .join(ResourceProvider, ResourceProvider.id == Allocation.resource_provider_id)
        .where(Allocation.consumer_id == consumer_uuid)
    )
    out: dict[str, dict[str, int]] = {}
    for provider_uuid, rc, used in s.execute(q):
        out.setdefault(provider_uuid, {})[rc] = used
    return out


def provider_usages(s: Session, provider_uuid: str) -> dict[str, int]:
    """resource class -> units in use on the provider (placement's ``/usages``)."""
    q = (
        select(Inventory.resource_class, Inventory.used)
        .join(ResourceProvider, ResourceProvider.id == Inventory.resource_provider_id)
        .where(ResourceProvider.uuid == provider_uuid)
    )
    return {rc: used for rc, used in s.execute(q)}


# --- set-based claims of many first-time consumers (the conductor's batch) -------------------


def add_new_consumers(s: Session, consumers: list[ConsumerRef]) -> set[str] | None:
    """One INSERT of every consumer that does not exist yet; the uuids it inserted (the others
    exist already and need ``claim``'s checks). None on a dialect without ON CONFLICT DO NOTHING."""
    conn = s.connection()
    dialect = conn.dialect.name
    if not consumers:
        return set()
    if dialect not in ("sqlite", "postgresql"):
        return None
    now = utcnow()
    rows = [
        {
            "uuid": c.uuid,
            "project_id": c.project_id,
            "user_id": c.user_id,
            "consumer_type": "INSTANCE",
            "generation": 0,
            "created_at": now,
            "updated_at": now,
        }
        for c in consumers
    ]
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        statement: Any = (
            sqlite.insert(_CONSUMERS).values(rows).on_conflict_do_nothing(index_elements=["uuid"])
        )
    else:
        from sqlalchemy.dialects import postgresql

        statement = postgresql.insert(_CONSUMERS).values(rows).on_conflict_do_nothing(index_elements=["uuid"])
    return {uuid for (uuid,) in conn.execute(statement.returning(_CONSUMERS.c.uuid))}


@dataclass
class Taken:
    """What ``take_many`` got: per key the allocation rows to insert (``add_allocations``), and
    the keys whose request did not fit (nothing of theirs taken)."""

    rows: dict[Any, list[dict[str, Any]]]
    failed: set[Any]


def take_many(s: Session, attempts: list[tuple[Any, str, AllocationRequest]]) -> Taken:
    """Take the usage of several (key, consumer uuid, request) attempts at once: per provider, in
    the lock order (uuid), one generation bump and one capacity-checked UPDATE of the sum of
    the attempts on it; when the sum does not fit, the attempts on that provider are taken one
    by one in the given order, so an attempt fails only when it alone no longer fits. An attempt
    that failed on one provider gives back what it took on the others. The consumers must exist
    (``add_new_consumers``) and hold nothing; the caller inserts the rows it keeps."""
    by_provider: dict[str, list[tuple[int, dict[str, int]]]] = {}
    for n, (_key, _consumer, request) in enumerate(attempts):
        for provider_uuid, resources in request.items():
            wanted = {rc: int(v) for rc, v in resources.items() if v > 0}
            by_provider.setdefault(provider_uuid, []).append((n, wanted))
    failed: set[int] = set()
    got: dict[int, list[tuple[int, dict[str, int]]]] = {}  # attempt -> [(provider id, taken)]
    for provider_uuid in sorted(by_provider):  # the lock order (see the module doc)
        parts = by_provider[provider_uuid]
        provider_id = bump_generation_by_uuid(s, provider_uuid)
        if provider_id is None:
            failed.update(n for n, _w in parts)
            continue
        live = [(n, w) for n, w in parts if n not in failed]
        total: dict[str, int] = {}
        for _n, wanted in live:
            for rc, v in wanted.items():
                total[rc] = total.get(rc, 0) + v
        if len(live) > 1 and total and _take(s, provider_id, total):
            ok = live
        else:  # one at a time: the earlier attempts first
            ok = []
            for n, wanted in live:
                if not wanted or _take(s, provider_id, wanted):
                    ok.append((n, wanted))
                else:
                    failed.add(n)
        for n, wanted in ok:
            got.setdefault(n, []).append((provider_id, wanted))
    rows: dict[Any, list[dict[str, Any]]] = {}
    for n, taken in got.items():
        if n in failed:  # failed on another provider: give this one's part back
            for provider_id, wanted in taken:
                for rc, v in wanted.items():
                    _give_back(s, provider_id, rc, v)
            continue
        key, consumer, _request = attempts[n]
        rows[key] = [
            {"resource_provider_id": provider_id, "consumer_id": consumer, "resource_class": rc, "used": v}
            for provider_id, wanted in taken
            for rc, v in wanted.items()
        ]
    return Taken(rows=rows, failed={attempts[n][0] for n in failed})


def add_allocations(s: Session, rows: list[dict[str, Any]]) -> None:
    """One INSERT (executemany) of allocation rows ``take_many`` returned."""
    if rows:
        _ADD_ALLOCATIONS.run_many(s.connection(), rows)
