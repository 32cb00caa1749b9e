"""Cinder's attachments (API 3.27+), the path Nova uses to attach volumes:

    create (no connector)  -> attachment reserved,  volume reserved
    create/update with a connector -> attachment attaching, volume attaching (connection_info set)
    complete               -> attachment attached,  volume in-use
    delete                 -> attachment gone; volume available once it has none left

The same functions back the compute-facing ``reserve``/``attach``/``detach`` helpers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.volume import Volume, VolumeAttachment
from novalite.errors import BadRequest, NotFound
from novalite.volume.records import get_volume_row, invalid_volume

ATTACHABLE = ("available", "reserved", "in-use", "attaching", "detaching")


def attachment_not_found(attachment_id: str) -> NotFound:
    return NotFound(
        f"Volume attachment could not be found with filter: attachment_id = {attachment_id}.",
        kind="VolumeAttachmentNotFound",
    )


def volume_attachments(s: Session, volume_id: str) -> list[VolumeAttachment]:
    q = select(VolumeAttachment).where(VolumeAttachment.volume_id == volume_id)
    return list(s.scalars(q.order_by(VolumeAttachment.created_at, VolumeAttachment.id)))


def visible_attachments(
    s: Session, ctx: RequestContext, *, all_projects: bool = False
) -> list[VolumeAttachment]:
    q = select(VolumeAttachment).join(Volume, Volume.id == VolumeAttachment.volume_id)
    if not (ctx.is_admin and all_projects):
        q = q.where(Volume.project_id == ctx.project_id)
    return list(s.scalars(q.order_by(VolumeAttachment.created_at, VolumeAttachment.id)))


def get_attachment(s: Session, ctx: RequestContext, attachment_id: str) -> tuple[VolumeAttachment, Volume]:
    att = s.get(VolumeAttachment, attachment_id) if len(attachment_id) <= 36 else None
    vol = s.get(Volume, att.volume_id) if att is not None else None
    if att is None or vol is None or not ctx.can_access_project(vol.project_id):
        raise attachment_not_found(attachment_id)
    return att, vol


def connection_info(vol: Volume, att: VolumeAttachment) -> dict[str, Any]:
    """What a compute host needs to plug the volume in (a local file for this embedded Block Storage API)."""
    return {
        "driver_volume_type": "file",
        "data": {
            "device_path": vol.location,
            "name": f"volume-{vol.id}",
            "volume_id": vol.id,
            "access_mode": att.attach_mode,
            "encrypted": False,
            "discard": True,
        },
        "serial": vol.id,
        "attachment_id": att.id,
    }


def _connect(vol: Volume, att: VolumeAttachment, connector: dict[str, Any]) -> None:
    att.connector = connector
    att.attached_host = str(connector.get("host") or "")[:255] or None
    mountpoint = connector.get("mountpoint")
    att.mountpoint = str(mountpoint)[:255] if mountpoint else att.mountpoint
    att.attach_status = "attaching"
    att.connection_info = connection_info(vol, att)
    vol.status = "attaching"


def create_attachment(
    s: Session,
    ctx: RequestContext,
    *,
    volume_id: str,
    instance_uuid: str | None,
    connector: dict[str, Any] | None = None,
    mode: str = "rw",
) -> VolumeAttachment:
    vol = get_volume_row(s, ctx, volume_id)
    existing = volume_attachments(s, vol.id)
    if vol.status not in ATTACHABLE or existing and not vol.multiattach:
        raise invalid_volume(
            f"Volume {vol.id} status must be available or downloading to reserve, but the current "
            f"status is {vol.status}."
        )
    if mode not in ("rw", "ro"):
        raise BadRequest(f"Invalid input received: Invalid attach mode {mode}.", kind="InvalidInput")
    att = VolumeAttachment(
        volume_id=vol.id, instance_uuid=instance_uuid, attach_mode=mode, attach_status="reserved"
    )
    s.add(att)
    s.flush()
    if vol.status == "available":
        vol.status = "reserved"
    if connector:
        _connect(vol, att, connector)
    s.flush()
    return att


def update_attachment(
    s: Session, ctx: RequestContext, attachment_id: str, connector: dict[str, Any]
) -> VolumeAttachment:
    att, vol = get_attachment(s, ctx, attachment_id)
    if not isinstance(connector, dict) or not connector:
        raise BadRequest("Invalid input received: Connector is required.", kind="InvalidInput")
    _connect(vol, att, connector)
    s.flush()
    return att


def complete_attachment(s: Session, ctx: RequestContext, attachment_id: str) -> None:
    att, vol = get_attachment(s, ctx, attachment_id)
    att.attach_status = "attached"
    att.attached_at = utcnow()
    vol.status, vol.attach_status = "in-use", "attached"


def delete_attachment(s: Session, ctx: RequestContext, attachment_id: str) -> None:
    att, vol = get_attachment(s, ctx, attachment_id)
    vol.status = "detaching"
    s.delete(att)
    s.flush()
    remaining = volume_attachments(s, vol.id)
    if not remaining:
        vol.status, vol.attach_status = "available", "detached"
    else:
        attached = any(a.attach_status == "attached" for a in remaining)
        vol.status = "in-use" if attached else "reserved"


# The compute-facing helpers: ids in, ids/dicts out.


def reserve_volume(s: Session, ctx: RequestContext, volume_id: str, instance_uuid: str) -> str:
    """Reserve ``volume_id`` for ``instance_uuid``; returns the attachment id (volume ``reserved``)."""
    return create_attachment(s, ctx, volume_id=volume_id, instance_uuid=instance_uuid).id


def attach_volume(
    s: Session, ctx: RequestContext, attachment_id: str, *, host: str, mountpoint: str | None = None
) -> dict[str, Any]:
    """Connect and complete a reserved attachment (volume ``in-use``); returns its connection_info."""
    att = update_attachment(s, ctx, attachment_id, {"host": host, "mountpoint": mountpoint})
    complete_attachment(s, ctx, attachment_id)
    return dict(att.connection_info or {})


def detach_volume(s: Session, ctx: RequestContext, attachment_id: str) -> None:
    """Remove the attachment; the volume is ``available`` again once no attachment is left.
    Safe to call twice: an attachment that is already gone is not an error."""
    if s.get(VolumeAttachment, attachment_id) is None:
        return
    delete_attachment(s, ctx, attachment_id)
