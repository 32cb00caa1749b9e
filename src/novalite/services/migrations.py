"""Migration records (§1.2 of the move operations): create, find, list, and move the placement
consumer of a server's allocation between the instance and its migration (§1.3).

During a move the migration's uuid holds the source host's allocation and the instance the
destination's; ``hand_to_migration`` / ``hand_back`` are the two directions of Nova's
``move_allocations``, each one savepoint of the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from novalite.db.base import savepoint, utcnow
from novalite.db.models.catalog import Flavor
from novalite.db.models.compute import Instance, Migration
from novalite.errors import BadRequest
from novalite.placement import allocations


class MigrationType:
    COLD = "migration"
    RESIZE = "resize"
    LIVE = "live-migration"


# live migrations Nova calls in progress (``migration_get_in_progress_by_instance``)
LIVE_IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")


def _flavor_db_id(s: Session, flavorid: str) -> int | None:
    return s.scalar(select(Flavor.id).where(Flavor.flavorid == flavorid))


def new_migration(
    s: Session,
    inst: Instance,
    *,
    migration_type: str,
    status: str,
    new_flavor: dict[str, Any],
) -> Migration:
    """A migration of ``inst`` from its current host (the caller sets the destination later)."""
    old_flavor = dict(inst.flavor or {})
    row = Migration(
        uuid=str(uuidlib.uuid4()),
        instance_uuid=inst.uuid,
        migration_type=migration_type,
        status=status,
        source_compute=inst.host,
        source_node=inst.node,
        old_flavor=old_flavor,
        new_flavor=new_flavor,
        old_instance_type_id=_flavor_db_id(s, str(old_flavor.get("flavorid") or inst.flavor_id)),
        new_instance_type_id=_flavor_db_id(s, str(new_flavor.get("flavorid") or inst.flavor_id)),
        old_vm_state=inst.vm_state,
        user_id=inst.user_id,
        project_id=inst.project_id,
    )
    s.add(row)
    s.flush()
    return row


def set_status(row: Migration, status: str) -> None:
    row.status, row.updated_at = status, utcnow()


def latest(s: Session, instance_uuid: str, *, statuses: Sequence[str] | None = None) -> Migration | None:
    q = select(Migration).where(Migration.instance_uuid == instance_uuid)
    if statuses is not None:
        q = q.where(Migration.status.in_(list(statuses)))
    return s.scalars(q.order_by(Migration.created_at.desc(), Migration.id.desc())).first()


def by_uuid(s: Session, migration_uuid: str) -> Migration | None:
    return s.scalars(select(Migration).where(Migration.uuid == migration_uuid)).first()


# -- placement: who holds the source allocation ----------------------------------------------------


def hand_to_migration(s: Session, row: Migration) -> None:
    """Step 1 of a move: the instance's allocation becomes the migration's (nothing held: skip)."""
    held = allocations.allocations_of(s, row.instance_uuid)
    if not held:
        return
    with savepoint(s):
        allocations.release(s, row.instance_uuid)
        allocations.claim(s, allocations.ConsumerRef(row.uuid, row.project_id, row.user_id), held)


def hand_back(s: Session, row: Migration) -> None:
    """Revert / failure: the instance's destination allocation is dropped and the migration's
    source allocation becomes the instance's again."""
    held = allocations.allocations_of(s, row.uuid)
    if not held:  # never handed over (or handed back already): the instance keeps what it has
        return
    with savepoint(s):
        allocations.release(s, row.instance_uuid)
        allocations.release(s, row.uuid)
        allocations.claim(s, allocations.ConsumerRef(row.instance_uuid, row.project_id, row.user_id), held)


# moves not over yet (they may hold the source allocation)
UNFINISHED = (
    "pre-migrating",
    "accepted",
    "migrating",
    "post-migrating",
    "finished",
    "confirming",
    "reverting",
)


def release_for_deleted(s: Session, instance_uuid: str) -> None:
    """A server deleted during a move: its migrations' allocations are freed too (a finished
    resize counts as confirmed, as Nova confirms it on delete; anything earlier as ``error``)."""
    rows = s.scalars(
        select(Migration).where(Migration.instance_uuid == instance_uuid, Migration.status.in_(UNFINISHED))
    )
    for row in rows:
        allocations.release(s, row.uuid)
        set_status(row, "confirmed" if row.status == "finished" else "error")


def drop_source(s: Session, row: Migration) -> None:
    """Confirm / a finished live migration: the source allocation is freed."""
    allocations.release(s, row.uuid)


# -- listing (GET /os-migrations) ------------------------------------------------------------------


@dataclass(frozen=True)
class MigrationQuery:
    """The filters of GET /os-migrations; ``paged`` from 2.59 (order created_at desc, id desc)."""

    host: str | None = None
    source_compute: str | None = None
    status: str | None = None
    instance_uuid: str | None = None
    migration_type: str | None = None
    project_id: str | None = None
    user_id: str | None = None
    changes_since: dt.datetime | None = None
    changes_before: dt.datetime | None = None
    paged: bool = False
    limit: int | None = None
    marker: str | None = None


def _filtered(q: MigrationQuery) -> Select[Any]:
    stmt = select(Migration)
    if q.host:
        stmt = stmt.where(or_(Migration.source_compute == q.host, Migration.dest_compute == q.host))
    elif q.source_compute:
        stmt = stmt.where(Migration.source_compute == q.source_compute)
    for column, value in (
        (Migration.status, q.status),
        (Migration.instance_uuid, q.instance_uuid),
        (Migration.migration_type, q.migration_type),
        (Migration.project_id, q.project_id),
        (Migration.user_id, q.user_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if q.changes_since is not None:
        stmt = stmt.where(Migration.updated_at >= q.changes_since)
    if q.changes_before is not None:
        stmt = stmt.where(Migration.updated_at <= q.changes_before)
    return stmt


def list_migrations(s: Session, q: MigrationQuery) -> list[Migration]:
    stmt = _filtered(q)
    if not q.paged:
        return list(s.scalars(stmt.order_by(Migration.id)))
    stmt = stmt.order_by(Migration.created_at.desc(), Migration.id.desc())
    if q.marker:
        marker = by_uuid(s, q.marker)
        if marker is None:
            raise BadRequest(f"Marker {q.marker} could not be found.", kind="MarkerNotFound")
        stmt = stmt.where(
            or_(
                Migration.created_at < marker.created_at,
                (Migration.created_at == marker.created_at) & (Migration.id < marker.id),
            )
        )
    if q.limit is not None:
        stmt = stmt.limit(q.limit)
    return list(s.scalars(stmt))


def live_in_progress(s: Session, instance_uuid: str) -> list[Migration]:
    return list(
        s.scalars(
            select(Migration)
            .where(
                Migration.instance_uuid == instance_uuid,
                Migration.migration_type == MigrationType.LIVE,
                Migration.status.in_(LIVE_IN_PROGRESS),
            )
            .order_by(Migration.id)
        )
    )


def by_id(s: Session, migration_id: int) -> Migration | None:
    return s.get(Migration, migration_id)
