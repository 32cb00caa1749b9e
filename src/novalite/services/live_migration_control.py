"""force_complete and abort of a live migration in progress on a real host (§3.3, §3.4 of the
move operations): the API checked the server and the migration; the source agent acts on its
running migration (``compute.live_migration.control_here``). The fake driver's migrations end
at once, so they are never found in progress.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.compute.live_migration_rpc import LiveMigrationControl
from novalite.context import RequestContext
from novalite.db.models.compute import Instance, Migration
from novalite.messaging.messages import context_to_dict
from novalite.runtime import Runtime
from novalite.services import server_moves
from novalite.services.migrations import LIVE_IN_PROGRESS, MigrationType
from novalite.services.server_actions import record_action

ACTION_NAMES = {"force_complete": "live_migration_force_complete", "abort": "live_migration_cancel"}


def can_force_complete(m: Migration) -> bool:
    return m.migration_type == MigrationType.LIVE and m.status == "running"


def can_abort(m: Migration, *, queued_too: bool) -> bool:
    """``running``; from 2.65 also ``queued`` and ``preparing``."""
    allowed = LIVE_IN_PROGRESS if queued_too else ("running",)
    return m.migration_type == MigrationType.LIVE and m.status in allowed and m.status != "post-migrating"


def send(
    rt: Runtime, ctx: RequestContext, instance_uuid: str, migration_uuid: str, host: str, action: str
) -> None:
    """Record the instance action, then cast the request to the source host's agent."""

    def work(s: Session) -> None:
        inst = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
        if inst is not None:
            record_action(s, ctx, inst, ACTION_NAMES[action], event=None)

    rt.db.write(work)
    msg = LiveMigrationControl(
        context_to_dict(ctx),
        migration_uuid=migration_uuid,
        instance_uuid=instance_uuid,
        host=host,
        action=action,
    )
    server_moves.compute_of(rt).transport.cast("compute", msg)
