"""A live migration between two real hosts (QEMU: ``virt.qemu.migration``), run by the agents.

The conductor casts ``resize_instance`` to the source agent (as for every move; the migration
is ``running``, the task state ``migrating``, the source allocation held by the migration and
the destination's by the instance). When the source's driver can live-migrate, its agent:

1. calls the destination's agent: ``prepare_live_migration`` (the destination driver makes the
   instance directory and a QEMU waiting for the disks and the memory; answers the target);
2. migrates the guest there (``live_migrate``: disks over NBD, then the memory);
3. calls the destination's agent: ``finish_live_migration`` (the guest continues there);
4. records the server on the destination (``server_moves.finish_move``: migration
   ``completed``, source allocation freed, ports bound there) and destroys its own copy.

Versioned notifications, as Nova's: ``instance.live_migration_pre.start``/``.end`` from the
destination around step 1, ``instance.live_migration_post.start``/``.end`` when the move is
recorded (``server_moves.finish_move``), ``instance.live_migration_abort.start``/``.end`` from the
source when an abort is asked for while its copy runs.

A failure at 1-3 gives the move up (``server_moves.fail_move``: migration ``error``, allocations
back, a fault): the destination's half is aborted and the guest keeps running on the source.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from sqlalchemy import select

from novalite import notifications
from novalite.compute import build
from novalite.compute.live_migration_rpc import (
    FinishLiveMigration,
    LiveMigrationControl,
    PrepareLiveMigration,
)
from novalite.context import RequestContext
from novalite.db.models.compute import Instance
from novalite.messaging.messages import Message, context_from_dict, context_to_dict
from novalite.messaging.transport import Transport
from novalite.services import migrations as records
from novalite.services import server_moves
from novalite.services.migrations import MigrationType
from novalite.virt.driver import DriverError, GuestSpec, LiveMigrationCancelled

LOG = logging.getLogger(__name__)

TOPIC = "compute"
PREPARE_TIMEOUT = 600  # the destination may fetch the image into its cache first
FINISH_TIMEOUT = 600


def can_live_migrate(driver: Any) -> bool:
    return callable(getattr(driver, "live_migrate", None))


def is_live(agent: Any, migration_uuid: str) -> bool:
    with agent.db.reader() as s:
        row = records.by_uuid(s, migration_uuid)
        return row is not None and row.migration_type == MigrationType.LIVE


def _guest(agent: Any, instance_uuid: str, node: str | None = None) -> GuestSpec | None:
    with agent.db.reader() as s:
        guest = build.existing_guest(s, instance_uuid, agent.host)
        if guest is None or node is None:
            return guest
        live = s.scalar(
            select(Instance.id).where(Instance.uuid == instance_uuid, Instance.deleted.is_(False))
        )
        return None if live is None else _on_node(guest, node)


def _on_node(guest: GuestSpec, node: str) -> GuestSpec:
    return dataclasses.replace(guest, node=node)


def migrate_from_here(
    agent: Any,
    transport: Transport,
    ctx_dict: dict[str, Any],
    migration_uuid: str,
    dest_host: str,
    dest_node: str,
) -> None:
    """Source: the whole live migration (steps 1-4 above)."""
    ctx = context_from_dict(ctx_dict)
    row_uuid = _instance_of(agent, migration_uuid)
    guest = _guest(agent, row_uuid) if row_uuid else None
    if guest is None:
        return

    def give_up(reason: str, status: str = "error") -> None:
        """Nova's ``error`` before the guest moved, ``failed`` when a started move was rolled back."""
        LOG.warning("live migration %s of %s failed: %s", migration_uuid, guest.uuid, reason)
        agent.db.write(lambda s: _fail(s, migration_uuid, reason, status))

    client = _Client(transport, ctx)
    try:
        source = agent.driver.live_migration_source(guest)
    except DriverError as exc:
        give_up(str(exc))
        return
    _status(agent, migration_uuid, "preparing", (dest_host, dest_node))
    answer = client.prepare(migration_uuid, guest.uuid, dest_host, dest_node, source)
    if "target" not in answer:
        give_up(f"The destination {dest_host} cannot receive the guest: {answer.get('error')}")
        return
    _status(agent, migration_uuid, "running")
    try:
        agent.driver.live_migrate(guest, answer["target"])
    except DriverError as exc:
        client.finish(migration_uuid, guest.uuid, dest_host, dest_node, abort=True)
        give_up(str(exc), "cancelled" if isinstance(exc, LiveMigrationCancelled) else "failed")
        return
    done = client.finish(migration_uuid, guest.uuid, dest_host, dest_node, abort=False)
    if not done.get("done"):
        try:
            agent.driver.rollback_live_migration(guest)
        except DriverError as exc:
            LOG.error("live migration %s: the source guest could not continue: %s", migration_uuid, exc)
        give_up(f"The guest could not continue on {dest_host}: {done.get('error')}", "failed")
        return
    agent.db.write(lambda s: server_moves.finish_move(s, migration_uuid, host=dest_host, node=dest_node))
    try:
        agent.driver.destroy(guest)
    except DriverError as exc:
        LOG.error("live migration %s: the source copy on %s stays: %s", migration_uuid, agent.host, exc)


