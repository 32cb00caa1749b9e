"""Performing server actions (§6.4): load the caller's server, check the action's transition
(``domain.actions``), persist it, record the instance action.

On a simulated host (fake driver) a transition is one conditional UPDATE (expected vm_state and
task_state in the WHERE clause): a concurrent change makes it fail with the same 409 instead of
overwriting. On a host running real guests the UPDATE sets the action's task state instead and
the action is cast to the host's agent once the transaction committed (``begin_transition`` ->
``Handoff`` -> ``hand_off``), the agent found through the runtime the route passes in. Functions
taking ``s`` work in the caller's unit of work; those taking ``db`` or ``rt`` open their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from novalite import notifications
from novalite.compute import hosts, power_actions
from novalite.compute.api import ComputeAPI
from novalite.compute.guest_rpc import RescueInstance, TriggerCrashDump, UnrescueInstance
from novalite.compute.rpcapi import TOPIC, PowerAction
from novalite.context import RequestContext
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance, InstanceAction, InstanceActionEvent
from novalite.db.models.network import Port
from novalite.domain.actions import CRASH_DUMP, HARD_REBOOT, RESCUE, UNRESCUE, Transition
from novalite.domain.states import TaskState, VmState
from novalite.errors import BadRequest, Conflict, NotFound, PolicyNotAuthorized
from novalite.image.service import get_image
from novalite.messaging.messages import Message, context_to_dict
from novalite.messaging.transport import MessagingUnavailable, PeerUnavailable
from novalite.network import ports as net_ports
from novalite.network import service as network
from novalite.runtime import Runtime
from novalite.services import server_updates
from novalite.services.server_queries import get_instance

CONSOLE_LINES = 50


def invalid_state(action: str, instance_uuid: str, attr: str, state: Any) -> Conflict:
    return Conflict(
        f"Cannot '{action}' instance {instance_uuid} while it is in {attr} {state}",
        kind="InstanceInvalidState",
    )


def check_state(inst: Instance, t: Transition) -> None:
    """Nova's ``check_instance_state``: vm_state, then task_state, then launched_at."""
    refused = t.refusal(inst.vm_state, inst.task_state, launched=inst.launched_at is not None)
    if refused is not None:
        raise invalid_state(t.name, inst.uuid, *refused)


def check_not_locked(ctx: RequestContext, inst: Instance) -> None:
    if inst.locked and not ctx.is_admin:
        raise Conflict(f"Instance {inst.uuid} is locked", kind="InstanceIsLocked")


def record_action(s: Session, ctx: RequestContext, inst: Instance, action: str, *, event: str | None) -> None:
    """An instance action (and, for work a compute would do, its finished event)."""
    now = utcnow()
    row = InstanceAction(
        instance_uuid=inst.uuid,
        action=action,
        request_id=ctx.request_id,
        user_id=ctx.user_id,
        project_id=ctx.project_id,
        start_time=now,
        finish_time=now if event else None,
    )
    s.add(row)
    s.flush()
    if event:
        s.add(
            InstanceActionEvent(
                action_id=row.id,
                event=event,
                start_time=now,
                finish_time=now,
                result="Success",
                host=inst.host,
            )
        )
        notifications.action(s, action, inst.uuid)


def agent_of(rt: Runtime, inst: Instance) -> ComputeAPI | None:
    """The compute API that reaches the server's host when that host runs real guests (QEMU);
    None on a simulated host (or with no engine reachable), whose actions are only their
    database transition."""
    if inst.host is None or inst.host.startswith(hosts.PREFIX):
        return None
    return rt.services.compute_api


def agent_task(t: Transition) -> str | None:
    """The task state ``t`` holds while a real host's agent carries it out (None: the
    transition alone is the action, as on a simulated host)."""
    if t is RESCUE:
        return TaskState.RESCUING
    if t is UNRESCUE:
        return TaskState.UNRESCUING
    return power_actions.task_state(t.name, hard=t is HARD_REBOOT)


@dataclass(frozen=True)
class Handoff:
    """What a real host's agent is to do, cast once the transaction that recorded it committed
    (the agent checks the task state it finds): ``hand_off``."""

    agent: ComputeAPI
    instance_uuid: str
    task_state: str | None  # None: the action sets none (trigger_crash_dump)
    message: Message


