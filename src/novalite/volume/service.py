"""Volumes: the operations that own their units of work and the storage (provision a new
volume, extend, delete, the seed), plus the compute agent's entry points ``attach_for_instance`` /
``detach_for_instance`` (``instance_volumes``). The records in the caller's transaction (lookups,
errors, types, the new volume's row) are ``records``.

Status flow: ``creating`` -> ``available`` (or ``error``) -> ``reserved``/``attaching`` ->
``in-use`` -> ``detaching`` -> ``available`` -> ``deleting``. Creation is two steps so the
API can answer 202 while the data is copied: ``records.create_volume`` writes the row (creating)
inside the caller's transaction, ``finish_create`` provisions storage outside any
transaction and marks the row available (or error). ``create_volume_from_image`` does both,
for callers that need the volume ready (the compute agent's boot-from-volume).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.volume import Volume, VolumeAttachment, VolumeBackup, VolumeSnapshot
from novalite.errors import BadRequest
from novalite.image.service import get_image
from novalite.volume import instance_volumes, quotas, records, snapshots
from novalite.volume.records import (
    VolumeInfo,
    create_volume,
    ensure_default_type,
    get_volume_row,
    info,
    invalid_volume,
)
from novalite.volume.snapshots import delete_volume_snapshots
from novalite.volume.storage import delete_location, storage_for

# what the compute side and the create pipeline reach as ``volume.service.<name>``
attach_for_instance = instance_volumes.attach_for_instance
detach_for_instance = instance_volumes.detach_for_instance
get_volume = records.get_volume
get_snapshot = snapshots.get_snapshot

DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")


def finish_create(runtime: Any, volume_id: str) -> None:
    """Provision storage for a ``creating`` volume, then mark it available (or error)."""
    with runtime.db.reader() as s:
        vol = s.get(Volume, volume_id)
        if vol is None or vol.status != "creating":
            return
        size, image_id = vol.size, vol.image_id
        source = s.get(Volume, vol.source_volid) if vol.source_volid else None
        source_location = source.location if source is not None else None
        if vol.snapshot_id:
            snap = s.get(VolumeSnapshot, vol.snapshot_id)
            source_location = snap.location if snap is not None else None
        image_path = None
        if image_id:
            image = get_image(s, RequestContext.system(), image_id)
            image_path = image.path if image is not None else None
    storage = storage_for(runtime)
    try:
        if vol.source_volid or vol.snapshot_id:
            location = storage.create_from_volume(volume_id, size, source_location)
        elif image_id:
            location = storage.create_from_image(volume_id, size, image_path)
        else:
            location = storage.create_blank(volume_id, size)
        status = "available"
    except OSError:
        location, status = None, "error"
    with runtime.db.session() as s:
        vol = s.get(Volume, volume_id)
        if vol is None or vol.status != "creating":
            storage.delete(volume_id, location)
            return
        vol.status, vol.location = status, location
        vol.launched_at = utcnow() if status == "available" else None


def create_volume_from_image(
    runtime: Any, ctx: RequestContext, *, image_id: str, size: int | None, name: str | None = None
) -> VolumeInfo:
    """Create a volume holding ``image_id`` and wait for it: the compute agent's boot-from-volume step."""
    with runtime.db.serialized(quotas.quota_lock(ctx.project_id)) as s:
        volume_id = create_volume(s, ctx, {"size": size, "imageRef": image_id, "name": name}).id
    finish_create(runtime, volume_id)
    with runtime.db.reader() as s:
        return info(s, s.get(Volume, volume_id))  # type: ignore[arg-type]


def update_volume(vol: Volume, changes: dict[str, Any]) -> None:
    for key in ("name", "description"):
        if key in changes:
            setattr(vol, key, changes[key])
    if "metadata" in changes:
        vol.volume_metadata = dict(changes["metadata"] or {})


def extend_volume(runtime: Any, s: Session, vol: Volume, new_size: int) -> None:
    if vol.status != "available":
        raise invalid_volume(
            f"Volume {vol.id} status must be available to extend, but current status is: {vol.status}."
        )
    if new_size <= vol.size:
        raise BadRequest(
            f"Invalid input received: New size for extend must be greater than current size. "
            f"(current: {vol.size}, extended: {new_size}).",
            kind="InvalidInput",
        )
    quotas.check_gigabytes(s, vol.project_id, new_size - vol.size)
    storage_for(runtime).extend(vol.id, vol.location, new_size)
    vol.size = new_size


def delete_volume(runtime: Any, ctx: RequestContext, volume_id: str, *, cascade: bool = False) -> None:
    """Cinder's delete: only detached volumes in a final state without snapshots (``cascade``: its
    snapshots go too); data removed, row gone."""
    with runtime.db.session() as s:
        vol = get_volume_row(s, ctx, volume_id)
        attached = s.scalars(select(VolumeAttachment.id).where(VolumeAttachment.volume_id == vol.id)).first()
        snapshots = s.scalars(select(VolumeSnapshot.id).where(VolumeSnapshot.volume_id == vol.id)).first()
        if vol.status not in DELETABLE or attached is not None or (snapshots is not None and not cascade):
            raise invalid_volume(
                "Volume status must be available or error or error_restoring or error_extending "
                "or error_managing and must not be migrating, attached, belong to a group, have "
                "snapshots, awaiting a transfer, or be disassociated from snapshots after volume "
                "transfer."
            )
        snapshot_locations = delete_volume_snapshots(s, vol.id) if cascade else []
        vol.status = "deleting"
        location = vol.location
    for snapshot_location in snapshot_locations:
        delete_location(snapshot_location)
    storage_for(runtime).delete(volume_id, location)
    with runtime.db.session() as s:
        vol = s.get(Volume, volume_id)
        if vol is not None:
            s.delete(vol)


def seed(runtime: Any, s: Session, ids: dict[str, str]) -> None:
    """The ``__DEFAULT__`` volume type, and the runtime's storage registered for its database.

    Runs at every start: a volume, snapshot or backup still ``creating`` lost its copy task with
    the previous process, so it becomes ``error`` (deletable) instead of staying stuck; a volume
    left ``backing-up`` gets its status back, one left ``restoring-backup`` is ``error_restoring``
    and its backup ``available`` again.
    """
    ensure_default_type(s)
    storage_for(runtime)
    for vol in s.scalars(
        select(Volume).where(Volume.status.in_(("creating", "backing-up", "restoring-backup")))
    ):
        if vol.status == "backing-up":
            vol.status = "in-use" if vol.attach_status == "attached" else "available"
        else:
            vol.status = "error" if vol.status == "creating" else "error_restoring"
    for snap in s.scalars(select(VolumeSnapshot).where(VolumeSnapshot.status == "creating")):
        snap.status = "error"
    for backup in s.scalars(select(VolumeBackup).where(VolumeBackup.status.in_(("creating", "restoring")))):
        backup.status = "error" if backup.status == "creating" else "available"
        backup.restore_volume_id = None
