"""Cinder's pre-3.27 attach protocol as volume actions: os-reserve, os-unreserve, os-attach,
os-begin_detaching, os-roll_detaching, os-detach, os-initialize_connection,
os-terminate_connection, plus the admin os-force_detach and os-force_delete.

    available --reserve--> attaching --attach--> in-use --begin_detaching--> detaching --detach--> available
              <-unreserve-                        <------roll_detaching------
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from novalite.db.base import utcnow
from novalite.db.models.volume import Volume, VolumeAttachment
from novalite.errors import BadRequest
from novalite.volume import attachments
from novalite.volume.api import VolumeRequest, text
from novalite.volume.records import invalid_volume
from novalite.volume.storage import storage_for


def _expect(vol: Volume, action: str, *allowed: str) -> None:
    if vol.status not in allowed:
        raise invalid_volume(
            f"Volume status must be {' or '.join(allowed)} to {action}, but the current "
            f"status is {vol.status}."
        )


def _args(args: Any) -> dict[str, Any]:
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise BadRequest("Invalid input received: the action body must be an object.", kind="InvalidInput")
    return args


def reserve(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    _expect(vol, "reserve", "available")
    vol.status = "attaching"


def unreserve(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    if vol.status == "attaching":
        vol.status = "available" if not attachments.volume_attachments(s, vol.id) else "in-use"


def attach(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    body = _args(args)
    _expect(vol, "attach", "available", "attaching", "reserved")
    mode = text("mode", body.get("mode")) or "rw"
    if mode not in ("rw", "ro"):
        raise BadRequest(f"Invalid input received: Invalid attach mode {mode}.", kind="InvalidInput")
    instance = text("instance_uuid", body.get("instance_uuid"), 36)
    host = text("host_name", body.get("host_name"))
    if not instance and not host:
        raise BadRequest(
            "Invalid request to attach volume to an invalid target", kind="InvalidVolumeAttachMode"
        )
    s.add(
        VolumeAttachment(
            volume_id=vol.id,
            instance_uuid=instance,
            attached_host=host,
            mountpoint=text("mountpoint", body.get("mountpoint")),
            attach_mode=mode,
            attach_status="attached",
            attached_at=utcnow(),
        )
    )
    vol.status, vol.attach_status = "in-use", "attached"


def begin_detaching(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    _expect(vol, "begin detaching", "in-use")
    vol.status = "detaching"


def roll_detaching(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    if vol.status == "detaching":
        vol.status = "in-use"


def detach(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    wanted = _args(args).get("attachment_id")
    found = [a for a in attachments.volume_attachments(s, vol.id) if wanted is None or a.id == wanted]
    # Cinder casts the detach: a volume with nothing (left) to detach answers 202 all the same
    for att in found:
        attachments.delete_attachment(s, vr.ctx, att.id)


def initialize_connection(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> dict[str, Any]:
    connector = _args(args).get("connector")
    if not isinstance(connector, dict):
        raise BadRequest("Must specify 'connector'", kind="InvalidInput")
    info = {
        "driver_volume_type": "file",
        "data": {
            "device_path": vol.location,
            "volume_id": vol.id,
            "access_mode": "ro" if vol.read_only else "rw",
        },
    }
    return {"connection_info": info}


def terminate_connection(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    if not isinstance(_args(args).get("connector"), dict):
        raise BadRequest("Must specify 'connector'", kind="InvalidInput")


def force_detach(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    vr.ctx.require_admin("volume_extension:volume_admin_actions:force_detach")
    for att in attachments.volume_attachments(s, vol.id):
        attachments.delete_attachment(s, vr.ctx, att.id)
    vol.status, vol.attach_status = "available", "detached"


def force_delete(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    vr.ctx.require_admin("volume_extension:volume_admin_actions:force_delete")
    storage_for(rt).delete(vol.id, vol.location)
    s.delete(vol)