def apply_transition(
    s: Session, ctx: RequestContext, inst: Instance, t: Transition, *, task: str | None
) -> None:
    """Check the lock and the transition, write it with the expected states, record the action.
    With ``task`` (a real host's agent does the action) only the task state is written and the
    action's event is left to the agent."""
    check_not_locked(ctx, inst)
    check_state(inst, t)
    now = utcnow()
    values: dict[str, Any] = {"power_state": int(t.power), "task_state": None, "updated_at": now}
    if t.to_vm is not None:
        values["vm_state"] = t.to_vm
    if task is not None:
        values = {"task_state": task, "updated_at": now}
    result = s.execute(
        update(Instance)
        .where(
            Instance.id == inst.id,
            Instance.vm_state == inst.vm_state,
            Instance.task_state.is_(None)
            if inst.task_state is None
            else Instance.task_state == inst.task_state,
        )
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise invalid_state(t.name, inst.uuid, "task_state", "changed")
    record_action(s, ctx, inst, t.name, event=None if task is not None else f"compute_{t.name}_instance")


def begin_transition(
    rt: Runtime, s: Session, ctx: RequestContext, inst: Instance, t: Transition, *, image_ref: str = ""
) -> Handoff | None:
    """``apply_transition`` on the server's host: the transition alone on a simulated host, the
    task state and a ``Handoff`` for the agent of a real one (``image_ref``: rescue's image)."""
    agent = agent_of(rt, inst)
    task = agent_task(t) if agent is not None else None
    apply_transition(s, ctx, inst, t, task=task)
    if agent is None or task is None or inst.host is None:
        return None
    context, uuid, host = context_to_dict(ctx), inst.uuid, inst.host
    message: Message
    if t is RESCUE:
        message = RescueInstance(context, uuid, host, task_state=task, image_ref=image_ref)
    elif t is UNRESCUE:
        message = UnrescueInstance(context, uuid, host, task_state=task)
    else:
        message = PowerAction(context, uuid, host, action=t.name, task_state=task, hard=t is HARD_REBOOT)
    return Handoff(agent, uuid, task, message)


def hand_off(rt: Runtime, handoff: Handoff | None) -> None:
    """Cast the committed action to the host's agent. While the engine restarts or the broker is
    down nothing is sent: the server gets its task state back, then the 503 goes to the caller."""
    if handoff is None:
        return
    try:
        handoff.agent.compute.transport.cast(TOPIC, handoff.message)
    except (PeerUnavailable, MessagingUnavailable):
        task = handoff.task_state
        if task is not None:
            with rt.db.session() as s:
                _give_back(s, handoff.instance_uuid, task)
        raise


def _give_back(s: Session, uuid: str, task: str) -> None:
    s.execute(
        update(Instance)
        .where(Instance.uuid == uuid, Instance.task_state == task)
        .values(task_state=None, updated_at=utcnow())
    )


def perform(
    rt: Runtime, ctx: RequestContext, server_id: str, t: Transition | Callable[[], Transition]
) -> None:
    """An action that is its transition (stop, start, reboot, restore, unrescue, ...), carried
    out by the host's agent on a real guest. ``t`` may be a function giving the transition once
    the server is found (a missing server is a 404 before the body is checked)."""
    with rt.db.session() as s:
        inst = get_instance(s, ctx, server_id)
        handoff = begin_transition(rt, s, ctx, inst, t if isinstance(t, Transition) else t())
    hand_off(rt, handoff)


# -- lock ------------------------------------------------------------------------------------------


def lock(s: Session, ctx: RequestContext, inst: Instance, reason: str | None) -> None:
    inst.locked, inst.locked_by, inst.locked_reason = (
        True,
        "admin" if ctx.is_admin and ctx.project_id != inst.project_id else "owner",
        reason,
    )
    inst.updated_at = utcnow()
    record_action(s, ctx, inst, "lock", event=None)


def unlock(s: Session, ctx: RequestContext, inst: Instance) -> None:
    if inst.locked and inst.locked_by == "admin" and not ctx.is_admin:
        raise PolicyNotAuthorized("os_compute_api:os-lock-server:unlock:unlock_override")
    inst.locked, inst.locked_by, inst.locked_reason = False, None, None
    inst.updated_at = utcnow()
    record_action(s, ctx, inst, "unlock", event=None)


# -- security groups -------------------------------------------------------------------------------


def _resolve_group(s: Session, inst: Instance, name: str) -> str:
    try:
        return network.resolve_security_group(s, inst.project_id, name)
    except BadRequest as exc:  # the action answers 404 for an unknown group
        raise NotFound(exc.message, kind=exc.kind) from None


def change_security_group(s: Session, inst: Instance, name: str, *, add: bool) -> None:
    """addSecurityGroup / removeSecurityGroup: on every port of the server (§6.4, Neutron's view)."""
    group_id = _resolve_group(s, inst, name)
    instance_ports = list(
        s.scalars(select(Port).where(Port.device_id == inst.uuid).order_by(Port.created_at))
    )
    if not instance_ports:
        raise NotFound(
            f"instance_id {inst.uuid} could not be found as device id on any ports",
            kind="SecurityGroupNotFound",
        )
    current = {p.id: net_ports.port_group_ids(s, p.id) for p in instance_ports}
    if not add and not any(group_id in ids for ids in current.values()):
        raise NotFound(
            f"Security group {name} not associated with the instance {inst.uuid}",
            kind="SecurityGroupNotFound",
        )
    for port in instance_ports:
        ids = current[port.id]
        if add:
            wanted = ids if group_id in ids else [*ids, group_id]
        else:
            wanted = [i for i in ids if i != group_id]
        if wanted != ids:
            net_ports.set_security_groups(s, port, wanted)


# -- admin and other actions -----------------------------------------------------------------------


def reset_state(db: Database, ctx: RequestContext, server_id: str, *, active: bool) -> None:
    """Admin: force vm_state to active or error and clear the task."""
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        inst.vm_state = VmState.ACTIVE if active else VmState.ERROR
        inst.task_state, inst.updated_at = None, utcnow()
        record_action(s, ctx, inst, "resetState", event=None)


def check_exists(db: Database, ctx: RequestContext, server_id: str) -> None:
    """Admin actions with nothing to redo on a simulated host: the server must exist."""
    with db.reader() as s:
        get_instance(s, ctx, server_id)


def force_delete(rt: Runtime, ctx: RequestContext, server_id: str) -> None:
    """Delete now, in any state (there is no deferred delete here, so this is DELETE)."""
    server_updates.delete_server(rt, ctx, server_id)


def trigger_crash_dump(rt: Runtime, ctx: RequestContext, server_id: str) -> None:
    """An NMI to the guest (2.17); the host's agent sends it to a real guest."""
    with rt.db.session() as s:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, CRASH_DUMP)
        agent = agent_of(rt, inst)
        handoff = None
        if agent is not None and inst.host is not None:
            record_action(s, ctx, inst, "trigger_crash_dump", event=None)
            message = TriggerCrashDump(context_to_dict(ctx), inst.uuid, inst.host)
            handoff = Handoff(agent, inst.uuid, None, message)
        else:
            record_action(s, ctx, inst, "trigger_crash_dump", event="compute_trigger_crash_dump")
    hand_off(rt, handoff)


