"""Giving back what an instance holds, and marking it deleted. Every function is idempotent."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from novalite.db.base import utcnow
from novalite.db.models.compute import Instance
from novalite.domain.states import PowerState, VmState
from novalite.placement import allocations

LOG = logging.getLogger(__name__)


def user_ports(requested_networks: Any) -> list[str]:
    """Ports the user passed in (they are unbound, not deleted, when the server goes)."""
    if not isinstance(requested_networks, list):
        return []
    return [str(r["port_id"]) for r in requested_networks if isinstance(r, dict) and r.get("port_id")]


def release_ports(s: Session, instance_uuid: str, requested_networks: Any) -> None:
    try:
        from novalite.network import service as network
    except ModuleNotFoundError:  # pragma: no cover - networking not installed
        return
    network.release_ports_for_device(s, instance_uuid, keep=user_ports(requested_networks))


def release_volumes(s: Session, instance_uuid: str) -> None:
    """Detach the instance's volumes; those marked delete_on_termination are deleted."""
    try:
        from novalite.volume import service as volume
    except ModuleNotFoundError:  # pragma: no cover - block storage not installed
        return
    volume.detach_for_instance(s, instance_uuid=instance_uuid)


def release_resources(s: Session, instance_uuid: str, requested_networks: Any) -> None:
    """Placement allocations, ports and volume attachments."""
    allocations.release(s, instance_uuid)
    release_ports(s, instance_uuid, requested_networks)
    release_volumes(s, instance_uuid)


def mark_deleted(s: Session, instance_uuid: str) -> bool:
    """Soft-delete the row (status DELETED); False when it was already deleted."""
    now = utcnow()
    result = s.execute(update(Instance).where(Instance.uuid == instance_uuid, Instance.deleted.is_(False))
                       .values(deleted=True, vm_state=VmState.DELETED, task_state=None,
                               power_state=int(PowerState.NOSTATE), deleted_at=now, terminated_at=now,
                               updated_at=now).execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]
