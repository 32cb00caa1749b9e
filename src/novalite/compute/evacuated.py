"""A compute agent's part in evacuate (§3.5, §3.6 of the move operations).

Destination (``rebuild_evacuated``): spawn the server's guest here and record the server on this
host (``services.evacuate.finish``); a guest to be left SHUTOFF is powered off after its spawn.
Only simulated guests are rebuilt: a driver that runs real guests (QEMU) cannot rebuild one
from another host's disk yet, so the evacuation fails there (the server keeps its old host).

Source, when its agent starts again (``destroy_evacuated``, called from the start-up of the
engine and of ``novalite compute``): the guests of servers evacuated away while it was down are
stale copies; they are destroyed, the source allocation the migration held is freed and the
migration is ``completed``. Simulated hosts of one process share one fake driver, which keeps a
guest by its uuid: when the server now runs on a host of the same driver, that entry is the
live guest and is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from novalite import notifications
from novalite.compute.guest_spec import guest_spec
from novalite.compute.rpcapi import RebuildEvacuated
from novalite.db.models.compute import Instance
from novalite.services import evacuate
from novalite.virt.driver import DriverError, GuestSpec
from novalite.virt.fake import FakeDriver

LOG = logging.getLogger(__name__)


def _guest(db: Any, host: str, instance_uuid: str, node: str) -> GuestSpec | None:
    with db.reader() as s:
        row = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
        if row is None:
            return None
        return guest_spec(
            row,
            host,
            node=node,
        )


def rebuild_evacuated(agent: Any, msg: RebuildEvacuated) -> None:
    """Destination: the guest is spawned here, then the server is recorded on this host."""
    guest = _guest(agent.db, agent.host, msg.instance_uuid, msg.node)
    if guest is None:
        return
    notifications.rebuild_in(agent.db, "start", msg.instance_uuid, host=agent.host)
    try:
        if not isinstance(agent.driver, FakeDriver):
            raise DriverError(
                f"Evacuating a guest to {agent.host} is not supported by its driver "
                f"({type(agent.driver).__name__})."
            )
        agent.driver.spawn(guest)
    except DriverError as exc:
        LOG.warning("evacuating %s to %s failed: %s", msg.instance_uuid, agent.host, exc)
        reason = str(exc)
        agent.db.write(lambda s: evacuate.fail(s, msg.migration_uuid, reason, scheduling=False))
        return
    stopped = agent.db.write(
        lambda s: evacuate.finish(s, msg.migration_uuid, host=msg.host, node=msg.node, stop=msg.stop)
    )
    if stopped is not None:
        notifications.rebuild_in(agent.db, "end", msg.instance_uuid, host=agent.host)
    try:
        if stopped is None:  # deleted meanwhile
            agent.driver.destroy(guest)
        elif stopped:
            agent.driver.power_off(guest)
    except DriverError as exc:
        LOG.warning("evacuated %s on %s: %s", msg.instance_uuid, agent.host, exc)


def destroy_evacuated(db: Any, drivers: Mapping[str, Any]) -> int:
    """Hosts back (host -> its driver): destroy the stale guests of servers evacuated away from
    them, free the allocations their migrations held and complete those migrations. Returns how
    many evacuations were cleaned."""
    if not drivers:
        return 0
    with db.reader() as s:
        stale = evacuate.evacuated_from(s, list(drivers))
    for st in stale:
        driver = drivers[st.source]
        live_here = st.now_on is not None and drivers.get(st.now_on) is driver
        guest = None if live_here else _guest(db, st.source, st.instance_uuid, st.source)
        if guest is not None:
            try:
                driver.destroy(guest)
            except DriverError as exc:  # cleaned up anyway: the server runs elsewhere
                LOG.warning("destroying the evacuated %s on %s: %s", st.instance_uuid, st.source, exc)
        db.write(lambda s, uuid=st.migration_uuid: evacuate.complete(s, uuid))
    done = len(stale)
    if done:
        LOG.info(
            "cleaned %d guests evacuated away from %s", done, ", ".join(sorted({s.source for s in stale}))
        )
    return done
