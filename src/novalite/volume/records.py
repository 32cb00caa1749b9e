"""Volume records inside the caller's transaction: lookups, Cinder's errors, volume types and the
row of a new volume (``create_volume``). Everything here works on the caller's session and touches
no storage; ``service`` (storage, its own units of work) and ``attachments`` / ``instance_volumes``
build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.volume import Volume, VolumeAttachment, VolumeType, VolumeTypeAccess
from novalite.domain.zones import DEFAULT_ZONE
from novalite.errors import BadRequest, NotFound
from novalite.image.service import get_image
from novalite.volume import quotas

DEFAULT_TYPE = "__DEFAULT__"
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


def type_is_multiattach(vtype: VolumeType) -> bool:
    """Cinder's rule: a type whose extra spec ``multiattach`` is ``<is> True`` makes multiattach volumes."""
    return str((vtype.extra_specs or {}).get("multiattach", "")).strip().lower() == "<is> true"


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
    snapshot_id, origin_type = None, None
    if fields.get("snapshot_id"):
        from novalite.volume.snapshots import source_for_volume  # snapshots builds on this module

        snap, size = source_for_volume(s, ctx, fields["snapshot_id"], size)
        snapshot_id, origin = snap.id, s.get(Volume, snap.volume_id)
        source_bootable = bool(origin and origin.bootable)
        source_meta = dict(origin.image_metadata or {}) if origin else {}
        origin_type = origin.volume_type_id if origin else None  # Cinder: the snapshot's type by default
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
    if int(size) <= 0:  # a string "0" passes the schemas' minimum (Cinder's and Nova's proxy's)
        raise BadRequest(
            f"Invalid input received: Volume size '{size}' must be an integer and greater than 0",
            kind="InvalidInput",
        )
    zone = fields.get("availability_zone") or DEFAULT_ZONE
    if zone != DEFAULT_ZONE:
        raise BadRequest(
            f"Invalid input received: Availability zone '{zone}' is invalid.", kind="InvalidInput"
        )
    vtype = find_type(s, fields.get("volume_type") or origin_type, ctx)
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
        multiattach=bool(fields.get("multiattach")) or type_is_multiattach(vtype),
        volume_metadata=dict(fields.get("metadata") or {}),
        image_id=image.id if image else None,
        source_volid=source.id if source else None,
        snapshot_id=snapshot_id,
        image_metadata=_image_metadata(image)
        if image
        else dict(source.image_metadata or {})
        if source
        else {},
        bootable=image is not None or bool(source and source.bootable),
    )
    if snapshot_id is not None:
        vol.bootable, vol.image_metadata = source_bootable, source_meta
    s.add(vol)
    s.flush()
    return vol
