"""Writers of a provider's inventories queue on the provider's row, and ``Database.write`` runs a
deadlock victim again.

CI once lost a reschedule on PostgreSQL: a compute agent released a failed build's allocation
class by class while the conductor claimed the same provider with one UPDATE that locked the
classes in another order; PostgreSQL killed the claim as a deadlock and the instance stayed in
BUILD. These tests pin down the two halves of the fix on PostgreSQL (skipped loudly when it is
not reachable, a failure under NOVALITE_REQUIRE_SERVICES=1); on SQLite writers never overlap.
"""

from __future__ import annotations

import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from novalite.db.base import Database, upgrade
from novalite.placement import allocations, providers
from novalite.placement.providers import InventorySpec
from tests.conftest import drop_postgres, postgres_url


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Database]:
    url = postgres_url()
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()
    drop_postgres(url)


def _provider(db: Database, name: str) -> str:
    with db.session() as s:
        rp = providers.create_provider(s, name=name)
        providers.set_inventories(
            s,
            rp,
            {
                "VCPU": InventorySpec(total=8),
                "MEMORY_MB": InventorySpec(total=8192),
                "DISK_GB": InventorySpec(total=100),
            },
        )
        return rp.uuid


def _consumer() -> allocations.ConsumerRef:
    return allocations.ConsumerRef(str(uuidlib.uuid4()), "p", "u")


SMALL = {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}


def _usage(db: Database, rp: str) -> dict[str, int]:
    with db.reader() as s:
        return allocations.provider_usages(s, rp)


def _waiting_statement(db: Database, timeout: float = 10.0) -> str:
    """The statement of the one backend of this database that waits for a row lock."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                text(
                    "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).first()
            if row is not None:
                return str(row[0])
            conn.rollback()
            time.sleep(0.02)
    raise AssertionError("no backend started waiting for a lock")


def _second_writer_queues_at_the_provider_row(
    pg: Database, first: Callable[[Session], None], second: Callable[[Session], None]
) -> None:
    """``second`` runs in its own unit of work while ``first``'s is still open: it must wait at
    the provider's row (before any inventory row), then go through once ``first`` commits."""
    errors: list[BaseException] = []

    def run_second() -> None:
        try:
            with pg.session() as s:
                second(s)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with pg.session() as s:
        first(s)
        worker = threading.Thread(target=run_second)
        worker.start()
        assert _waiting_statement(pg).lstrip().upper().startswith("UPDATE RESOURCE_PROVIDERS")
    worker.join(10)
    assert not worker.is_alive() and errors == []


def test_a_release_waits_at_the_provider_row_while_a_claim_holds_the_provider(pg: Database) -> None:
    rp = _provider(pg, "rp-order")
    held = _consumer()
    with pg.session() as s:
        allocations.claim(s, held, {rp: SMALL})

    def claim_more(s: Session) -> None:
        allocations.claim(s, _consumer(), {rp: {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 2}})

    def release_held(s: Session) -> None:
        allocations.release(s, held.uuid)

    _second_writer_queues_at_the_provider_row(pg, claim_more, release_held)
    assert _usage(pg, rp) == {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 2}


def test_a_claim_waits_at_the_provider_row_while_inventories_are_replaced(pg: Database) -> None:
    rp = _provider(pg, "rp-inv")

    def replace_inventories(s: Session) -> None:
        provider = providers.get_provider(s, rp)
        assert provider is not None
        providers.set_inventories(
            s,
            provider,
            {
                "VCPU": InventorySpec(total=16),
                "MEMORY_MB": InventorySpec(total=8192),
                "DISK_GB": InventorySpec(total=100),
            },
        )

    _second_writer_queues_at_the_provider_row(
        pg, replace_inventories, lambda s: allocations.claim(s, _consumer(), {rp: SMALL})
    )
    assert _usage(pg, rp) == {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}


def test_concurrent_claims_and_releases_on_one_provider_never_deadlock(pg: Database) -> None:
    """The CI failure's shape, many times over: claims and releases of one provider from four
    threads, each in its own plain unit of work (no retry): every one must succeed."""
    rp = _provider(pg, "rp-busy")
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            for _ in range(25):
                c = _consumer()
                with pg.session() as s:
                    allocations.claim(s, c, {rp: SMALL})
                with pg.session() as s:
                    allocations.release(s, c.uuid)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=churn) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert errors == []
    assert _usage(pg, rp) == {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}


def test_write_runs_a_deadlock_victim_again(pg: Database) -> None:
    """Two multi-provider transactions (like two scheduler batches) take two providers in
    opposite orders: PostgreSQL kills one as a deadlock, ``write`` runs it again, and both
    end with their claims made, nothing twice."""
    a, b = _provider(pg, "rp-a"), _provider(pg, "rp-b")
    both_hold_one = threading.Barrier(2, timeout=10)
    runs = {"first": 0, "second": 0}
    errors: list[BaseException] = []

    def batch(name: str, order: list[str], consumers: list[allocations.ConsumerRef]) -> None:
        def unit(s: Session) -> None:
            runs[name] += 1
            allocations.claim(s, consumers[0], {order[0]: SMALL})
            if runs[name] == 1:
                both_hold_one.wait()
            allocations.claim(s, consumers[1], {order[1]: SMALL})

        try:
            pg.write(unit)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=batch, args=("first", [a, b], [_consumer(), _consumer()])),
        threading.Thread(target=batch, args=("second", [b, a], [_consumer(), _consumer()])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(runs.values()) == [1, 2]  # exactly one victim, run once more
    assert _usage(pg, a) == _usage(pg, b) == {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 2}


def test_write_does_not_run_other_errors_again(pg: Database) -> None:
    calls: list[int] = []
    c = _consumer()
    rp = _provider(pg, "rp-dup")
    with pg.session() as s:
        allocations.claim(s, c, {rp: SMALL})

    def unit(s: Session) -> Any:
        calls.append(1)
        return s.execute(
            text(
                "INSERT INTO consumers (uuid, project_id, user_id, consumer_type, generation, "
                "created_at, updated_at) VALUES (:u, 'p', 'u', 'INSTANCE', 0, now(), now())"
            ),
            {"u": c.uuid},
        )

    with pytest.raises(IntegrityError):
        pg.write(unit)
    assert calls == [1]
