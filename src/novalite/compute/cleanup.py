"""Giving back what an instance holds, and marking it deleted. Every function is idempotent."""

from __future__ import annotations

import logging
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from novalite.db.base import utcnow
from novalite.db.models.compute import Instance
from novalite.db.models.network import Port
from novalite.db.models.volume import VolumeAttachment
from novalite.domain.states import PowerState, VmState
from novalite.network import service as network
from novalite.placement import allocations
from novalite.volume import service as volume

LOG = logging.getLogger(__name__)


def user_ports(requested_networks: Any) -> list[str]:
    """Ports the user passed in (they are unbound, not deleted, when the server goes)."""
    if not isinstance(requested_networks, list):
        return []
    return [str(r["port_id"]) for r in requested_networks if isinstance(r, dict) and r.get("port_id")]


_PORTS = cast(Table, Port.__table__)
_HAS_PORTS = select(_PORTS.c.id).where(_PORTS.c.device_id == bindparam("instance_uuid")).limit(1)
_ATTACHMENTS = cast(Table, VolumeAttachment.__table__)
_HAS_ATTACHMENTS = (
    select(_ATTACHMENTS.c.id).where(_ATTACHMENTS.c.instance_uuid == bindparam("instance_uuid")).limit(1)
)


def release_ports(s: Session, instance_uuid: str, requested_networks: Any) -> None:
    if s.connection().execute(_HAS_PORTS, {"instance_uuid": instance_uuid}).first() is None:
        return  # nothing bound to the instance (the common case: one indexed probe, no ORM load)
    network.release_ports_for_device(s, instance_uuid, keep=user_ports(requested_networks))


def has_volumes(s: Session, instance_uuid: str) -> bool:
    return s.connection().execute(_HAS_ATTACHMENTS, {"instance_uuid": instance_uuid}).first() is not None


def release_volumes(s: Session, instance_uuid: str) -> None:
    """Detach the instance's volumes; those marked delete_on_termination are deleted."""
    if not has_volumes(s, instance_uuid):
        return
    volume.detach_for_instance(s, instance_uuid=instance_uuid)


def release_resources(s: Session, instance_uuid: str, requested_networks: Any) -> None:
    """Placement allocations, ports and volume attachments."""
    allocations.release(s, instance_uuid)
    release_ports(s, instance_uuid, requested_networks)
    release_volumes(s, instance_uuid)


_INSTANCES = cast(Table, Instance.__table__)
_MARK_DELETED = (
    update(_INSTANCES)
    .where(_INSTANCES.c.uuid == bindparam("instance_uuid"), _INSTANCES.c.deleted.is_(False))
    .values(
        deleted=True,
        vm_state=VmState.DELETED,
        task_state=None,
        power_state=int(PowerState.NOSTATE),
        deleted_at=bindparam("now"),
        terminated_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
)


def mark_deleted(s: Session, instance_uuid: str) -> bool:
    """Soft-delete the row (status DELETED); False when it was already deleted."""
    result = s.connection().execute(_MARK_DELETED, {"instance_uuid": instance_uuid, "now": utcnow()})
    return result.rowcount == 1
