"""Volumes: create (blank or from an image), list, update, extend, delete, with Cinder's
checks and messages, plus the functions the compute side calls.

Status flow: ``creating`` -> ``available`` (or ``error``) -> ``reserved``/``attaching`` ->
``in-use`` -> ``detaching`` -> ``available`` -> ``deleting``. Creation is two steps so the
API can answer 202 while the data is copied: ``create_volume`` writes the row (creating)
inside the caller's transaction, ``finish_create`` provisions storage outside any
transaction and marks the row available (or error). ``create_volume_from_image`` does both,
for callers that need the volume ready (the compute agent's boot-from-volume).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.volume import Volume, VolumeAttachment, VolumeType, VolumeTypeAccess
from novalite.errors import BadRequest, NotFound
from novalite.volume import quotas
from novalite.volume.storage import storage_for

DEFAULT_TYPE = "__DEFAULT__"
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
GIB = 1024**3


@dataclass(frozen=True)
class VolumeInfo:
    id: str
    name: str | None
    project_id: str
    size: int
    status: str
    attach_status: str
    bootable: bool
    multiattach: bool
    image_id: str | None
    image_metadata: dict[str, str]
    location: str | None
    attachment_ids: tuple[str, ...]


def volume_not_found(volume_id: str) -> NotFound:
    return NotFound(f"Volume {volume_id} could not be found.", kind="VolumeNotFound")


def invalid_volume(reason: str) -> BadRequest:
    return BadRequest(f"Invalid volume: {reason}", kind="InvalidVolume")


def ensure_default_type(s: Session) -> VolumeType:
    vtype = s.scalars(select(VolumeType).where(VolumeType.name == DEFAULT_TYPE)).first()
    if vtype is None:
        vtype = VolumeType(
            name=DEFAULT_TYPE, description="Default Volume Type", is_public=True, extra_specs={}
        )
        s.add(vtype)
        s.flush()
    return vtype


def type_visible(s: Session, ctx: RequestContext, vtype: VolumeType) -> bool:
    """Public types, and private ones the project was granted (admins see all)."""
    if vtype.is_public or ctx.is_admin:
        return True
    return s.get(VolumeTypeAccess, (vtype.id, ctx.project_id)) is not None


def find_type(s: Session, name_or_id: str | None, ctx: RequestContext | None = None) -> VolumeType:
    if name_or_id is None:
        return ensure_default_type(s)
    vtype = (
        s.get(VolumeType, name_or_id)
        or s.scalars(select(VolumeType).where(VolumeType.name == name_or_id)).first()
    )
    if vtype is None and name_or_id == DEFAULT_TYPE:
        return ensure_default_type(s)
    if vtype is None or ctx is not None and not type_visible(s, ctx, vtype):
        raise NotFound(
            f"Volume type with name {name_or_id} could not be found.", kind="VolumeTypeNotFoundByName"
        )
    return vtype


def info(s: Session, vol: Volume) -> VolumeInfo:
    q = select(VolumeAttachment.id).where(VolumeAttachment.volume_id == vol.id)
    return VolumeInfo(
        id=vol.id,
        name=vol.name,
        project_id=vol.project_id,
        size=vol.size,
        status=vol.status,
        attach_status=vol.attach_status,
        bootable=vol.bootable,
        multiattach=vol.multiattach,
        image_id=vol.image_id,
        image_metadata=dict(vol.image_metadata or {}),
        location=vol.location,
        attachment_ids=tuple(s.scalars(q)),
    )


def visible_volumes(s: Session, ctx: RequestContext, *, all_projects: bool = False) -> list[Volume]:
    q = select(Volume).order_by(Volume.created_at.desc(), Volume.id.desc())
    if not (ctx.is_admin and all_projects):
        q = q.where(Volume.project_id == ctx.project_id)
    return list(s.scalars(q))


def get_volume_row(s: Session, ctx: RequestContext, volume_id: str) -> Volume:
    vol = s.get(Volume, volume_id) if len(volume_id) <= 36 else None
    if vol is None or not ctx.can_access_project(vol.project_id):
        raise volume_not_found(volume_id)
    return vol


def get_volume(s: Session, ctx: RequestContext, volume_id: str) -> VolumeInfo | None:
    """The volume if ``ctx`` may see it, else None."""
    vol = s.get(Volume, volume_id) if len(volume_id) <= 36 else None
    if vol is None or not ctx.can_access_project(vol.project_id):
        return None
    return info(s, vol)


def _image_for(s: Session, ctx: RequestContext, image_id: str, size: int | None) -> tuple[Any, int]:
    from novalite.image.service import get_image

    image = get_image(s, ctx, image_id)
    if image is None:
        raise BadRequest(
            "Invalid image identifier or unable to access requested image.", kind="ImageNotFound"
        )
    if image.status != "active":
        raise BadRequest(f"Invalid input received: Image {image_id} is not active.", kind="InvalidInput")
    image_gb = -(-(image.size or 0) // GIB)
    size = size if size is not None else max(image_gb, image.min_disk, 1)
    if image_gb > size:
        raise BadRequest(
            f"Invalid input received: Size of specified image {image_gb}GB is larger than volume size "
            f"{size}GB.",
            kind="InvalidInput",
        )
    if image.min_disk > size:
        raise BadRequest(
            f"Invalid input received: Volume size {size}GB cannot be smaller than the image minDisk "
            f"size {image.min_disk}GB.",
            kind="InvalidInput",
        )
    return image, size


def _image_metadata(image: Any) -> dict[str, str]:
    meta = {k: str(v) for k, v in image.properties.items()}
    for key in ("disk_format", "container_format", "checksum", "min_ram", "min_disk", "size"):
        value = getattr(image, key, None)
        if value is not None:
            meta[key] = str(value)
    meta.update(image_id=image.id, image_name=image.name or "")
    return meta


def create_volume(s: Session, ctx: RequestContext, fields: dict[str, Any]) -> Volume:
    """Write the volume row (status ``creating``) after the quota and image checks.

    ``fields``: size (int | None), name, description, volume_type, availability_zone, imageRef,
    metadata, multiattach, all already type-checked.
    """
    size, image, source = fields.get("size"), None, None
    if fields.get("snapshot_id"):
        raise NotFound(f"Snapshot {fields['snapshot_id']} could not be found.", kind="SnapshotNotFound")
    if fields.get("imageRef"):
        image, size = _image_for(s, ctx, fields["imageRef"], size)
    if fields.get("source_volid"):
        source = get_volume_row(s, ctx, fields["source_volid"])
        size = size if size is not None else source.size
        if size < source.size:
            raise BadRequest(
                "Invalid input received: Clones currently must be >= original volume size.",
                kind="InvalidInput",
            )
        if source.status not in ("available", "in-use"):
            raise invalid_volume(f"Volume {source.id} status must be available or in-use to clone.")
    if size is None:
        raise BadRequest("Invalid input received: 'size' is a required property", kind="InvalidInput")
    zone = fields.get("availability_zone") or "nova"
    if zone != "nova":
        raise BadRequest(
            f"Invalid input received: Availability zone '{zone}' is invalid.", kind="InvalidInput"
        )
    vtype = find_type(s, fields.get("volume_type"), ctx)
    quotas.check_new_volume(s, ctx.project_id, size)
    vol = Volume(
        name=fields.get("name"),
        description=fields.get("description"),
        project_id=ctx.project_id,
        user_id=ctx.user_id,
        size=size,
        status="creating",
        volume_type_id=vtype.id,
        availability_zone=zone,
        multiattach=bool(fields.get("multiattach")),
        volume_metadata=dict(fields.get("metadata") or {}),
        image_id=image.id if image else None,
        source_volid=source.id if source else None,
        image_metadata=_image_metadata(image)
        if image
        else dict(source.image_metadata or {})
        if source
        else {},
        bootable=image is not None or bool(source and source.bootable),
    )
    s.add(vol)
    s.flush()
    return vol


def finish_create(runtime: Any, volume_id: str) -> None:
    """Provision storage for a ``creating`` volume, then mark it available (or error)."""
    with runtime.db.reader() as s:
        vol = s.get(Volume, volume_id)
        if vol is None or vol.status != "creating":
            return
        size, image_id = vol.size, vol.image_id
        source = s.get(Volume, vol.source_volid) if vol.source_volid else None
        source_location = source.location if source is not None else None
        image_path = None
        if image_id:
            from novalite.image.service import get_image

            image = get_image(s, RequestContext.system(), image_id)
            image_path = image.path if image is not None else None
    storage = storage_for(runtime)
    try:
        if vol.source_volid:
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


def delete_volume(runtime: Any, ctx: RequestContext, volume_id: str) -> None:
    """Cinder's delete: only detached volumes in a final state; data removed, row gone."""
    with runtime.db.session() as s:
        vol = get_volume_row(s, ctx, volume_id)
        attached = s.scalars(select(VolumeAttachment.id).where(VolumeAttachment.volume_id == vol.id)).first()
        if vol.status not in DELETABLE or attached is not None:
            raise invalid_volume(
                "Volume status must be available or error or error_restoring or error_extending "
                "or error_managing and must not be migrating, attached, belong to a group, have "
                "snapshots, awaiting a transfer, or be disassociated from snapshots after volume "
                "transfer."
            )
        vol.status = "deleting"
        location = vol.location
    storage_for(runtime).delete(volume_id, location)
    with runtime.db.session() as s:
        vol = s.get(Volume, volume_id)
        if vol is not None:
            s.delete(vol)


