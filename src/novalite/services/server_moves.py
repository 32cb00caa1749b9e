"""Moving a server between hosts: resize, cold migrate, live migrate, confirm and revert (§2, §3
of the move operations).

API side (``resize``, ``migrate``, ``live_migrate``): check the server and the request in Nova's
order, set the task state, write the migration record and cast the conductor's
``migrate_server``. Engine side (the conductor): ``start_move`` hands the source allocation to
the migration; the scheduler claims the destination for the instance; ``finish_move`` puts the
server there (the fake driver's move is instant) or ``fail_move`` puts everything back.
``confirm_resize`` frees the source allocation, ``revert_resize`` moves it back.

Placement at every step: the source allocation is held by exactly one consumer (the instance
before and after a revert, the migration in between), the destination's by the instance once
scheduled, so usage always equals live servers plus moves in flight.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite import notifications
from novalite.compute import actions as action_log
from novalite.compute.rpcapi import ComputeClient
from novalite.conductor.rpcapi import ConductorClient
from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance, Migration, RequestSpec
from novalite.db.models.network import Port
from novalite.db.models.placement import ComputeNode
from novalite.domain import actions
from novalite.domain.flavor import FlavorSnapshot
from novalite.domain.request_spec import RequestSpecDoc
from novalite.domain.states import PowerState, TaskState, VmState
from novalite.errors import BadRequest, Conflict, NotFound, OverQuota
from novalite.messaging.transport import MessagingUnavailable, PeerUnavailable
from novalite.placement import allocations
from novalite.runtime import Runtime
from novalite.services import flavors, quotas
from novalite.services import migrations as records
from novalite.services.migrations import MigrationType
from novalite.services.server_actions import check_not_locked, check_state, record_action
from novalite.services.server_queries import get_instance

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class MoveRequest:
    """What the API asks of the conductor: move the migration's server, maybe to ``host``."""

    migration_uuid: str
    host: str | None = None
    ignore_hosts: tuple[str, ...] = ()


# -- API side ---------------------------------------------------------------------------------------


def _check_host_ready(inst: Instance) -> None:
    if not inst.host:
        raise Conflict(f"Instance {inst.uuid} is not ready", kind="InstanceNotReady")


def _known_host(s: Session, host: str) -> None:
    found = s.scalar(select(ComputeNode.id).where(ComputeNode.host == host, ComputeNode.deleted.is_(False)))
    if found is None:
        raise BadRequest(f"Compute host {host} could not be found.", kind="ComputeHostNotFound")


def _new_flavor(s: Session, ctx: RequestContext, inst: Instance, flavor_ref: str) -> dict[str, Any]:
    """The flavor to resize to, with Nova's refusals (§2.2 steps 5-6)."""
    try:
        flavor = flavors.get_flavor(s, ctx, flavor_ref)
    except NotFound:
        raise BadRequest(f"Flavor {flavor_ref} could not be found.", kind="FlavorNotFound") from None
    if flavor.disabled:
        raise BadRequest(f"Flavor {flavor_ref} could not be found.", kind="FlavorNotFound")
    new = flavors.flavor_snapshot(flavor)
    volume_backed = not inst.image_ref
    if not volume_backed and new["root_gb"] == 0 and inst.root_gb != 0:
        raise BadRequest(
            "Server disk was unable to be resized because: Resize to zero disk flavor is not allowed.",
            kind="CannotResizeDisk",
        )
    if str(new["flavorid"]) == str(inst.flavor_id):
        raise BadRequest("When resizing, instances must change flavor!", kind="CannotResizeToSameFlavor")
    if not volume_backed and (new["root_gb"] < inst.root_gb or new["ephemeral_gb"] < inst.ephemeral_gb):
        # Nova's libvirt driver refuses this on the source after the 202; said at once here
        raise BadRequest(
            "Server disk was unable to be resized because: Unable to resize disk down.",
            kind="ResizeError",
        )
    return new


