"""``runtime.services.compute_api``: what the servers API asks of the compute side.

``delete_instance`` works in any state (§6.3) and is idempotent:

* no host (still scheduling, or ERROR after a failed build): deleted here at once, its
  allocations and ports released. A conductor that is still scheduling it notices (its
  claim transaction requires the row not deleted) and drops it;
* on a host: task_state ``deleting`` and a cast to that host's agent, which destroys the
  guest, releases allocations and ports and marks the row deleted (or sets ERROR with a
  fault when the driver fails; deleting again retries).

Every call records an InstanceAction ``delete``.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from novalite.compute import cleanup
from novalite.compute.consoles import GetConsoleEndpoint
from novalite.compute.rpcapi import TOPIC, ComputeClient
from novalite.context import RequestContext
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance, InstanceAction
from novalite.domain.states import TaskState
from novalite.errors import NotFound
from novalite.messaging.messages import context_to_dict

_INSTANCES = cast(Table, Instance.__table__)
_ACTIONS = cast(Table, InstanceAction.__table__)
_DELETING = select(_INSTANCES.c.deleted, _INSTANCES.c.host, _INSTANCES.c.requested_networks).where(
    _INSTANCES.c.uuid == bindparam("instance_uuid")
)
_ADD_ACTION = insert(_ACTIONS)
_SET_DELETING = (
    update(_INSTANCES)
    .where(_INSTANCES.c.uuid == bindparam("instance_uuid"))
    .values(task_state=TaskState.DELETING, updated_at=bindparam("now"))
)


class ComputeAPI:
    def __init__(self, db: Database, compute: ComputeClient):
        self.db, self.compute = db, compute

    def delete_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Start deleting the server; returns once the delete is recorded (204 semantics)."""
        # db.write: a server deleted while the scheduler claims it crosses the scheduler's
        # transaction (instance row, then provider) in the other order; on PostgreSQL the loser
        # runs again instead of answering 500
        host = self.db.write(lambda s: _start_delete(s, ctx, instance_uuid))
        if host is not None:
            self.compute.terminate_instance(ctx, instance_uuid=instance_uuid, host=host)

    def get_diagnostics(self, ctx: RequestContext, instance_uuid: str, host: str) -> dict[str, Any]:
        """Ask the server's host (a call): ``{"power_state", "diagnostics"}`` (None: not
        supported by the driver, or not running)."""
        return self.compute.get_diagnostics(ctx, instance_uuid=instance_uuid, host=host)

    def get_console_endpoint(
        self, ctx: RequestContext, instance_uuid: str, host: str, console_type: str
    ) -> dict[str, Any]:
        """Ask the server's host where its console of ``console_type`` listens (a call; the
        answer is ``compute.consoles.console_endpoint``'s)."""
        msg = GetConsoleEndpoint(
            context=context_to_dict(ctx), instance_uuid=instance_uuid, host=host, console_type=console_type
        )
        answer: dict[str, Any] = self.compute.transport.call(TOPIC, msg)
        return answer


def _start_delete(s: Session, ctx: RequestContext, instance_uuid: str) -> str | None:
    """Record the delete; a server on no host is deleted here and then. The host whose compute
    agent must finish the job, or None when nothing is left to do."""
    conn = s.connection()
    row = conn.execute(_DELETING, {"instance_uuid": instance_uuid}).first()
    if row is None:
        raise NotFound(f"Instance {instance_uuid} could not be found.", kind="InstanceNotFound")
    if row.deleted:
        return None
    _record_delete_action(s, ctx, instance_uuid)
    if row.host is None:
        cleanup.release_resources(s, instance_uuid, row.requested_networks)
        cleanup.mark_deleted(s, instance_uuid)
        return None
    conn.execute(_SET_DELETING, {"instance_uuid": instance_uuid, "now": utcnow()})
    return str(row.host)


def _record_delete_action(s: Session, ctx: RequestContext, instance_uuid: str) -> None:
    now = utcnow()
    s.connection().execute(
        _ADD_ACTION,
        {
            "instance_uuid": instance_uuid,
            "action": "delete",
            "request_id": ctx.request_id or "",
            "user_id": ctx.user_id,
            "project_id": ctx.project_id,
            "start_time": now,
            "updated_at": now,
        },
    )
