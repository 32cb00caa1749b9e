"""A compute agent's part in shelve, shelveOffload and unshelve (§4 of the move operations):
power the guest off (and destroy it when offloading), start it again in place, or spawn an
offloaded server on the host the conductor chose; the database steps are
``services.shelve``'s.

A driver that runs real guests (QEMU) powers off, destroys and starts them like any other; it
does not spawn an offloaded server from its snapshot here yet: such an unshelve is given up
(allocation released, the server stays SHELVED_OFFLOADED).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from novalite import notifications
from novalite.compute.guest_spec import guest_spec
from novalite.compute.rpcapi import ShelveInstance, UnshelveOnHost
from novalite.db.models.compute import Instance
from novalite.domain.states import VmState
from novalite.placement import allocations
from novalite.services import shelve
from novalite.virt.driver import DriverError, GuestSpec
from novalite.virt.fake import FakeDriver

LOG = logging.getLogger(__name__)


def _guest(agent: Any, instance_uuid: str, node: str | None = None) -> tuple[GuestSpec, str] | None:
    """The guest of a live instance on this host, and its vm_state; None when it is gone."""
    with agent.db.reader() as s:
        row = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
        if row is None or row.deleted:
            return None
        guest = guest_spec(
            row,
            agent.host,
            node=node or row.node or agent.host,
        )
        return guest, row.vm_state


def shelve_instance(agent: Any, msg: ShelveInstance) -> None:
    found = _guest(agent, msg.instance_uuid)
    if found is None:
        return
    guest, _vm_state = found
    notifications.instance_in(agent.db, "instance.shelve.start", msg.instance_uuid, host=agent.host)
    try:
        agent.driver.power_off(guest)
        if msg.offload:
            agent.driver.destroy(guest)
    except DriverError as exc:
        LOG.warning("shelving %s on %s failed: %s", msg.instance_uuid, agent.host, exc)
        reason = str(exc)
        agent.db.write(lambda s: shelve.shelve_failed(s, msg.instance_uuid, reason, host=agent.host))
        return
    agent.db.write(lambda s: shelve.shelved(s, msg.instance_uuid, image_id=msg.image_id, offload=msg.offload))
    notifications.shelved(agent.db, msg.instance_uuid, offload=msg.offload, host=agent.host)


def unshelve_on_host(agent: Any, msg: UnshelveOnHost) -> None:
    found = _guest(agent, msg.instance_uuid, msg.node)
    if found is None:
        agent.db.write(lambda s: allocations.release(s, msg.instance_uuid))
        return
    guest, vm_state = found
    notifications.instance_in(agent.db, "instance.unshelve.start", msg.instance_uuid, host=agent.host)
    try:
        if vm_state == VmState.SHELVED:
            agent.driver.power_on(guest)
        elif isinstance(agent.driver, FakeDriver):
            agent.driver.spawn(guest)
        else:
            raise DriverError(f"unshelving an offloaded server onto {agent.host} is not supported here")
    except DriverError as exc:
        LOG.warning("unshelving %s on %s failed: %s", msg.instance_uuid, agent.host, exc)
        reason = str(exc)
        agent.db.write(lambda s: shelve.unshelve_failed(s, msg.instance_uuid, reason, release=True))
        return
    agent.db.write(lambda s: shelve.unshelve_on(s, msg.instance_uuid, host=msg.host, node=msg.node))
    notifications.instance_in(agent.db, "instance.unshelve.end", msg.instance_uuid, host=agent.host)