def check_upsize_quota(s: Session, inst: Instance, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Legacy quota for a resize (§2.5): only the growth of cores and RAM is checked."""
    deltas = {
        "instances": 0,
        "cores": max(0, int(new["vcpus"]) - int(old["vcpus"])),
        "ram": max(0, int(new["memory_mb"]) - int(old["memory_mb"])),
    }
    if not deltas["cores"] and not deltas["ram"]:
        return
    for limits, usage in quotas._levels(s, inst.project_id, inst.user_id):
        overs = quotas._overs(limits, usage, deltas)
        if overs:
            names = ", ".join(overs)
            requested = ", ".join(str(deltas[r]) for r in overs)
            used = ", ".join(str(usage[r]) for r in overs)
            limit = ", ".join(str(limits[r]) for r in overs)
            raise OverQuota(
                f"Quota exceeded for {names}: Requested {requested}, but already used {used} of "
                f"{limit} {names}",
                kind="OverQuota",
            )


def begin(
    rt: Runtime,
    ctx: RequestContext,
    server_id: str,
    *,
    transition: actions.Transition,
    flavor_ref: str | None,
    host: str | None,
    auto_disk_config: bool = False,
) -> MoveRequest:
    with rt.db.session() as s:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, transition)
        _check_host_ready(inst)
        old = dict(inst.flavor or {})
        if flavor_ref is not None:
            new = _new_flavor(s, ctx, inst, flavor_ref)
            check_upsize_quota(s, inst, old, new)
            kind, task = MigrationType.RESIZE, TaskState.RESIZE_PREP
        elif transition is actions.LIVE_MIGRATE:
            new, kind, task = old, MigrationType.LIVE, TaskState.MIGRATING
        else:
            new, kind, task = old, MigrationType.COLD, TaskState.RESIZE_PREP
        if host is not None:
            if kind == MigrationType.COLD and host == inst.host:
                raise BadRequest(
                    "Cannot migrate to the host where the server exists.", kind="CannotMigrateToSameHost"
                )
            _known_host(s, host)
            if kind == MigrationType.LIVE and host == inst.host:
                raise BadRequest(
                    f"Unable to migrate instance ({inst.uuid}) to current host ({inst.host}).",
                    kind="UnableToMigrateToSelf",
                )
        same_host_ok = kind == MigrationType.RESIZE and rt.settings.allow_resize_to_same_host
        row = records.new_migration(
            s,
            inst,
            migration_type=kind,
            status="accepted" if kind == MigrationType.LIVE else "pre-migrating",
            new_flavor=new,
        )
        inst.task_state, inst.updated_at = task, utcnow()
        if kind != MigrationType.LIVE:  # resize and cold migrate reset diskConfig (§2.2 step 9)
            inst.progress, inst.auto_disk_config = 0, auto_disk_config
        record_action(
            s, ctx, inst, transition.name if kind != MigrationType.LIVE else "live-migration", event=None
        )
        return MoveRequest(
            migration_uuid=row.uuid,
            host=host,
            ignore_hosts=() if same_host_ok or inst.host is None else (inst.host,),
        )


def action_id(s: Session, inst: Instance, name: str) -> int:
    """The instance's latest action ``name`` (created when missing), for the engine's events."""
    return action_log.find_action(s, inst.uuid, name, user_id=inst.user_id, project_id=inst.project_id)


def compute_of(rt: Runtime) -> ComputeClient:
    compute_api = rt.services.compute_api
    if compute_api is None:
        raise Conflict("Service is unavailable at this time.", kind="ServiceUnavailable")
    return compute_api.compute


def conductor_of(rt: Runtime) -> ConductorClient:
    conductor = rt.services.conductor
    if conductor is None:
        raise Conflict("Service is unavailable at this time.", kind="ServiceUnavailable")
    return conductor


def _cast(rt: Runtime, ctx: RequestContext, move: MoveRequest) -> None:
    """Hand the move to the conductor; while the engine restarts (nothing was sent) the server
    is given back its task state and the migration ends in ``error`` before the 503."""
    try:
        conductor_of(rt).migrate_server(
            ctx, migration_uuid=move.migration_uuid, host=move.host, ignore_hosts=list(move.ignore_hosts)
        )
    except (PeerUnavailable, MessagingUnavailable, Conflict):
        # nothing was sent (the engine restarting, the broker unreachable): the state goes back
        rt.db.write(lambda s: _undo_begin(s, move.migration_uuid))
        raise


def _undo_begin(s: Session, migration_uuid: str) -> None:
    row = records.by_uuid(s, migration_uuid)
    if row is None:
        return
    records.set_status(row, "error")
    inst = s.scalars(select(Instance).where(Instance.uuid == row.instance_uuid)).first()
    if inst is not None and not inst.deleted:
        inst.task_state, inst.updated_at = None, utcnow()


def resize(
    rt: Runtime, ctx: RequestContext, server_id: str, flavor_ref: str, *, auto_disk_config: bool = False
) -> None:
    """``auto_disk_config``: OS-DCF:diskConfig AUTO (a resize without it resets it to MANUAL)."""
    move = begin(
        rt,
        ctx,
        server_id,
        transition=actions.RESIZE,
        flavor_ref=flavor_ref,
        host=None,
        auto_disk_config=auto_disk_config,
    )
    _cast(rt, ctx, move)


def migrate(rt: Runtime, ctx: RequestContext, server_id: str, host: str | None) -> None:
    _cast(rt, ctx, begin(rt, ctx, server_id, transition=actions.MIGRATE, flavor_ref=None, host=host))


def live_migrate(rt: Runtime, ctx: RequestContext, server_id: str, host: str | None) -> None:
    _cast(rt, ctx, begin(rt, ctx, server_id, transition=actions.LIVE_MIGRATE, flavor_ref=None, host=host))


def _finished_migration(s: Session, inst: Instance) -> Migration:
    row = records.latest(s, inst.uuid, statuses=("finished",))
    if row is None or row.migration_type == MigrationType.LIVE:
        raise BadRequest("Instance has not been resized.", kind="MigrationNotFoundByStatus")
    return row


def confirm_resize(rt: Runtime, ctx: RequestContext, server_id: str) -> None:
    """§2.4: the source allocation is freed; the server is ACTIVE (or SHUTOFF) where it is."""

    def work(s: Session) -> None:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, actions.CONFIRM_RESIZE)
        confirm(s, ctx, inst, _finished_migration(s, inst))

    rt.db.write(work)


def confirm(s: Session, ctx: RequestContext, inst: Instance, row: Migration) -> None:
    """Carry out a confirm (also the auto-confirm of ``resize_confirm_window``)."""
    records.drop_source(s, row)
    records.set_status(row, "confirmed")
    stopped = row.old_vm_state == VmState.STOPPED
    inst.vm_state = VmState.STOPPED if stopped else VmState.ACTIVE
    inst.power_state = int(PowerState.SHUTDOWN if stopped else PowerState.RUNNING)
    inst.task_state, inst.updated_at = None, utcnow()
    record_action(s, ctx, inst, "confirmResize", event="compute_confirm_resize")


def revert_resize(rt: Runtime, ctx: RequestContext, server_id: str) -> None:
    """§2.4: back to the source host and the old flavor; the destination allocation is freed."""

    def work(s: Session) -> None:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, actions.REVERT_RESIZE)
        row = _finished_migration(s, inst)
        # no quota check: until the resize ends, usage already counts the larger of the two
        # flavors (services.quotas), so going back to the old one never needs more
        records.hand_back(s, row)
        records.set_status(row, "reverted")
        _put_on(inst, host=row.source_compute, node=row.source_node, flavor=row.old_flavor)
        _set_spec_flavor(s, inst.uuid, row.old_flavor)
        stopped = row.old_vm_state == VmState.STOPPED
        inst.vm_state = VmState.STOPPED if stopped else VmState.ACTIVE
        inst.power_state = int(PowerState.SHUTDOWN if stopped else PowerState.RUNNING)
        inst.task_state, inst.updated_at = None, utcnow()
        _rebind_ports(s, inst.uuid, row.source_compute)
        record_action(s, ctx, inst, "revertResize", event="compute_revert_resize")

    rt.db.write(work)


# -- engine side (the conductor) ---------------------------------------------------------------------


@dataclass(frozen=True)
class MoveStart:
    """What the conductor schedules with: the spec (new flavor), the owner and the kind of move."""

    spec: RequestSpecDoc
    instance_uuid: str
    project_id: str
    user_id: str
    migration_type: str
    source_host: str | None = None


def _put_on(inst: Instance, *, host: str | None, node: str | None, flavor: dict[str, Any]) -> None:
    inst.host, inst.node = host, node
    inst.flavor = dict(flavor)
    inst.flavor_id = str(flavor.get("flavorid") or inst.flavor_id)
    inst.memory_mb, inst.vcpus = int(flavor["memory_mb"]), int(flavor["vcpus"])
    inst.root_gb, inst.ephemeral_gb = int(flavor["root_gb"]), int(flavor.get("ephemeral_gb") or 0)


def _set_spec_flavor(s: Session, instance_uuid: str, flavor: dict[str, Any]) -> None:
    row = s.get(RequestSpec, instance_uuid)
    if row is None:
        return
    keys = ("flavorid", "name", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "swap", "extra_specs")
    row.spec = {**row.spec, "flavor": {k: flavor.get(k) for k in keys}}


def _rebind_ports(s: Session, instance_uuid: str, host: str | None) -> None:
    for port in s.scalars(select(Port).where(Port.device_id == instance_uuid)):
        port.binding_host_id = host or ""


def start_move(s: Session, migration_uuid: str) -> MoveStart | None:
    """Hand the source allocation to the migration; None when the server is gone meanwhile."""
    row = records.by_uuid(s, migration_uuid)
    if row is None or row.status not in ("pre-migrating", "accepted"):  # given up meanwhile
        return None
    inst = s.scalars(select(Instance).where(Instance.uuid == row.instance_uuid)).first()
    spec_row = s.get(RequestSpec, row.instance_uuid)
    if inst is None or inst.deleted or spec_row is None:
        records.set_status(row, "error")
        return None
    records.hand_to_migration(s, row)
    row.status = "migrating" if row.migration_type != MigrationType.LIVE else "running"
    spec = RequestSpecDoc.from_doc(spec_row.spec)
    spec = dataclasses.replace(
        spec,
        flavor=FlavorSnapshot.from_dict(row.new_flavor),
        force_hosts=(),
        force_nodes=(),
        requested_host=None,
        requested_node=None,
        num_instances=1,
    )
    return MoveStart(spec, inst.uuid, inst.project_id, inst.user_id, row.migration_type, row.source_compute)


def finish_move(s: Session, migration_uuid: str, *, host: str, node: str) -> None:
    """The server runs on ``host`` now: VERIFY_RESIZE after a resize or cold migration (the
    source allocation stays with the migration until confirm/revert), unchanged state after a
    live migration (whose source allocation is freed at once)."""
    row = records.by_uuid(s, migration_uuid)
    if row is None:
        return
    inst = s.scalars(select(Instance).where(Instance.uuid == row.instance_uuid)).first()
    if inst is None or inst.deleted:  # deleted meanwhile: nothing of the move stays
        records.release_for_deleted(s, row.instance_uuid)
        allocations.release(s, row.instance_uuid)
        return
    row.dest_compute, row.dest_node, row.dest_host = host, node, host
    _put_on(inst, host=host, node=node, flavor=row.new_flavor)
    inst.launched_on = inst.launched_on or host
    _rebind_ports(s, inst.uuid, host)
    action_name = "live-migration"
    if row.migration_type == MigrationType.LIVE:
        records.drop_source(s, row)
        records.set_status(row, "completed")
        event = "compute_live_migration"
    else:
        _set_spec_flavor(s, inst.uuid, row.new_flavor)
        records.set_status(row, "finished")
        inst.vm_state = VmState.RESIZED
        action_name = "resize" if row.migration_type == MigrationType.RESIZE else "migrate"
        event = "compute_finish_resize"
        if row.old_vm_state != VmState.STOPPED:
            inst.power_state = int(PowerState.RUNNING)
        inst.launched_at = utcnow()
    inst.task_state, inst.updated_at = None, utcnow()
    inst.progress = 100
    action_id = action_log.find_action(
        s, inst.uuid, action_name, user_id=inst.user_id, project_id=inst.project_id
    )
    action_log.record_event(s, action_id, event, ok=True, host=host)
    notifications.action(s, action_name, inst.uuid, host=host)


def fail_move(s: Session, migration_uuid: str, reason: str) -> None:
    """Scheduling (or the move) failed: allocations back, migration ``error``, vm_state kept,
    task cleared, a fault saying why (§2.3)."""
    row = records.by_uuid(s, migration_uuid)
    if row is None:
        return
    inst = s.scalars(select(Instance).where(Instance.uuid == row.instance_uuid)).first()
    if inst is None or inst.deleted:
        records.release_for_deleted(s, row.instance_uuid)
        return
    records.hand_back(s, row)
    records.set_status(row, "error")
    inst.task_state, inst.updated_at = None, utcnow()
    action_log.add_fault(s, inst.uuid, message=reason, host=inst.host)
    name, event = {
        MigrationType.RESIZE: ("resize", "cold_migrate"),
        MigrationType.COLD: ("migrate", "cold_migrate"),
        "evacuation": ("evacuate", "rebuild_server"),  # services.evacuate's names
    }.get(row.migration_type, ("live-migration", "conductor_live_migrate_instance"))
    action_id = action_log.find_action(s, inst.uuid, name, user_id=inst.user_id, project_id=inst.project_id)
    action_log.record_event(s, action_id, event, ok=False, host=None, details=reason)


def unconfirmed(s: Session, window: int) -> list[Migration]:
    """Migrations finished at least ``window`` seconds ago (``resize_confirm_window``)."""
    cutoff = utcnow() - dt.timedelta(seconds=window)
    return list(
        s.scalars(
            select(Migration).where(
                Migration.status == "finished",
                Migration.migration_type != MigrationType.LIVE,
                Migration.updated_at <= cutoff,
            )
        )
    )


def auto_confirm(s: Session, row: Migration) -> None:
    """Confirm one unconfirmed resize as an admin would (locks ignored)."""
    inst = s.scalars(select(Instance).where(Instance.uuid == row.instance_uuid)).first()
    if inst is None or inst.deleted or inst.vm_state != VmState.RESIZED or inst.task_state is not None:
        records.set_status(row, "error")
        return
    ctx = RequestContext(user_id=inst.user_id, project_id=inst.project_id, roles=("admin",))
    confirm(s, ctx, inst, row)


def anything_interrupted(s: Session, *, older_than: int) -> bool:
    """Whether ``recover_interrupted`` has anything to do (one read)."""
    cutoff = utcnow() - dt.timedelta(seconds=older_than)
    moves = select(Migration.id).where(Migration.status.in_(_INTERRUPTIBLE), Migration.updated_at <= cutoff)
    unshelves = select(Instance.id).where(
        Instance.task_state == TaskState.UNSHELVING,
        Instance.deleted.is_(False),
        Instance.updated_at <= cutoff,
    )
    return s.execute(moves.limit(1)).first() is not None or s.execute(unshelves.limit(1)).first() is not None


def recover_interrupted(s: Session, *, older_than: int) -> int:
    """Moves no conductor moved on for ``older_than`` seconds (an engine died under them) are
    given up: allocations back to the instance, migration ``error``, task cleared, a fault; so
    are unshelves waiting that long for a host (the server stays SHELVED_OFFLOADED). Another
    engine on the same database may be working on a younger one. Returns how many moves."""
    cutoff = utcnow() - dt.timedelta(seconds=older_than)
    rows = list(
        s.scalars(
            select(Migration).where(Migration.status.in_(_INTERRUPTIBLE), Migration.updated_at <= cutoff)
        )
    )
    for row in rows:
        fail_move(s, row.uuid, "The move was interrupted by a restart of the compute engine.")
    waiting = s.scalars(
        select(Instance).where(
            Instance.task_state == TaskState.UNSHELVING,
            Instance.vm_state == VmState.SHELVED_OFFLOADED,
            Instance.deleted.is_(False),
            Instance.updated_at <= cutoff,
        )
    )
    for inst in waiting:
        inst.task_state, inst.updated_at = None, utcnow()
    return len(rows)


# migration states that only a running conductor moves on from
_INTERRUPTIBLE = ("pre-migrating", "accepted", "migrating", "preparing", "running")
