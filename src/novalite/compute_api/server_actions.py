"""POST /servers/{id}/action: power and lock actions with Nova's state checks (§6.4); other
modules add their actions with ``register_action``.

Each action declares the vm_states it accepts (task_state must be None unless stated) and the
state it leaves the server in. The fake virt driver has nothing to do for these, so the
transition is one conditional UPDATE (expected vm_state and task_state in the WHERE clause):
a concurrent change makes it fail with the same 409 instead of overwriting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.api.microversion import V, request_version
from novalite.compute_api.schemas.servers import NAME_PATTERN
from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance, InstanceAction, InstanceActionEvent
from novalite.domain.states import PowerState, TaskState, VmState
from novalite.errors import BadRequest, Conflict, NotFound, PolicyNotAuthorized
from novalite.services import server_queries as queries

router = APIRouter(prefix="/compute/v2.1")

_HARD_REBOOT_TASKS = (
    None,
    "rebooting",
    "reboot_pending",
    "reboot_started",
    "rebooting_hard",
    "reboot_pending_hard",
    "reboot_started_hard",
    TaskState.PAUSING,
    TaskState.UNPAUSING,
    TaskState.SUSPENDING,
    TaskState.RESUMING,
)


@dataclass(frozen=True)
class Transition:
    """An action: accepted states, then the state the server is left in (vm_state None = unchanged)."""

    name: str  # as in instance actions and Nova's 409 text
    from_vm: tuple[str, ...]
    to_vm: str | None
    power: PowerState
    from_task: tuple[str | None, ...] = (None,)
    needs_launched: bool = True


TRANSITIONS: dict[str, Transition] = {
    "os-stop": Transition("stop", (VmState.ACTIVE, VmState.ERROR), VmState.STOPPED, PowerState.SHUTDOWN),
    "os-start": Transition("start", (VmState.STOPPED,), VmState.ACTIVE, PowerState.RUNNING),
    "pause": Transition("pause", (VmState.ACTIVE,), VmState.PAUSED, PowerState.PAUSED),
    "unpause": Transition("unpause", (VmState.PAUSED,), VmState.ACTIVE, PowerState.RUNNING),
    "suspend": Transition("suspend", (VmState.ACTIVE,), VmState.SUSPENDED, PowerState.SUSPENDED),
    "resume": Transition("resume", (VmState.SUSPENDED,), VmState.ACTIVE, PowerState.RUNNING),
}
SOFT_REBOOT = Transition("reboot", (VmState.ACTIVE,), None, PowerState.RUNNING)
HARD_REBOOT = Transition(
    "reboot",
    (VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED, VmState.ERROR),
    VmState.ACTIVE,
    PowerState.RUNNING,
    from_task=_HARD_REBOOT_TASKS,
)

REBOOT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reboot": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}
            },
            "required": ["type"],
            "additionalProperties": False,
        }
    },
    "required": ["reboot"],
    "additionalProperties": False,
}
LOCK_SCHEMA_273: dict[str, Any] = {
    "type": "object",
    "properties": {
        "lock": {
            "type": ["object", "null"],
            "properties": {
                "locked_reason": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": NAME_PATTERN}
            },
            "additionalProperties": False,
        }
    },
    "required": ["lock"],
    "additionalProperties": False,
}


def invalid_state(action: str, instance_uuid: str, attr: str, state: Any) -> Conflict:
    return Conflict(
        f"Cannot '{action}' instance {instance_uuid} while it is in {attr} {state}",
        kind="InstanceInvalidState",
    )


def check_state(inst: Instance, t: Transition) -> None:
    """Nova's ``check_instance_state``: vm_state, then task_state, then launched_at."""
    if inst.vm_state not in t.from_vm:
        raise invalid_state(t.name, inst.uuid, "vm_state", inst.vm_state)
    if inst.task_state not in t.from_task:
        raise invalid_state(t.name, inst.uuid, "task_state", inst.task_state)
    if t.needs_launched and inst.launched_at is None:
        raise invalid_state(t.name, inst.uuid, "launched_at", None)


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