def prepare_here(agent: Any, msg: PrepareLiveMigration) -> dict[str, Any]:
    """Destination: the driver's incoming half; the answer carries the target or the error."""
    if not callable(getattr(agent.driver, "prepare_live_migration", None)):
        return {"error": f"the driver of {agent.host} ({type(agent.driver).__name__}) cannot receive one"}
    guest = _guest(agent, msg.instance_uuid, msg.node)
    if guest is None:
        return {"error": f"instance {msg.instance_uuid} is gone"}
    pre = "instance.live_migration_pre"
    notifications.instance_in(agent.db, f"{pre}.start", guest.uuid, host=agent.host)
    try:
        target = agent.driver.prepare_live_migration(guest, msg.source)
    except DriverError as exc:
        return {"error": str(exc)}
    notifications.instance_in(agent.db, f"{pre}.end", guest.uuid, host=agent.host)
    LOG.info(
        "live migration %s of %s: receiving the disks at %s, the memory at %s",
        msg.migration_uuid,
        msg.instance_uuid,
        target.get("nbd_server") or target.get("nbd_socket"),
        target.get("migrate_uri"),
    )
    return {"target": dict(target)}


def finish_here(agent: Any, msg: FinishLiveMigration) -> dict[str, Any]:
    """Destination: the guest continues here, or (``abort``) its half is removed."""
    guest = _guest(agent, msg.instance_uuid, msg.node)
    if guest is None or not callable(getattr(agent.driver, "finish_live_migration", None)):
        return {"error": f"instance {msg.instance_uuid} cannot continue on {agent.host}"}
    if not msg.abort:
        try:
            agent.driver.finish_live_migration(guest)
            return {"done": True}
        except DriverError as exc:
            error = str(exc)
    else:
        error = "aborted"
    try:
        agent.driver.abort_live_migration(guest)
    except DriverError as exc:
        LOG.error(
            "live migration %s: the incoming guest on %s stays: %s", msg.migration_uuid, agent.host, exc
        )
    return {"error": error} if not msg.abort else {"done": False}


def control_here(agent: Any, msg: LiveMigrationControl) -> None:
    """Source: force_complete / abort the live migration running here (nothing when none runs)."""
    control = getattr(agent.driver, "control_live_migration", None)
    if not callable(control):
        return
    with agent.db.reader() as s:
        row = records.by_uuid(s, msg.migration_uuid)
        if row is None or row.status not in records.LIVE_IN_PROGRESS:
            return
    guest = _guest(agent, msg.instance_uuid)
    if guest is None:
        return
    aborting, event = msg.action == "abort", "instance.live_migration_abort"
    if aborting:
        notifications.instance_in(agent.db, f"{event}.start", guest.uuid, host=agent.host)
    try:
        if not control(guest, msg.action):
            LOG.info("live migration %s: no migration running for %s", msg.migration_uuid, msg.action)
    except (DriverError, ValueError) as exc:
        LOG.warning("live migration %s: %s failed: %s", msg.migration_uuid, msg.action, exc)
    if aborting:
        notifications.instance_in(agent.db, f"{event}.end", guest.uuid, host=agent.host)


def _status(agent: Any, migration_uuid: str, status: str, dest: tuple[str, str] | None = None) -> None:
    """The migration's status (and, once chosen, its destination: the destination host's data
    plane plugs the ports of the instances coming in, ``compute.networking``)."""

    def work(s: Any) -> None:
        row = records.by_uuid(s, migration_uuid)
        if row is not None and row.status in ("running", "preparing"):
            records.set_status(row, status)
            if dest is not None:
                row.dest_compute, row.dest_node, row.dest_host = dest[0], dest[1], dest[0]

    agent.db.write(work)


def _fail(s: Any, migration_uuid: str, reason: str, status: str) -> None:
    server_moves.fail_move(s, migration_uuid, reason)
    row = records.by_uuid(s, migration_uuid)
    if row is not None and row.status == "error":
        records.set_status(row, status)


def _instance_of(agent: Any, migration_uuid: str) -> str | None:
    with agent.db.reader() as s:
        row = records.by_uuid(s, migration_uuid)
        return None if row is None else str(row.instance_uuid)


class _Client:
    def __init__(self, transport: Transport, ctx: RequestContext) -> None:
        self.transport, self.ctx = transport, ctx

    def prepare(
        self, migration_uuid: str, instance_uuid: str, host: str, node: str, source: dict[str, Any]
    ) -> dict[str, Any]:
        msg = PrepareLiveMigration(
            context_to_dict(self.ctx), migration_uuid, instance_uuid, host, node, dict(source)
        )
        return self._call(msg, PREPARE_TIMEOUT)

    def finish(
        self, migration_uuid: str, instance_uuid: str, host: str, node: str, *, abort: bool
    ) -> dict[str, Any]:
        msg = FinishLiveMigration(context_to_dict(self.ctx), migration_uuid, instance_uuid, host, node, abort)
        return self._call(msg, FINISH_TIMEOUT)

    def _call(self, msg: Message, timeout: float) -> dict[str, Any]:
        try:
            answer = self.transport.call(TOPIC, msg, timeout=timeout)
        except Exception as exc:  # the destination's agent unreachable, or no answer in time
            return {"error": f"{type(exc).__name__}: {exc}"}
        return answer if isinstance(answer, dict) else {"error": f"unexpected answer {answer!r}"}
