"""Cinder v3 representations. Microversion gates live here only (``# 3.48: ...``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from novalite.api.common import runtime
from novalite.api.microversion import V, Version
from novalite.context import RequestContext
from novalite.db.models.volume import Volume, VolumeAttachment, VolumeBackup, VolumeSnapshot, VolumeType
from novalite.volume.attachments import volume_attachments


def stamp(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def volume_links(request: Request, volume_id: str) -> list[dict[str, str]]:
    base = f"{runtime(request).public_url}/volume"
    return [
        {"rel": "self", "href": f"{base}/v3/volumes/{volume_id}"},
        {"rel": "bookmark", "href": f"{base}/volumes/{volume_id}"},
    ]


def volume_summary(request: Request, vol: Volume) -> dict[str, Any]:
    return {"id": vol.id, "name": vol.name, "links": volume_links(request, vol.id)}


def _attachment_entry(vol: Volume, att: VolumeAttachment) -> dict[str, Any]:
    return {
        "id": vol.id,
        "attachment_id": att.id,
        "volume_id": vol.id,
        "server_id": att.instance_uuid,
        "host_name": att.attached_host,
        "device": att.mountpoint,
        "attached_at": stamp(att.attached_at),
    }


def volume_detail(
    request: Request,
    s: Session,
    ctx: RequestContext,
    version: Version,
    vol: Volume,
    vtype: VolumeType | None,
    *,
    extended: bool = True,
    atts: list[VolumeAttachment] | None = None,
) -> dict[str, Any]:
    """Cinder's volume view. ``extended`` (show and list, not create/update): the attributes
    Cinder's API extensions add (tenant, image metadata, and for admins host and migration)."""
    found = atts if atts is not None else volume_attachments(s, vol.id)
    attached = [a for a in found if a.attach_status == "attached"]
    out: dict[str, Any] = {
        "id": vol.id,
        "name": vol.name,
        "description": vol.description,
        "status": vol.status,
        "size": vol.size,
        "availability_zone": vol.availability_zone,
        "created_at": stamp(vol.created_at),
        "updated_at": stamp(vol.updated_at),
        "attachments": [_attachment_entry(vol, a) for a in attached],
        "volume_type": vtype.name if vtype else None,
        "snapshot_id": vol.snapshot_id,
        "source_volid": vol.source_volid,
        "metadata": dict(vol.volume_metadata or {}),
        "links": volume_links(request, vol.id),
        "user_id": vol.user_id,
        "bootable": "true" if vol.bootable else "false",
        "encrypted": False,
        "replication_status": None,
        "consistencygroup_id": None,
        "multiattach": vol.multiattach,
    }
    if extended:
        out["os-vol-tenant-attr:tenant_id"] = vol.project_id
        if vol.image_metadata:
            out["volume_image_metadata"] = dict(vol.image_metadata)
        if ctx.is_admin:
            out.update(
                {
                    "os-vol-host-attr:host": vol.host,
                    "os-vol-mig-status-attr:migstat": None,
                    "os-vol-mig-status-attr:name_id": None,
                }
            )
    if ctx.is_admin:
        out["migration_status"] = None
    if version >= V(3, 13):  # 3.13: group_id
        out["group_id"] = None
    if version >= V(3, 21):  # 3.21: provider_id
        out["provider_id"] = None
    if version >= V(3, 48):  # 3.48: service_uuid, shared_targets
        out.update(service_uuid=None, shared_targets=False)
    if version >= V(3, 61) and ctx.is_admin:  # 3.61: cluster_name (admin)
        out["cluster_name"] = None
    if version >= V(3, 63):  # 3.63: volume_type_id
        out["volume_type_id"] = vtype.id if vtype else None
    if version >= V(3, 65):  # 3.65: consumes_quota
        out["consumes_quota"] = True
    return out