def apply_transition(s: Session, ctx: RequestContext, inst: Instance, t: Transition) -> None:
    check_not_locked(ctx, inst)
    check_state(inst, t)
    now = utcnow()
    values: dict[str, Any] = {"power_state": int(t.power), "task_state": None, "updated_at": now}
    if t.to_vm is not None:
        values["vm_state"] = t.to_vm
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
    record_action(s, ctx, inst, t.name, event=f"compute_{t.name}_instance")


def _reboot(body: dict[str, Any]) -> Transition:
    validate(REBOOT_SCHEMA, body)
    return HARD_REBOOT if body["reboot"]["type"].upper() == "HARD" else SOFT_REBOOT


def lock(s: Session, ctx: RequestContext, inst: Instance, body: dict[str, Any], request: Request) -> None:
    reason = None
    if request_version(request) >= V(2, 73):  # 2.73: an optional locked_reason
        validate(LOCK_SCHEMA_273, body)
        reason = (body["lock"] or {}).get("locked_reason")
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


def _group_schema(action: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            action: {
                "type": "object",
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}},
                "required": ["name"],
                "additionalProperties": False,
            }
        },
        "required": [action],
        "additionalProperties": False,
    }


def _resolve_group(s: Session, inst: Instance, name: str) -> str:
    from novalite.network import service as network

    try:
        return network.resolve_security_group(s, inst.project_id, name)
    except BadRequest as exc:  # the action answers 404 for an unknown group
        raise NotFound(exc.message, kind=exc.kind) from None


def change_security_group(s: Session, inst: Instance, name: str, *, add: bool) -> None:
    """addSecurityGroup / removeSecurityGroup: on every port of the server (§6.4, Neutron's view)."""
    from novalite.db.models.network import Port
    from novalite.network import ports as net_ports

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


def perform(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    name = next(iter(body))
    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        if name in TRANSITIONS:
            apply_transition(s, ctx, inst, TRANSITIONS[name])
        elif name == "reboot":
            apply_transition(s, ctx, inst, _reboot(body))
        elif name == "lock":
            lock(s, ctx, inst, body, request)
        elif name == "unlock":
            unlock(s, ctx, inst)
        elif name in ("addSecurityGroup", "removeSecurityGroup"):
            validate(_group_schema(name), body)
            change_security_group(s, inst, body[name]["name"], add=name == "addSecurityGroup")


KNOWN_ACTIONS = {*TRANSITIONS, "reboot", "lock", "unlock", "addSecurityGroup", "removeSecurityGroup"}

# Actions other modules add (resize, rebuild, createImage, ...): the handler runs in the thread
# pool with (request, ctx, server_id, body) and returns its Response, or None for a bare 202.
ActionHandler = Callable[[Request, RequestContext, str, dict[str, Any]], "Response | None"]
_REGISTERED: dict[str, ActionHandler] = {}


def register_action(name: str, handler: ActionHandler) -> None:
    """Add ``{"<name>": ...}`` to POST /servers/{id}/action (the built-in names cannot be replaced)."""
    if name in KNOWN_ACTIONS:
        raise ValueError(f"action {name} is built in")
    _REGISTERED[name] = handler


@router.post("/servers/{server_id}/action")
async def action(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict) or not body:
        raise BadRequest("Malformed request body")
    name = next(iter(body))
    if name in KNOWN_ACTIONS:
        await run_in_threadpool(perform, request, ctx, server_id, body)
        return Response(status_code=202)
    handler = _REGISTERED.get(name)
    if handler is None:
        raise BadRequest("There is no such action: " + name)
    result = await run_in_threadpool(handler, request, ctx, server_id, body)
    return result if result is not None else Response(status_code=202)


# the other actions register themselves on import (kept in their own module)
from novalite.compute_api import server_misc_actions, server_rebuild, server_snapshot  # noqa: E402,F401
