"""Cinder volume snapshots: the records in the caller's transaction and the two-step create.

Status flow: ``creating`` -> ``available`` (or ``error``) -> ``deleting`` -> gone. As with
volumes, ``create_snapshot`` writes the row inside the caller's transaction (after the quota
check) and ``finish_snapshot`` copies the data outside any transaction. A volume with snapshots
cannot be deleted unless the delete cascades (``delete_volume_snapshots``); a new volume can be
made from an ``available`` snapshot (``records.create_volume`` with ``snapshot_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.volume import Volume, VolumeSnapshot
from novalite.errors import BadRequest, NotFound
from novalite.volume import quotas
from novalite.volume.records import get_volume_row, invalid_volume
from novalite.volume.storage import delete_location, storage_for

DELETABLE = ("available", "error", "error_deleting")


@dataclass(frozen=True)
class SnapshotInfo:
    """What the compute side reads of a snapshot (a boot from a volume snapshot)."""

    id: str
    volume_id: str
    size: int
    status: str


def snapshot_not_found(snapshot_id: str) -> NotFound:
    return NotFound(f"Snapshot {snapshot_id} could not be found.", kind="SnapshotNotFound")


def invalid_snapshot(reason: str) -> BadRequest:
    return BadRequest(f"Invalid snapshot: {reason}", kind="InvalidSnapshot")


def get_snapshot_row(s: Session, ctx: RequestContext, snapshot_id: str) -> VolumeSnapshot:
    snap = s.get(VolumeSnapshot, snapshot_id) if len(snapshot_id) <= 36 else None
    if snap is None or not ctx.can_access_project(snap.project_id):
        raise snapshot_not_found(snapshot_id)
    return snap


def get_snapshot(s: Session, ctx: RequestContext, snapshot_id: str) -> SnapshotInfo | None:
    """The snapshot if ``ctx`` may see it, else None."""
    snap = s.get(VolumeSnapshot, snapshot_id) if len(snapshot_id) <= 36 else None
    if snap is None or not ctx.can_access_project(snap.project_id):
        return None
    return SnapshotInfo(id=snap.id, volume_id=snap.volume_id, size=snap.size, status=snap.status)


def visible_snapshots(s: Session, ctx: RequestContext, *, all_projects: bool = False) -> list[VolumeSnapshot]:
    q = select(VolumeSnapshot).order_by(VolumeSnapshot.created_at.desc(), VolumeSnapshot.id.desc())
    if not (ctx.is_admin and all_projects):
        q = q.where(VolumeSnapshot.project_id == ctx.project_id)
    return list(s.scalars(q))


def volume_snapshots(s: Session, volume_id: str) -> list[VolumeSnapshot]:
    return list(s.scalars(select(VolumeSnapshot).where(VolumeSnapshot.volume_id == volume_id)))


def create_snapshot(
    s: Session, ctx: RequestContext, volume_id: str, *, force: bool, fields: dict[str, Any]
) -> VolumeSnapshot:
    """Write the snapshot row (``creating``). ``force`` lets an in-use volume be snapshotted
    (from 3.66 it is always allowed, as in Cinder). ``fields``: name, description, metadata."""
    vol = get_volume_row(s, ctx, volume_id)
    if vol.status != "available" and not (force and vol.status == "in-use"):
        raise invalid_volume(
            f"Volume {vol.id} status must be available, but current status is: {vol.status}."
        )
    quotas.check_new_snapshot(s, vol.project_id, vol.size)
    snap = VolumeSnapshot(
        name=fields.get("name"),
        description=fields.get("description"),
        project_id=vol.project_id,
        user_id=ctx.user_id,
        volume_id=vol.id,
        size=vol.size,
        status="creating",
        snapshot_metadata=dict(fields.get("metadata") or {}),
    )
    s.add(snap)
    s.flush()
    return snap


def finish_snapshot(runtime: Any, snapshot_id: str) -> None:
    """Copy the volume's data for a ``creating`` snapshot, then mark it available (or error)."""
    with runtime.db.reader() as s:
        snap = s.get(VolumeSnapshot, snapshot_id)
        if snap is None or snap.status != "creating":
            return
        vol = s.get(Volume, snap.volume_id)
        source = vol.location if vol is not None else None
    storage = storage_for(runtime)
    try:
        location, status = storage.copy_out("snapshot", snapshot_id, source), "available"
    except OSError:
        location, status = None, "error"
    with runtime.db.session() as s:
        snap = s.get(VolumeSnapshot, snapshot_id)
        if snap is None or snap.status != "creating":
            delete_location(location)
            return
        snap.status, snap.location = status, location


def check_deletable(snap: VolumeSnapshot) -> None:
    if snap.status not in DELETABLE:
        raise invalid_snapshot(
            "Volume Snapshot status must be available or error and must not be part of a group."
        )


def delete_snapshot(runtime: Any, ctx: RequestContext, snapshot_id: str) -> None:
    with runtime.db.session() as s:
        snap = get_snapshot_row(s, ctx, snapshot_id)
        check_deletable(snap)
        location = snap.location
        s.delete(snap)
    delete_location(location)


def delete_volume_snapshots(s: Session, volume_id: str) -> list[str | None]:
    """A cascading volume delete: its snapshots' rows go (all must be deletable); returns their
    data locations for the caller to remove after the commit."""
    snaps = volume_snapshots(s, volume_id)
    for snap in snaps:
        check_deletable(snap)
    for snap in snaps:
        s.delete(snap)
    return [snap.location for snap in snaps]


def source_for_volume(
    s: Session, ctx: RequestContext, snapshot_id: str, size: int | None
) -> tuple[VolumeSnapshot, int]:
    """The snapshot a new volume starts from, and the new volume's size (default: the snapshot's)."""
    snap = get_snapshot_row(s, ctx, snapshot_id)
    if snap.status != "available":
        raise invalid_snapshot("Originating snapshot status must be one of 'available' values")
    size = size if size is not None else snap.size
    if size < snap.size:
        raise BadRequest(
            f"Invalid input received: Volume size '{size}'GB cannot be smaller than the snapshot size "
            f"{snap.size}GB. They must be >= original snapshot size.",
            kind="InvalidInput",
        )
    return snap, size
