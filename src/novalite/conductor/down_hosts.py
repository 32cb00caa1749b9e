"""Builds stranded on a compute host that went down (issue 18, item 4).

A compute agent killed mid-build leaves its builds in BUILD: the ones it had accepted (host set,
task ``networking`` / ``block_device_mapping`` / ``spawning``) and the ones claimed on it whose
build message waits, unconsumed, in its queue (task ``scheduling``, no host, the allocation on its
provider). Nothing else would move them on. Once the host is *down* (no heartbeat within
``service_down_time``, or forced down), the conductor's periodic task takes each back:

    stranded build                        what happens
    ────────────────────────────────────  ──────────────────────────────────────────────────
    no volumes                            ports and allocation released, host cleared, task
                                          ``scheduling``; scheduled again (the scheduler skips
                                          down hosts) -> ACTIVE elsewhere, or ERROR with the
                                          scheduler's fault when nothing fits
    volumes attached / boot from volume   ERROR with a fault that names the host; everything
                                          it held released (the block device mapping travelled
                                          in the lost message only)

Each instance is taken in its own transaction under a row lock, checking again what it read: of
several conductors, one takes it; an instance that moved on meanwhile (its host came back and
finished it, the user deleted it) is left alone. When the host comes back, its queued build
messages find the claim gone from their node and are dropped (``build.accept``), and a build it
was still running finds the instance no longer its own: nothing it holds is touched.

The conductor runs this only after it has seen the database answer for a whole
``service_down_time`` (since it started, or since the last outage): heartbeats missed during its
own or the database's outage must not look like dead hosts.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.compute import actions, cleanup, recovery
from novalite.context import RequestContext
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance
from novalite.db.models.placement import Allocation, ComputeNode, ResourceProvider, Service
from novalite.domain.states import TaskState, VmState

LOG = logging.getLogger(__name__)
_ACCEPTED = (TaskState.NETWORKING, TaskState.BLOCK_DEVICE_MAPPING, TaskState.SPAWNING)
HOST_DOWN_VOLUMES = (
    "Instance build was interrupted: its compute host {host} went down, and its block device "
    "mapping was lost with the build request, so the build is not tried again."
)


@dataclass(frozen=True)
class TakenBack:
    uuid: str
    host: str
    project_id: str
    user_id: str
    rescheduled: bool  # False: ERROR with a fault


def down_compute_hosts(s: Session, down_time: int) -> list[str]:
    """Compute hosts forced down or without a heartbeat for ``down_time`` seconds."""
    cutoff = utcnow() - dt.timedelta(seconds=down_time)
    rows = s.execute(
        select(Service.host, Service.forced_down, Service.last_seen_at, Service.updated_at).where(
            Service.binary == "nova-compute", Service.deleted.is_(False)
        )
    ).all()
    return sorted({h for h, forced, seen, updated in rows if forced or (seen or updated) < cutoff})


def _claimed_on(s: Session, uuids: Sequence[str]) -> dict[str, str]:
    """instance uuid -> the compute host its allocation is on."""
    if not uuids:
        return {}
    q = (
        select(Allocation.consumer_id, ComputeNode.host)
        .join(ResourceProvider, ResourceProvider.id == Allocation.resource_provider_id)
        .join(ComputeNode, (ComputeNode.uuid == ResourceProvider.uuid) & ComputeNode.deleted.is_(False))
        .where(Allocation.consumer_id.in_(list(uuids)))
    )
    return {consumer: host for consumer, host in s.execute(q)}


def stranded(s: Session, hosts: Sequence[str]) -> list[str]:
    """Builds accepted on, or claimed on and waiting for, one of ``hosts``."""
    if not hosts:
        return []
    accepted = s.scalars(
        select(Instance.uuid).where(
            Instance.vm_state == VmState.BUILDING,
            Instance.deleted.is_(False),
            Instance.host.in_(list(hosts)),
            Instance.task_state.in_(_ACCEPTED),
        )
    ).all()
    waiting = s.scalars(
        select(Instance.uuid).where(
            Instance.vm_state == VmState.BUILDING,
            Instance.deleted.is_(False),
            Instance.host.is_(None),
            Instance.task_state == TaskState.SCHEDULING,
        )
    ).all()
    claimed = _claimed_on(s, waiting)
    return [*accepted, *(u for u in waiting if claimed.get(u) in set(hosts))]


def take_back(s: Session, uuid: str, hosts: Sequence[str]) -> TakenBack | None:
    """Take one stranded build off its down host (see the module's table); None when it is no
    longer stranded there (another conductor took it, it finished, it was deleted)."""
    row = s.scalars(select(Instance).where(Instance.uuid == uuid).with_for_update()).first()
    if row is None or row.deleted or row.vm_state != VmState.BUILDING:
        return None
    if row.host is not None:
        if row.host not in hosts or row.task_state not in _ACCEPTED:
            return None
        host = str(row.host)
    else:
        on = _claimed_on(s, [uuid]).get(uuid)
        if row.task_state != TaskState.SCHEDULING or on is None or on not in hosts:
            return None
        host = on
    if recovery.needs_volumes(s, uuid):
        recovery.fail(s, row, HOST_DOWN_VOLUMES.format(host=host))
        action = actions.find_action(s, uuid, "create", user_id=row.user_id, project_id=row.project_id)
        actions.mark_error(s, action)
        return TakenBack(uuid, host, row.project_id, row.user_id, rescheduled=False)
    cleanup.release_ports(s, uuid, row.requested_networks)
    cleanup.allocations.release(s, uuid)
    row.host, row.node, row.task_state, row.network_info = None, None, TaskState.SCHEDULING, []
    row.updated_at = utcnow()
    return TakenBack(uuid, host, row.project_id, row.user_id, rescheduled=True)


def sweep(
    db: Database, down_time: int, reschedule: Callable[[RequestContext, list[str]], None]
) -> list[TakenBack]:
    """Take back every build stranded on a down host; ``reschedule`` schedules the ones taken
    back for scheduling again (one call per instance). Returns what was taken back."""
    with db.reader() as s:  # the common case: no down host, or nothing on it; no write lock
        hosts = down_compute_hosts(s, down_time)
        uuids = stranded(s, hosts)
    taken: list[TakenBack] = []
    for uuid in uuids:
        got = db.write(functools.partial(take_back, uuid=uuid, hosts=hosts))
        if got is not None:
            taken.append(got)
    for t in taken:
        if t.rescheduled:
            ctx = RequestContext(user_id=t.user_id, project_id=t.project_id, roles=("member",))
            reschedule(ctx, [t.uuid])
    if taken:
        LOG.warning(
            "builds stranded on down hosts (%s): %d scheduled again, %d set to ERROR",
            ", ".join(sorted({t.host for t in taken})),
            sum(t.rescheduled for t in taken),
            sum(not t.rescheduled for t in taken),
        )
    return taken
