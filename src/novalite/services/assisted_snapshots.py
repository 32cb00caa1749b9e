"""The checks of os-assisted-volume-snapshots (compute_api/assisted_snapshots.py): the volume is
attached to a server that has a host, no task under way, and a driver that can do it."""

from __future__ import annotations

from sqlalchemy import select

from novalite.compute import hosts
from novalite.db.base import Database
from novalite.db.models.compute import Instance
from novalite.db.models.volume import VolumeAttachment
from novalite.errors import BadRequest, Conflict, NotFound


def check(db: Database, volume_id: str, missing: type[BadRequest] | type[NotFound]) -> None:
    """The volume's server may take the snapshot (the checks of Nova's compute API)."""
    with db.reader() as s:
        row = s.execute(
            select(Instance)
            .join(VolumeAttachment, VolumeAttachment.instance_uuid == Instance.uuid)
            .where(
                VolumeAttachment.volume_id == volume_id,
                VolumeAttachment.detached_at.is_(None),
                Instance.deleted.is_(False),
            )
        ).first()
        if row is None:
            raise missing(f"No volume Block Device Mapping with id {volume_id}.", kind="VolumeBDMNotFound")
        inst = row[0]
        if not inst.host:
            raise Conflict(f"Instance {inst.uuid} is not ready", kind="InstanceNotReady")
        if inst.task_state is not None:
            raise Conflict(
                f"Cannot 'volume_snapshot' instance {inst.uuid} while it is in task_state {inst.task_state}",
                kind="InstanceInvalidState",
            )
        if not inst.host.startswith(hosts.PREFIX):
            raise Conflict(
                f"Assisted volume snapshots are not supported by the driver of host {inst.host}.",
                kind="InstanceInvalidState",
            )
