"""The volumes of one instance, for the compute agent: at build time, turn the instance's
block device mappings with ``destination_type: volume`` into attached volumes; at delete
time, detach them and delete those marked ``delete_on_termination``.

BDM sources handled: ``volume`` (an existing volume of the instance's project),
``image`` (a new volume holding the image), ``snapshot`` (a new volume holding the volume
snapshot's data), ``blank`` (a new empty volume). Everything runs in the caller's transaction, so
a failure leaves no half-attached volume behind. Without a ``runtime`` the storage is the
storage registered for the session's database (``storage_for_session``) is used, and the
records-only fake when there is none.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance
from novalite.db.models.volume import Volume, VolumeAttachment, VolumeSnapshot
from novalite.errors import BadRequest
from novalite.image.service import get_image
from novalite.volume import attachments, records
from novalite.volume.storage import (
    RecordsOnlyStorage,
    VolumeStorage,
    delete_location,
    storage_for,
    storage_for_session,
)

DEVICE_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _owner(s: Session, instance_uuid: str) -> RequestContext:
    inst = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
    if inst is None:
        raise BadRequest(f"Instance {instance_uuid} could not be found.", kind="InstanceNotFound")
    return RequestContext(user_id=inst.user_id, project_id=inst.project_id, roles=("member",))


def _storage(runtime: Any, s: Session) -> tuple[VolumeStorage, bool]:
    """The storage to use, and whether it is the configured one (not the fallback fake)."""
    if runtime is not None:
        return storage_for(runtime), True
    found = storage_for_session(s)
    return (found, True) if found is not None else (RecordsOnlyStorage(), False)


def _new_volume(s: Session, ctx: RequestContext, bdm: dict[str, Any], storage: VolumeStorage) -> Volume:
    size = int(bdm.get("volume_size") or 0) or None
    fields: dict[str, Any] = {"size": size, "volume_type": bdm.get("volume_type"), "name": ""}
    image_path, source = None, bdm.get("source_type")
    if source == "image":
        fields["imageRef"] = bdm.get("image_id")
        image = get_image(s, ctx, str(bdm.get("image_id")))
        image_path = image.path if image is not None else None
    if source == "snapshot":
        fields["snapshot_id"] = str(bdm.get("snapshot_id") or "")
    vol = records.create_volume(s, ctx, fields)
    if source == "image":
        vol.location = storage.create_from_image(vol.id, vol.size, image_path)
    elif source == "snapshot":
        snap = s.get(VolumeSnapshot, vol.snapshot_id) if vol.snapshot_id else None
        vol.location = storage.create_from_volume(vol.id, vol.size, snap.location if snap else None)
    else:
        vol.location = storage.create_blank(vol.id, vol.size)
    vol.status, vol.launched_at = "available", utcnow()
    return vol


def _device(bdm: dict[str, Any], index: int) -> str:
    name = bdm.get("device_name")
    return str(name) if name else f"/dev/vd{DEVICE_LETTERS[min(index, 25)]}"


def attach_for_instance(
    s: Session,
    *,
    instance_uuid: str,
    host: str,
    block_device_mapping: list[dict[str, Any]],
    runtime: Any = None,
) -> list[dict[str, Any]]:
    """Create/attach the instance's volumes; returns one entry per volume BDM:
    volume_id, attachment_id, device_name, boot_index, delete_on_termination, connection_info."""
    ctx = _owner(s, instance_uuid)
    storage, _ = _storage(runtime, s)
    out: list[dict[str, Any]] = []
    volume_bdms = [b for b in block_device_mapping if b.get("destination_type") == "volume"]
    for index, bdm in enumerate(
        sorted(
            volume_bdms,
            key=lambda b: (
                b.get("boot_index") is None or b.get("boot_index", 0) < 0,
                b.get("boot_index") or 0,
            ),
        )
    ):
        source = bdm.get("source_type")
        if source == "volume":
            volume_id = str(bdm.get("volume_id") or "")
            if records.get_volume(s, ctx, volume_id) is None:
                raise BadRequest(
                    f"Block Device Mapping is Invalid: failed to get volume {volume_id}.",
                    kind="InvalidBDMVolume",
                )
        else:
            volume_id = _new_volume(s, ctx, bdm, storage).id
        delete = bool(bdm.get("delete_on_termination") or False)  # Nova's default: keep the volume
        device = _device(bdm, index)
        attachment_id = attachments.reserve_volume(s, ctx, volume_id, instance_uuid)
        info = attachments.attach_volume(s, ctx, attachment_id, host=host, mountpoint=device)
        att = s.get(VolumeAttachment, attachment_id)
        assert att is not None
        att.delete_on_termination = delete
        out.append(
            {
                "volume_id": volume_id,
                "attachment_id": attachment_id,
                "device_name": device,
                "boot_index": bdm.get("boot_index"),
                "delete_on_termination": delete,
                "connection_info": info,
            }
        )
    s.flush()
    return out


def _has_snapshots(s: Session, volume_id: str) -> bool:
    """Cinder refuses to delete a volume with snapshots: Nova logs it and the volume stays."""
    q = select(VolumeSnapshot.id).where(VolumeSnapshot.volume_id == volume_id)
    return s.scalars(q).first() is not None


def detach_for_instance(s: Session, *, instance_uuid: str, runtime: Any = None) -> list[str]:
    """Detach every volume of the instance; delete the ones marked delete_on_termination.
    Returns the ids of the deleted volumes. Safe to call twice."""
    storage, configured = _storage(runtime, s)
    deleted: list[str] = []
    system = RequestContext.system()
    q = select(VolumeAttachment).where(VolumeAttachment.instance_uuid == instance_uuid)
    for att in list(s.scalars(q)):
        volume_id, delete = att.volume_id, att.delete_on_termination
        attachments.delete_attachment(s, system, att.id)
        vol = s.get(Volume, volume_id)
        if delete and vol is not None and vol.status == "available" and not _has_snapshots(s, volume_id):
            storage.delete(vol.id, vol.location)
            if not configured:  # no storage at hand: remove the data by its location all the same
                delete_location(vol.location)
            s.delete(vol)
            deleted.append(volume_id)
    s.flush()
    return deleted
