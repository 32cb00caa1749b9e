"""Evacuate: rebuild the servers of a down compute host on another one (§3.5, §3.6 of the move
operations).

API side (``evacuate``): the checks in Nova's order, task ``rebuilding``, an ``evacuation``
migration (``accepted``, source fields, ``dest_compute`` when a host is given) and the cast of
the conductor's ``evacuate_server``. Engine side: ``start`` hands the source allocation to the
migration (``pre-migrating``); the scheduler claims the destination for the instance; the
destination agent spawns the guest and ``finish`` records the server there (same ports rebound,
same volume attachments re-pointed, migration ``done``); ``fail`` puts everything back.

The source allocation stays with the migration until the source host comes back: its agent's
start-up (``compute.evacuated``) destroys its stale guests and calls ``complete``, which frees
that allocation and marks the migration ``completed``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite import notifications
from novalite.compute import actions as action_log
from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance, Migration, RequestSpec
from novalite.db.models.network import Port
from novalite.db.models.placement import ComputeNode, Service
from novalite.db.models.volume import VolumeAttachment
from novalite.domain import actions
from novalite.domain.flavor import FlavorSnapshot
from novalite.domain.request_spec import RequestSpecDoc
from novalite.domain.states import PowerState, TaskState, VmState
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.messaging.transport import MessagingUnavailable, PeerUnavailable
from novalite.placement import allocations
from novalite.runtime import Runtime
from novalite.services import migrations as records
from novalite.services.server_actions import check_state, record_action
from novalite.services.server_moves import conductor_of
from novalite.services.server_queries import get_instance
from novalite.services.zones import service_is_up

EVACUATION = "evacuation"
EVENT = "compute_rebuild_instance"
# evacuations whose source host still holds a stale guest and the source allocation (§3.6)
SOURCE_PENDING = ("accepted", "pre-migrating", "done")


@dataclass(frozen=True)
class EvacuateRequest:
    """What the API asks of the conductor."""

    migration_uuid: str
    host: str | None
    force: bool
    stop: bool  # 2.95: the server ends SHUTOFF on the destination


# -- API side ---------------------------------------------------------------------------------------


def _check_target(s: Session, inst: Instance, host: str) -> None:
    found = s.scalar(select(ComputeNode.id).where(ComputeNode.host == host, ComputeNode.deleted.is_(False)))
    if found is None:
        raise NotFound(f"Compute host {host} not found.", kind="ComputeHostNotFound")
    if host == inst.host:
        raise BadRequest("The target host can't be the same one.")


def _check_source_down(s: Session, inst: Instance, down_time: int) -> None:
    svc = s.scalars(
        select(Service).where(
            Service.host == inst.host, Service.binary == "nova-compute", Service.deleted.is_(False)
        )
    ).first()
    if svc is not None and service_is_up(svc, down_time):
        raise BadRequest(f"Compute service of {inst.host} is still in use.", kind="ComputeServiceInUse")


def evacuate(
    rt: Runtime, ctx: RequestContext, server_id: str, *, host: str | None, force: bool, stop: bool
) -> None:
    """Locks are not checked (an admin evacuates whatever runs on a dead host)."""
    with rt.db.session() as s:
        inst = get_instance(s, ctx, server_id)
        if host is not None:
            _check_target(s, inst, host)
        check_state(inst, actions.EVACUATE)
        if not inst.host:
            raise Conflict(f"Instance {inst.uuid} is not ready", kind="InstanceNotReady")
        _check_source_down(s, inst, int(rt.settings.service_down_time))
        row = records.new_migration(
            s, inst, migration_type=EVACUATION, status="accepted", new_flavor=dict(inst.flavor or {})
        )
        row.dest_compute = host
        inst.task_state, inst.updated_at = TaskState.REBUILDING, utcnow()
        record_action(s, ctx, inst, "evacuate", event=None)
        notifications.evacuate(s, inst.uuid)
        move = EvacuateRequest(migration_uuid=row.uuid, host=host, force=force, stop=stop)
    try:
        conductor_of(rt).evacuate_server(
            ctx, migration_uuid=move.migration_uuid, host=move.host, force=move.force, stop=move.stop
        )
    except (PeerUnavailable, MessagingUnavailable, Conflict):
        # nothing was sent (the engine restarting, the broker unreachable): the state goes back
        rt.db.write(lambda s: _undo(s, move.migration_uuid))
        raise


def _undo(s: Session, migration_uuid: str) -> None:
    row = records.by_uuid(s, migration_uuid)
    if row is None:
        return
    records.set_status(row, "error")
    inst = _instance(s, row)
    if inst is not None and not inst.deleted:
        inst.task_state, inst.updated_at = None, utcnow()


# -- engine side (the conductor, then the destination agent) ---------------------------------------


@dataclass(frozen=True)
class EvacuationStart:
    spec: RequestSpecDoc
    instance_uuid: str
    project_id: str
    user_id: str
    source_host: str


def _instance(s: Session, row: Migration) -> Instance | None:
    return s.scalars(select(Instance).where(Instance.uuid == row.instance_uuid)).first()


def start(s: Session, migration_uuid: str) -> EvacuationStart | None:
    """The source allocation becomes the migration's; None when there is nothing to do."""
    row = records.by_uuid(s, migration_uuid)
    if row is None or row.status != "accepted":
        return None
    inst = _instance(s, row)
    spec_row = s.get(RequestSpec, row.instance_uuid)
    if inst is None or inst.deleted or spec_row is None or row.source_compute is None:
        records.set_status(row, "error")
        return None
    records.hand_to_migration(s, row)
    records.set_status(row, "pre-migrating")
    spec = dataclasses.replace(
        RequestSpecDoc.from_doc(spec_row.spec),
        flavor=FlavorSnapshot.from_dict(row.new_flavor),
        force_hosts=(),
        force_nodes=(),
        requested_host=None,
        requested_node=None,
        num_instances=1,
    )
    return EvacuationStart(spec, inst.uuid, inst.project_id, inst.user_id, row.source_compute)


