"""``db.precompiled.Precompiled`` writes what ``Connection.execute`` of the same statement would:
the same values read back through the ORM (datetimes, booleans), Python-side defaults and
``onupdate`` columns filled in, literals compiled into the statement, rows from RETURNING, in
the session's transaction. SQLite always; PostgreSQL when reachable (skips loudly otherwise)."""

from __future__ import annotations

import datetime as dt
from typing import cast

import pytest
from sqlalchemy import Table, bindparam, insert, select, update

from novalite.db.base import Database
from novalite.db.models.compute import Instance
from novalite.db.models.placement import Consumer, ResourceProvider
from novalite.db.precompiled import Precompiled

_RP = cast(Table, ResourceProvider.__table__)
_CONSUMERS = cast(Table, Consumer.__table__)
_INSTANCES = cast(Table, Instance.__table__)

ADD_CONSUMER = Precompiled(insert(_CONSUMERS))
BUMP = Precompiled(
    update(_RP)
    .where(_RP.c.name == bindparam("name"))
    .values(generation=_RP.c.generation + 1)
    .returning(_RP.c.id, _RP.c.generation)
)
TOUCH = Precompiled(
    update(_INSTANCES)
    .where(_INSTANCES.c.uuid == bindparam("uuid"), _INSTANCES.c.deleted.is_(False))
    .values(updated_at=bindparam("now"))
)


def test_insert_fills_python_defaults_and_reads_back_like_core(db: Database) -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with db.session() as s:
        ADD_CONSUMER.run_many(
            s,
            [
                {"uuid": "c1", "project_id": "p", "user_id": "u"},
                {"uuid": "c2", "project_id": "p", "user_id": "u"},
            ],
        )
        s.connection().execute(insert(_CONSUMERS), {"uuid": "c3", "project_id": "p", "user_id": "u"})
    with db.reader() as s:
        rows = {c.uuid: c for c in s.scalars(select(Consumer))}
    assert set(rows) == {"c1", "c2", "c3"}
    for c in rows.values():
        assert (c.consumer_type, c.generation) == ("INSTANCE", 0)  # column defaults
        assert isinstance(c.created_at, dt.datetime) and c.created_at >= before
        assert c.updated_at == c.created_at or c.updated_at >= before


def test_update_with_literal_onupdate_and_returning(db: Database) -> None:
    with db.session() as s:
        s.add(ResourceProvider(name="node-1", generation=4))
    with db.reader() as s:
        old = s.scalars(select(ResourceProvider)).one().updated_at
    with db.session() as s:
        row = BUMP.first(s, {"name": "node-1"})
        assert row is not None and row[1] == 5  # "generation + 1": the 1 is compiled in
        assert BUMP.first(s, {"name": "no-such-node"}) is None
    with db.reader() as s:
        rp = s.scalars(select(ResourceProvider)).one()
    assert (rp.id, rp.generation) == (row[0], 5)
    assert rp.updated_at >= old  # onupdate column computed in Python, as Core would


def test_boolean_and_datetime_parameters_are_processed(db: Database) -> None:
    stamp = dt.datetime(2026, 1, 2, 3, 4, 5, 678000)
    with db.session() as s:
        for uuid, deleted in (("i1", False), ("i2", True)):
            s.add(
                Instance(
                    uuid=uuid,
                    project_id="p",
                    user_id="u",
                    display_name=uuid,
                    reservation_id="r-1",
                    flavor_id="1",
                    flavor={},
                    memory_mb=64,
                    vcpus=1,
                    root_gb=1,
                    vm_state="building",
                    deleted=deleted,
                )
            )
    with db.session() as s:
        assert TOUCH.run(s, {"uuid": "i1", "now": stamp}) == 1
        assert TOUCH.run(s, {"uuid": "i2", "now": stamp}) == 0  # deleted IS false
    with db.reader() as s:
        assert s.scalar(select(Instance.updated_at).where(Instance.uuid == "i1")) == stamp
        # what Core wrote and what Precompiled wrote compare equal in SQL too
        assert s.scalar(select(Instance.uuid).where(Instance.updated_at == stamp)) == "i1"


def test_runs_in_the_sessions_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError):
        with db.session() as s:
            ADD_CONSUMER.run(s, {"uuid": "gone", "project_id": "p", "user_id": "u"})
            raise RuntimeError("rolled back")
    with db.reader() as s:
        assert s.scalars(select(Consumer.uuid)).all() == []


def test_expanding_in_is_refused() -> None:
    stmt = Precompiled(select(_RP.c.id).where(_RP.c.uuid.in_(bindparam("uuids", expanding=True))))
    with pytest.raises(ValueError, match="expanding"):
        stmt._form(Database("sqlite://").engine.dialect)


def test_instance_insert_writes_the_same_row_as_core(db: Database) -> None:
    """The create's own insert (JSON, booleans, None, datetimes, column defaults): column for
    column what ``Connection.execute`` writes for the same parameters."""

    stamp = dt.datetime(2026, 11, 25, 1, 2, 3, 456789)

    def row(uuid: str) -> dict[str, object]:
        return dict(
            uuid=uuid,
            project_id="p",
            user_id="u",
            display_name="vm",
            display_description=None,
            reservation_id="r-1",
            launch_index=0,
            flavor_id="1",
            flavor={"flavorid": "1", "extra_specs": {"hw:cpu_policy": "shared"}},
            memory_mb=512,
            vcpus=1,
            root_gb=1,
            auto_disk_config=True,
            locked=False,
            vm_state="building",
            task_state="scheduling",
            trusted_certs=None,
            security_groups=[{"name": "default"}],
            requested_networks="none",
            system_metadata={"image_min_ram": "0"},
            network_info=[],
            created_at=stamp,
            updated_at=stamp,
        )

    with db.session() as s:
        s.connection().execute(insert(_INSTANCES), [row("core")])
        Precompiled(insert(_INSTANCES)).run_many(s, [row("fast")])
    with db.reader() as s:
        result = s.connection().exec_driver_sql("SELECT * FROM instances ORDER BY uuid")
        names = list(result.keys())
        core, fast = (
            {k: v for k, v in zip(names, r, strict=True) if k not in ("id", "uuid")} for r in result
        )
    assert fast == core
    assert core["auto_disk_config"] in (1, True) and core["hostname"] == ""


def test_driver_errors_are_sqlalchemys_exceptions(db: Database) -> None:
    """A failed statement raises what ``Connection.execute`` would: callers catch
    ``sqlalchemy.exc.IntegrityError`` whichever way the statement ran."""
    from sqlalchemy.exc import IntegrityError

    with db.session() as s:
        ADD_CONSUMER.run(s, {"uuid": "dup", "project_id": "p", "user_id": "u"})
        with pytest.raises(IntegrityError):
            ADD_CONSUMER.run(s, {"uuid": "dup", "project_id": "p", "user_id": "u"})
        s.rollback()
    with pytest.raises(IntegrityError):
        with db.session() as s:
            ADD_CONSUMER.run_many(s, [{"uuid": "twice", "project_id": "p", "user_id": "u"}] * 2)