def console_output(db: Database, ctx: RequestContext, server_id: str, length: int) -> str:
    """The last ``length`` lines of the (simulated) serial console; -1 for all of it."""
    with db.reader() as s:
        inst = get_instance(s, ctx, server_id)
    if inst.host is None or inst.vm_state == VmState.BUILDING:
        raise Conflict(f"Instance {server_id} is not ready", kind="InstanceNotReady")
    lines = [
        f"[{i:6d}.000000] novalite fake console of {inst.display_name} ({inst.uuid}) on {inst.host}"
        for i in range(CONSOLE_LINES)
    ]
    if length >= 0:
        lines = lines[len(lines) - length :] if length else []
    return "\n".join(lines)


def rescue(
    rt: Runtime, ctx: RequestContext, server_id: str, *, image_ref: str | None, volume_backed_ok: bool
) -> None:
    """Boot the server from a rescue image (its own image when ``image_ref`` is None): RESCUE.
    ``volume_backed_ok``: a boot-from-volume server may be rescued (2.87)."""
    with rt.db.session() as s:
        inst = get_instance(s, ctx, server_id)
        if not inst.image_ref and not volume_backed_ok:
            raise BadRequest(
                f"Cannot rescue a volume-backed instance {inst.uuid}", kind="InstanceNotRescuable"
            )
        image_ref = image_ref or inst.image_ref
        if image_ref and get_image(s, ctx, image_ref) is None:
            raise BadRequest(f"Image {image_ref} could not be found.", kind="ImageNotFound")
        handoff = begin_transition(rt, s, ctx, inst, RESCUE, image_ref=image_ref or "")
    hand_off(rt, handoff)