def seed(runtime: Any, s: Session, ids: dict[str, str]) -> None:
    """The ``__DEFAULT__`` volume type, and the runtime's storage registered for its database.

    Runs at every start: a volume still ``creating`` lost its provisioning task with the
    previous process, so it becomes ``error`` (deletable) instead of staying stuck.
    """
    ensure_default_type(s)
    storage_for(runtime)
    for vol in s.scalars(select(Volume).where(Volume.status == "creating")):
        vol.status = "error"


def attach_for_instance(
    s: Session,
    *,
    instance_uuid: str,
    host: str,
    block_device_mapping: list[dict[str, Any]],
    runtime: Any = None,
) -> list[dict[str, Any]]:
    """See ``novalite.volume.instance_volumes.attach_for_instance`` (the compute agent's entry point)."""
    from novalite.volume import instance_volumes

    return instance_volumes.attach_for_instance(
        s, instance_uuid=instance_uuid, host=host, block_device_mapping=block_device_mapping, runtime=runtime
    )


def detach_for_instance(s: Session, *, instance_uuid: str, runtime: Any = None) -> list[str]:
    """See ``novalite.volume.instance_volumes.detach_for_instance``."""
    from novalite.volume import instance_volumes

    return instance_volumes.detach_for_instance(s, instance_uuid=instance_uuid, runtime=runtime)
