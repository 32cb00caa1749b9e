"""More server actions (§6.4), registered on POST /servers/{id}/action through ``register_action``:
admin ``os-resetState`` / ``injectNetworkInfo`` / ``resetNetwork``, ``forceDelete`` and ``restore``,
``os-getConsoleOutput``, ``trigger_crash_dump`` (2.17), ``changePassword`` and ``rescue`` / ``unrescue``.

None of them needs the fake virt driver to do anything, so each is a state check plus, where the
server changes, one conditional write; deletes go through the compute side as DELETE does.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from novalite.api.common import runtime, validate
from novalite.api.microversion import V, request_version
from novalite.compute_api.server_actions import (
    Transition,
    apply_transition,
    check_not_locked,
    check_state,
    record_action,
    register_action,
)
from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.domain.states import PowerState, VmState
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.services import server_queries as queries

CONSOLE_LINES = 50


def _body_schema(action: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    inner: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        inner["required"] = required
    return {
        "type": "object",
        "properties": {action: inner},
        "required": [action],
        "additionalProperties": False,
    }


def reset_state(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    """Admin: force vm_state to active or error and clear the task."""
    ctx.require_admin("os_compute_api:os-admin-actions:reset_state")
    validate(
        _body_schema("os-resetState", {"state": {"type": "string", "enum": ["active", "error"]}}, ["state"]),
        body,
    )
    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        inst.vm_state = VmState.ACTIVE if body["os-resetState"]["state"] == "active" else VmState.ERROR
        inst.task_state, inst.updated_at = None, utcnow()
        record_action(s, ctx, inst, "resetState", event=None)


def _admin_noop(rule: str) -> Any:
    def handler(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
        """Admin: nothing to redo on a simulated host; the server must exist."""
        ctx.require_admin(rule)
        with runtime(request).db.reader() as s:
            queries.get_instance(s, ctx, server_id)

    return handler


def force_delete(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    """Delete now, in any state (there is no deferred delete here, so this is DELETE)."""
    rt = runtime(request)
    with rt.db.reader() as s:
        check_not_locked(ctx, queries.get_instance(s, ctx, server_id))
    rt.services.require_compute_api().delete_instance(ctx, server_id)


RESTORE = Transition(
    "restore", (VmState.SOFT_DELETED,), VmState.ACTIVE, PowerState.RUNNING, needs_launched=False
)
CRASH_DUMP = Transition(
    "trigger_crash_dump",
    (VmState.ACTIVE, VmState.PAUSED, VmState.RESCUED, VmState.RESIZED, VmState.ERROR),
    None,
    PowerState.RUNNING,
)
CHANGE_PASSWORD = Transition("changePassword", (VmState.ACTIVE,), None, PowerState.RUNNING)


def _transition(t: Transition) -> Any:
    def handler(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
        with runtime(request).db.session() as s:
            apply_transition(s, ctx, queries.get_instance(s, ctx, server_id), t)

    return handler


def trigger_crash_dump(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    if request_version(request) < V(2, 17):  # 2.17: trigger_crash_dump
        raise NotFound("The resource could not be found.")
    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, CRASH_DUMP)
        record_action(s, ctx, inst, "trigger_crash_dump", event="compute_trigger_crash_dump")


def change_password(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    validate(_body_schema("changePassword", {"adminPass": {"type": "string"}}, ["adminPass"]), body)
    _transition(CHANGE_PASSWORD)(request, ctx, server_id, body)


def console_output(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    """The last ``length`` lines of the (simulated) serial console; -1 or null for all of it."""
    length_schema = {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$", "minimum": -1}
    validate(_body_schema("os-getConsoleOutput", {"length": length_schema}, []), body)
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
    if inst.host is None or inst.vm_state == VmState.BUILDING:
        raise Conflict(f"Instance {server_id} is not ready", kind="InstanceNotReady")
    lines = [
        f"[{i:6d}.000000] novalite fake console of {inst.display_name} ({inst.uuid}) on {inst.host}"
        for i in range(CONSOLE_LINES)
    ]
    raw = (body.get("os-getConsoleOutput") or {}).get("length")
    length = int(raw) if raw is not None else -1
    if length >= 0:
        lines = lines[len(lines) - length :] if length else []
    return JSONResponse({"output": "\n".join(lines)})


RESCUE = Transition(
    "rescue", (VmState.ACTIVE, VmState.STOPPED, VmState.ERROR), VmState.RESCUED, PowerState.RUNNING
)
UNRESCUE = Transition("unrescue", (VmState.RESCUED,), VmState.ACTIVE, PowerState.RUNNING)


def rescue(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    """Boot the server from a rescue image: RESCUE; answers the rescue password (200)."""
    from novalite.image.service import get_image
    from novalite.services.create_server.request import generate_password

    props = {"adminPass": {"type": "string"}, "rescue_image_ref": {"type": "string", "format": "uuid"}}
    schema = _body_schema("rescue", props, [])
    schema["properties"]["rescue"]["type"] = ["object", "null"]
    validate(schema, body)
    req = body["rescue"] or {}
    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        if not inst.image_ref and request_version(request) < V(2, 87):  # 2.87: stable rescue of BFV servers
            raise BadRequest(
                f"Cannot rescue a volume-backed instance {inst.uuid}", kind="InstanceNotRescuable"
            )
        image_ref = req.get("rescue_image_ref") or inst.image_ref
        if image_ref and get_image(s, ctx, image_ref) is None:
            raise BadRequest(f"Image {image_ref} could not be found.", kind="ImageNotFound")
        apply_transition(s, ctx, inst, RESCUE)
    return JSONResponse({"adminPass": req.get("adminPass") or generate_password()})


register_action("rescue", rescue)
register_action("unrescue", _transition(UNRESCUE))
register_action("os-resetState", reset_state)
register_action("injectNetworkInfo", _admin_noop("os_compute_api:os-admin-actions:inject_network_info"))
register_action("resetNetwork", _admin_noop("os_compute_api:os-admin-actions:reset_network"))
register_action("forceDelete", force_delete)
register_action("restore", _transition(RESTORE))
register_action("trigger_crash_dump", trigger_crash_dump)
register_action("changePassword", change_password)
register_action("os-getConsoleOutput", console_output)