def attachment_view(att: VolumeAttachment) -> dict[str, Any]:
    return {
        "id": att.id,
        "status": att.attach_status,
        "instance": att.instance_uuid,
        "volume_id": att.volume_id,
        "attached_at": stamp(att.attached_at),
        "detached_at": stamp(att.detached_at),
        "attach_mode": att.attach_mode,
        "connection_info": att.connection_info,
    }


def attachment_summary(att: VolumeAttachment) -> dict[str, Any]:
    return {
        "id": att.id,
        "status": att.attach_status,
        "instance": att.instance_uuid,
        "volume_id": att.volume_id,
    }


def type_view(vtype: VolumeType, *, admin: bool, create: bool = False) -> dict[str, Any]:
    """``create``: the create/update answer, which carries no qos_specs_id."""
    out: dict[str, Any] = {
        "id": vtype.id,
        "name": vtype.name,
        "description": vtype.description,
        "is_public": vtype.is_public,
        "os-volume-type-access:is_public": vtype.is_public,
    }
    if admin:
        out["extra_specs"] = dict(vtype.extra_specs or {})
        if not create:
            out["qos_specs_id"] = None
    return out


def snapshot_view(snap: VolumeSnapshot, version: Version, *, extended: bool = True) -> dict[str, Any]:
    """Cinder's snapshot view; ``extended`` (show and detail): the extended snapshot attributes."""
    out: dict[str, Any] = {
        "id": snap.id,
        "created_at": stamp(snap.created_at),
        "updated_at": stamp(snap.updated_at),
        "name": snap.name,
        "description": snap.description,
        "volume_id": snap.volume_id,
        "status": snap.status,
        "size": snap.size,
        "metadata": dict(snap.snapshot_metadata or {}),
    }
    if extended:
        out["os-extended-snapshot-attributes:progress"] = "100%" if snap.status == "available" else "0%"
        out["os-extended-snapshot-attributes:project_id"] = snap.project_id
    if version >= V(3, 14):  # 3.14: group_snapshot_id
        out["group_snapshot_id"] = None
    if version >= V(3, 41):  # 3.41: user_id
        out["user_id"] = snap.user_id
    if version >= V(3, 65):  # 3.65: consumes_quota
        out["consumes_quota"] = True
    return out


def backup_links(request: Request, backup: VolumeBackup) -> list[dict[str, str]]:
    base = f"{runtime(request).public_url}/volume"
    return [
        {"rel": "self", "href": f"{base}/v3/{backup.project_id}/backups/{backup.id}"},
        {"rel": "bookmark", "href": f"{base}/{backup.project_id}/backups/{backup.id}"},
    ]


def backup_summary(request: Request, backup: VolumeBackup) -> dict[str, Any]:
    return {"id": backup.id, "name": backup.name, "links": backup_links(request, backup)}


def backup_detail(
    request: Request, ctx: RequestContext, version: Version, backup: VolumeBackup
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": backup.id,
        "status": backup.status,
        "size": backup.size,
        "object_count": 1 if backup.status == "available" else 0,
        "availability_zone": backup.availability_zone,
        "container": backup.container,
        "created_at": stamp(backup.created_at),
        "updated_at": stamp(backup.updated_at),
        "name": backup.name,
        "description": backup.description,
        "fail_reason": backup.fail_reason,
        "volume_id": backup.volume_id,
        "links": backup_links(request, backup),
        "is_incremental": False,
        "has_dependent_backups": False,
        "snapshot_id": backup.snapshot_id,
        "data_timestamp": stamp(backup.data_timestamp),
    }
    if version >= V(3, 18) and ctx.is_admin:  # 3.18: the owning project (admin)
        out["os-backup-project-attr:project_id"] = backup.project_id
    if version >= V(3, 43):  # 3.43: metadata
        out["metadata"] = dict(backup.backup_metadata or {})
    if version >= V(3, 56):  # 3.56: user_id
        out["user_id"] = backup.user_id
    if version >= V(3, 64):  # 3.64: encryption_key_id
        out["encryption_key_id"] = None
    return out