def finish(s: Session, migration_uuid: str, *, host: str, node: str, stop: bool) -> bool | None:
    """The guest runs on ``host``: the server is recorded there, ACTIVE (or SHUTOFF when it was
    stopped, or from 2.95 unless it was in ERROR); the migration is ``done``. Returns whether
    the guest is to be powered off, None when the server is gone (its guest too, then)."""
    row = records.by_uuid(s, migration_uuid)
    if row is None or row.status != "pre-migrating":
        return None
    inst = _instance(s, row)
    if inst is None or inst.deleted:
        records.release_for_deleted(s, row.instance_uuid)
        allocations.release(s, row.instance_uuid)
        return None
    row.dest_compute, row.dest_node, row.dest_host = host, node, host
    inst.host, inst.node = host, node
    for port in s.scalars(select(Port).where(Port.device_id == inst.uuid)):
        port.binding_host_id = host
    for att in s.scalars(select(VolumeAttachment).where(VolumeAttachment.instance_uuid == inst.uuid)):
        att.attached_host = host
        if att.connector:
            att.connector = {**att.connector, "host": host}
    stopped = row.old_vm_state == VmState.STOPPED or (stop and row.old_vm_state != VmState.ERROR)
    inst.vm_state = VmState.STOPPED if stopped else VmState.ACTIVE
    inst.power_state = int(PowerState.SHUTDOWN if stopped else PowerState.RUNNING)
    inst.task_state, inst.updated_at = None, utcnow()
    inst.launched_at = utcnow()
    records.set_status(row, "done")
    aid = action_log.find_action(s, inst.uuid, "evacuate", user_id=inst.user_id, project_id=inst.project_id)
    action_log.record_event(s, aid, EVENT, ok=True, host=host)
    return stopped


def fail(s: Session, migration_uuid: str, reason: str, *, scheduling: bool) -> None:
    """The evacuation failed: the destination allocation is dropped and the source one goes back
    to the instance; the migration ends ``error`` (no host found: the server goes to ERROR, as
    Nova's conductor does) or ``failed`` (the destination could not rebuild it)."""
    row = records.by_uuid(s, migration_uuid)
    if row is None:
        return
    inst = _instance(s, row)
    if inst is None or inst.deleted:
        records.release_for_deleted(s, row.instance_uuid)
        allocations.release(s, row.instance_uuid)
        return
    records.hand_back(s, row)
    records.set_status(row, "error" if scheduling else "failed")
    if scheduling:
        inst.vm_state = VmState.ERROR
    inst.task_state, inst.updated_at = None, utcnow()
    action_log.add_fault(s, inst.uuid, message=reason, host=inst.host)
    aid = action_log.find_action(s, inst.uuid, "evacuate", user_id=inst.user_id, project_id=inst.project_id)
    event = "rebuild_server" if scheduling else EVENT
    action_log.record_event(s, aid, event, ok=False, host=None, details=reason)


# -- the source host comes back (§3.6) ---------------------------------------------------------------


@dataclass(frozen=True)
class Stale:
    """An evacuation away from a host: the guest there is stale once the server runs elsewhere."""

    migration_uuid: str
    instance_uuid: str
    source: str
    now_on: str | None  # the host the server runs on now (None: the server is deleted)


def evacuated_from(s: Session, hosts: Sequence[str]) -> list[Stale]:
    """Finished evacuations from ``hosts`` whose source part is not cleaned yet (one query)."""
    rows = s.execute(
        select(
            Migration.uuid, Migration.instance_uuid, Migration.source_compute, Instance.host, Instance.deleted
        )
        .outerjoin(Instance, Instance.uuid == Migration.instance_uuid)
        .where(
            Migration.source_compute.in_(list(hosts)),
            Migration.migration_type == EVACUATION,
            Migration.status == "done",
        )
    ).all()
    return [
        Stale(m_uuid, i_uuid, str(source), None if deleted or deleted is None else host)
        for m_uuid, i_uuid, source, host, deleted in rows
    ]


def complete(s: Session, migration_uuid: str) -> None:
    """The source's stale guest is gone: its allocation (held by the migration) is freed."""
    row = records.by_uuid(s, migration_uuid)
    if row is None or row.status != "done":
        return
    records.drop_source(s, row)
    records.set_status(row, "completed")
