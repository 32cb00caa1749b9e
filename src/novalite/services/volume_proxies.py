"""The embedded Block Storage service as the compute API's ``os-volumes`` and ``os-snapshots``
proxies (gone from 2.36) see it: Nova's camelCase views, its 404 messages, and the volume
service's own checks (quota, status, snapshots) on create and delete.

A new volume or snapshot is answered ``creating``; its data is provisioned afterwards
(``finish``, run by the route once the answer is sent), as the volume API does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.volume import Volume, VolumeAttachment, VolumeSnapshot, VolumeType
from novalite.runtime import Runtime
from novalite.volume import quotas, records, snapshots
from novalite.volume import service as volumes

Finish = Callable[[], None]


def _stamp(value: dt.datetime | None) -> str | None:
    # Nova passes Cinder's created_at through: ISO 8601 with microseconds, no zone
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") if value is not None else None


def volume_view(s: Session, vol: Volume) -> dict[str, Any]:
    """Nova's ``_translate_volume_summary_view`` (list, detail and show alike)."""
    att = s.scalars(
        select(VolumeAttachment)
        .where(VolumeAttachment.volume_id == vol.id, VolumeAttachment.attach_status == "attached")
        .order_by(VolumeAttachment.created_at)
    ).first()
    vtype = s.get(VolumeType, vol.volume_type_id)
    attachment: dict[str, Any] = {}
    if att is not None:
        attachment = {
            "id": vol.id,
            "volumeId": vol.id,
            "serverId": att.instance_uuid,
            "device": att.mountpoint,
        }
    return {
        "id": vol.id,
        "status": vol.status,
        "size": vol.size,
        "availabilityZone": vol.availability_zone,
        "createdAt": _stamp(vol.created_at),
        "attachments": [attachment],
        "displayName": vol.name,
        "displayDescription": vol.description,
        "volumeType": vtype.name if vtype is not None else vol.volume_type_id,
        "snapshotId": vol.snapshot_id,
        "metadata": dict(vol.volume_metadata or {}),
    }


def snapshot_view(snap: VolumeSnapshot) -> dict[str, Any]:
    """Nova's ``_translate_snapshot_summary_view``."""
    return {
        "id": snap.id,
        "volumeId": snap.volume_id,
        "status": snap.status,
        "size": snap.size,
        "createdAt": _stamp(snap.created_at),
        "displayName": snap.name,
        "displayDescription": snap.description,
    }


def list_volumes(rt: Runtime, ctx: RequestContext) -> list[dict[str, Any]]:
    with rt.db.reader() as s:
        return [volume_view(s, vol) for vol in records.visible_volumes(s, ctx)]


def show_volume(rt: Runtime, ctx: RequestContext, volume_id: str) -> dict[str, Any]:
    with rt.db.reader() as s:
        return volume_view(s, records.get_volume_row(s, ctx, volume_id))


def create_volume(rt: Runtime, ctx: RequestContext, fields: dict[str, Any]) -> tuple[dict[str, Any], Finish]:
    """``fields`` as ``volume.records.create_volume`` takes them (size, name, description,
    volume_type, availability_zone, metadata, snapshot_id)."""
    with rt.db.serialized(quotas.quota_lock(ctx.project_id)) as s:
        vol = records.create_volume(s, ctx, fields)
        view, volume_id = volume_view(s, vol), vol.id
    return view, lambda: volumes.finish_create(rt, volume_id)


def delete_volume(rt: Runtime, ctx: RequestContext, volume_id: str) -> None:
    volumes.delete_volume(rt, ctx, volume_id)


def list_snapshots(rt: Runtime, ctx: RequestContext) -> list[dict[str, Any]]:
    with rt.db.reader() as s:
        return [snapshot_view(snap) for snap in snapshots.visible_snapshots(s, ctx)]


def show_snapshot(rt: Runtime, ctx: RequestContext, snapshot_id: str) -> dict[str, Any]:
    with rt.db.reader() as s:
        return snapshot_view(snapshots.get_snapshot_row(s, ctx, snapshot_id))


def create_snapshot(
    rt: Runtime, ctx: RequestContext, volume_id: str, *, force: bool, fields: dict[str, Any]
) -> tuple[dict[str, Any], Finish]:
    with rt.db.serialized(quotas.quota_lock(ctx.project_id)) as s:
        snap = snapshots.create_snapshot(s, ctx, volume_id, force=force, fields=fields)
        view, snapshot_id = snapshot_view(snap), snap.id
    return view, lambda: snapshots.finish_snapshot(rt, snapshot_id)


def delete_snapshot(rt: Runtime, ctx: RequestContext, snapshot_id: str) -> None:
    snapshots.delete_snapshot(rt, ctx, snapshot_id)
