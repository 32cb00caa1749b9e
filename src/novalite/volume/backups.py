"""Cinder volume backups: a full copy of a volume's data under ``<data_dir>/backups``.

Create: the volume must be ``available`` (or ``in-use`` with ``force``); the backup row is written
``creating`` and the volume goes ``backing-up`` in the caller's transaction; ``finish_backup``
copies the data (from the snapshot when one is named) outside any transaction, then the backup
is ``available`` and the volume back to its previous status. Restore: to a new volume (created
``restoring-backup`` with the backup's size, quota checked) or to an existing ``available`` one at
least as large; the backup is ``restoring`` meanwhile. Delete: ``available`` or ``error`` only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.volume import Volume, VolumeBackup, VolumeSnapshot
from novalite.errors import BadRequest, NotFound
from novalite.volume import quotas
from novalite.volume.records import create_volume, get_volume_row, invalid_volume
from novalite.volume.snapshots import get_snapshot_row
from novalite.volume.storage import delete_location, storage_for

CONTAINER = "volumebackups"  # Cinder's default backup container name


def backup_not_found(backup_id: str) -> NotFound:
    return NotFound(f"Backup {backup_id} could not be found.", kind="BackupNotFound")


def invalid_backup(reason: str) -> BadRequest:
    return BadRequest(f"Invalid backup: {reason}", kind="InvalidBackup")


def get_backup_row(s: Session, ctx: RequestContext, backup_id: str) -> VolumeBackup:
    backup = s.get(VolumeBackup, backup_id) if len(backup_id) <= 36 else None
    if backup is None or not ctx.can_access_project(backup.project_id):
        raise backup_not_found(backup_id)
    return backup


def visible_backups(s: Session, ctx: RequestContext, *, all_projects: bool = False) -> list[VolumeBackup]:
    q = select(VolumeBackup).order_by(VolumeBackup.created_at.desc(), VolumeBackup.id.desc())
    if not (ctx.is_admin and all_projects):
        q = q.where(VolumeBackup.project_id == ctx.project_id)
    return list(s.scalars(q))


def create_backup(
    s: Session, ctx: RequestContext, volume_id: str, *, force: bool, fields: dict[str, Any]
) -> VolumeBackup:
    """Write the backup row (``creating``) and mark the volume ``backing-up``. ``fields``: name,
    description, container, snapshot_id, metadata, incremental."""
    vol = get_volume_row(s, ctx, volume_id)
    snapshot = None
    if fields.get("snapshot_id"):
        snapshot = get_snapshot_row(s, ctx, fields["snapshot_id"])
        if snapshot.volume_id != vol.id:
            raise invalid_volume(f"Snapshot {snapshot.id} is not a snapshot of volume {vol.id}.")
        if snapshot.status != "available":
            raise BadRequest(
                f"Invalid snapshot: Snapshot to be backed up must be available, but the current status "
                f'is "{snapshot.status}".',
                kind="InvalidSnapshot",
            )
    elif vol.status not in ("available", "in-use"):
        raise invalid_volume(
            f'Volume to be backed up must be available or in-use, but the current status is "{vol.status}".'
        )
    elif vol.status == "in-use" and not force:
        raise invalid_volume("Backing up an in-use volume must use the force flag.")
    quotas.check_new_backup(s, vol.project_id, vol.size)
    backup = VolumeBackup(
        name=fields.get("name"),
        description=fields.get("description"),
        project_id=vol.project_id,
        user_id=ctx.user_id,
        volume_id=vol.id,
        snapshot_id=snapshot.id if snapshot else None,
        size=vol.size,
        status="creating",
        container=fields.get("container") or CONTAINER,
        availability_zone=vol.availability_zone,
        backup_metadata=dict(fields.get("metadata") or {}),
        data_timestamp=snapshot.created_at if snapshot else utcnow(),
    )
    s.add(backup)
    if snapshot is None:
        vol.status = "backing-up"
    s.flush()
    return backup


def finish_backup(runtime: Any, backup_id: str) -> None:
    """Copy the data of a ``creating`` backup, then mark it available (or error) and give the volume
    its status back."""
    with runtime.db.reader() as s:
        backup = s.get(VolumeBackup, backup_id)
        if backup is None or backup.status != "creating":
            return
        if backup.snapshot_id:
            snap = s.get(VolumeSnapshot, backup.snapshot_id)
            source = snap.location if snap is not None else None
        else:
            vol = s.get(Volume, backup.volume_id)
            source = vol.location if vol is not None else None
    storage = storage_for(runtime)
    try:
        location, status = storage.copy_out("backup", backup_id, source), "available"
    except OSError:
        location, status = None, "error"
    with runtime.db.session() as s:
        backup = s.get(VolumeBackup, backup_id)
        vol = s.get(Volume, backup.volume_id) if backup is not None else None
        if backup is None or backup.status != "creating":
            delete_location(location)
            return
        backup.status, backup.location = status, location
        backup.fail_reason = None if status == "available" else "The backup could not be written."
        if vol is not None and vol.status == "backing-up":
            vol.status = "in-use" if vol.attach_status == "attached" else "available"


def delete_backup(runtime: Any, ctx: RequestContext, backup_id: str) -> None:
    with runtime.db.session() as s:
        backup = get_backup_row(s, ctx, backup_id)
        if backup.status not in ("available", "error"):
            raise invalid_backup("Backup status must be available or error")
        location = backup.location
        s.delete(backup)
    delete_location(location)


def start_restore(s: Session, ctx: RequestContext, backup_id: str, fields: dict[str, Any]) -> Volume:
    """The backup goes ``restoring`` and the target volume (a new one, or ``fields['volume_id']``)
    ``restoring-backup``; returns the target volume."""
    backup = get_backup_row(s, ctx, backup_id)
    if backup.status != "available":
        raise invalid_backup("Backup status must be available")
    if fields.get("volume_id"):
        vol = get_volume_row(s, ctx, fields["volume_id"])
        if vol.status != "available":
            raise invalid_volume(
                f"Volume to be restored to must be available, but the current status is {vol.status}."
            )
        if vol.size < backup.size:
            raise invalid_volume(
                f"volume size {vol.size} is too small to restore backup of size {backup.size}."
            )
    else:
        name = fields.get("name") or f"restore_backup_{backup.id}"
        vol = create_volume(s, ctx, {"size": backup.size, "name": name})
    vol.status = "restoring-backup"
    backup.status = "restoring"
    backup.restore_volume_id = vol.id
    s.flush()
    return vol


def finish_restore(runtime: Any, backup_id: str) -> None:
    """Copy the backup's data into its target volume; both end ``available`` (the volume
    ``error_restoring`` when the copy fails)."""
    with runtime.db.reader() as s:
        backup = s.get(VolumeBackup, backup_id)
        if backup is None or backup.status != "restoring" or backup.restore_volume_id is None:
            return
        vol = s.get(Volume, backup.restore_volume_id)
        if vol is None:
            return
        volume_id, source, size, target = vol.id, backup.location, vol.size, vol.location
    storage = storage_for(runtime)
    try:
        if target is None:
            target = storage.create_from_volume(volume_id, size, source)
        else:
            storage.copy_into(target, source, size)
        status = "available"
    except OSError:
        status = "error_restoring"
    with runtime.db.session() as s:
        backup = s.get(VolumeBackup, backup_id)
        vol = s.get(Volume, volume_id)
        if backup is not None and backup.status == "restoring":
            backup.status = "available"
            backup.restore_volume_id = None
        if vol is not None and vol.status == "restoring-backup":
            vol.status = status
            if vol.location is None:
                vol.location = target
            vol.launched_at = vol.launched_at or utcnow()
