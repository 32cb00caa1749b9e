"""What a (re)starting process does about builds it may have lost (Nova's ``_init_instance``).

* an instance still BUILDING on one of this process's hosts was being built when the
  process stopped: its build is gone, so it goes to ERROR with a fault and its allocation
  and ports are released (as nova-compute does on start-up);
* with the in-process ``memory://`` transport, instances waiting for a host (BUILD,
  ``scheduling``, no host) lost their message to the conductor: they are handed to the
  conductor again, one request per reservation. (With RabbitMQ the message is still queued.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select

from novalite.compute import actions, cleanup
from novalite.conductor.rpcapi import ConductorClient
from novalite.context import RequestContext
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance
from novalite.domain.states import TaskState, VmState

LOG = logging.getLogger(__name__)
INTERRUPTED = "Instance build was interrupted by a restart of its compute service."


def fail_interrupted_builds(db: Database, hosts: Sequence[str]) -> list[str]:
    """ERROR + fault for BUILDING instances on ``hosts``; returns their uuids."""
    if not hosts:
        return []
    with db.session() as s:
        rows = list(
            s.scalars(
                select(Instance).where(
                    Instance.vm_state == VmState.BUILDING,
                    Instance.deleted.is_(False),
                    Instance.host.in_(list(hosts)),
                )
            )
        )
        for row in rows:
            cleanup.release_resources(s, row.uuid, row.requested_networks)
            actions.add_fault(s, row.uuid, message=INTERRUPTED, host=row.host)
            row.vm_state, row.task_state, row.host, row.node, row.updated_at = (
                VmState.ERROR,
                None,
                None,
                None,
                utcnow(),
            )
    if rows:
        LOG.warning("%d interrupted builds set to ERROR", len(rows))
    return [r.uuid for r in rows]


def resubmit_waiting(db: Database, conductor: ConductorClient) -> int:
    """Cast every instance still waiting for a host to the conductor again; returns how many."""
    with db.reader() as s:
        rows = s.execute(
            select(Instance.uuid, Instance.reservation_id, Instance.project_id, Instance.user_id)
            .where(
                Instance.vm_state == VmState.BUILDING,
                Instance.task_state == TaskState.SCHEDULING,
                Instance.host.is_(None),
                Instance.deleted.is_(False),
            )
            .order_by(Instance.reservation_id, Instance.launch_index)
        ).all()
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for uuid, reservation, project_id, user_id in rows:
        groups.setdefault(reservation, []).append((uuid, project_id, user_id))
    for members in groups.values():
        ctx = RequestContext(user_id=members[0][2], project_id=members[0][1], roles=("member",))
        conductor.schedule_and_build_instances(ctx, [m[0] for m in members], {})
    return len(rows)
