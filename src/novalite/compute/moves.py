"""A compute agent's part in a move (resize, cold and live migration; §5.1 of the move
operations): the source agent lets its guest go (``resize_instance``), the destination's takes
it (``finish_resize``) and the server is recorded there (``services.server_moves.finish_move``).

Simulated guests move at once: the fake driver keeps every simulated host's guests by uuid, so a
guest is on its new host as soon as the database says so. A live migration from a host whose
driver live-migrates (QEMU) runs ``compute.live_migration`` (the destination's agent prepares and
finishes, the source's migrates). Any other move from or to a real host is given up
(``fail_move``: the server stays where it was, with its allocation) rather than leaving a guest
behind.
"""

from __future__ import annotations

import logging
from typing import Any

from novalite import notifications
from novalite.compute import live_migration
from novalite.compute.rpcapi import ComputeClient, FinishResize, ResizeInstance
from novalite.messaging.messages import context_from_dict
from novalite.services import server_moves
from novalite.virt.fake import FakeDriver

LOG = logging.getLogger(__name__)


def _moves_guests(agent: Any) -> bool:
    return isinstance(agent.driver, FakeDriver)


def _refuse(agent: Any, migration_uuid: str) -> None:
    reason = (
        f"Moving a guest to or from {agent.host} is not supported by its driver "
        f"({type(agent.driver).__name__})."
    )
    LOG.info("move %s refused on %s: %s", migration_uuid, agent.host, reason)
    agent.db.write(lambda s: server_moves.fail_move(s, migration_uuid, reason))


def resize_instance(agent: Any, msg: ResizeInstance) -> None:
    """Source: give the guest up, then hand the move to the destination's agent. A real guest
    whose driver can live-migrate moves running (``compute.live_migration``)."""
    if not _moves_guests(agent) and live_migration.can_live_migrate(agent.driver):
        if live_migration.is_live(agent, msg.migration_uuid):
            live_migration.migrate_from_here(
                agent,
                agent.conductor.transport,
                msg.context,
                msg.migration_uuid,
                msg.dest_host,
                msg.dest_node,
            )
            return
    if not _moves_guests(agent):
        _refuse(agent, msg.migration_uuid)
        return
    notifications.move_in(agent.db, "instance.resize.start", msg.migration_uuid, host=agent.host)
    ComputeClient(agent.conductor.transport).finish_resize(
        context_from_dict(msg.context),
        migration_uuid=msg.migration_uuid,
        host=msg.dest_host,
        node=msg.dest_node,
    )
    notifications.move_in(agent.db, "instance.resize.end", msg.migration_uuid, host=agent.host)


def finish_resize(agent: Any, msg: FinishResize) -> None:
    """Destination: the server runs here from now on (VERIFY_RESIZE, or as it was for a live move)."""
    if not _moves_guests(agent):
        _refuse(agent, msg.migration_uuid)
        return
    agent.db.write(lambda s: server_moves.finish_move(s, msg.migration_uuid, host=msg.host, node=msg.node))
