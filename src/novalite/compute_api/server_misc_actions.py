"""More server actions (§6.4), listed in ``server_actions.HANDLERS``: admin ``os-resetState`` /
``injectNetworkInfo`` / ``resetNetwork``, ``forceDelete`` and ``restore``, ``os-getConsoleOutput``,
``trigger_crash_dump`` (2.17), ``changePassword`` and ``rescue`` / ``unrescue``.

On a simulated host each is a state check plus, where the server changes, one conditional write
(``services.server_actions``); on a host running real guests rescue, unrescue and
trigger_crash_dump are cast to the host's agent (``compute.guest_actions``); deletes go through
the compute side as DELETE does.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from novalite.api.common import runtime, validate
from novalite.api.microversion import V, request_version
from novalite.context import RequestContext
from novalite.domain import actions
from novalite.errors import NotFound
from novalite.services import console_output as console
from novalite.services import server_actions as service
from novalite.services.create_server.request import generate_password


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
    service.reset_state(
        runtime(request).db, ctx, server_id, active=body["os-resetState"]["state"] == "active"
    )


def _admin_noop(rule: str) -> Any:
    def handler(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
        """Admin: nothing to redo on a simulated host; the server must exist."""
        ctx.require_admin(rule)
        service.check_exists(runtime(request).db, ctx, server_id)

    return handler


inject_network_info = _admin_noop("os_compute_api:os-admin-actions:inject_network_info")
reset_network = _admin_noop("os_compute_api:os-admin-actions:reset_network")


def force_delete(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    """Delete now, in any state (there is no deferred delete here, so this is DELETE)."""
    service.force_delete(runtime(request), ctx, server_id)


def _transition(t: actions.Transition) -> Any:
    def handler(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
        service.perform(runtime(request), ctx, server_id, t)

    return handler


restore = _transition(actions.RESTORE)
unrescue = _transition(actions.UNRESCUE)


def trigger_crash_dump(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    if request_version(request) < V(2, 17):  # 2.17: trigger_crash_dump
        raise NotFound("The resource could not be found.")
    service.trigger_crash_dump(runtime(request), ctx, server_id)


def change_password(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    validate(_body_schema("changePassword", {"adminPass": {"type": "string"}}, ["adminPass"]), body)
    service.perform(runtime(request), ctx, server_id, actions.CHANGE_PASSWORD)


def console_output(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    """The last ``length`` lines of the serial console (a real guest's, or simulated); -1 or null: all."""
    length_schema = {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$", "minimum": -1}
    validate(_body_schema("os-getConsoleOutput", {"length": length_schema}, []), body)
    raw = (body.get("os-getConsoleOutput") or {}).get("length")
    length = int(raw) if raw is not None else -1
    return JSONResponse({"output": console.console_output(runtime(request), ctx, server_id, length)})


def rescue(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    """Boot the server from a rescue image: RESCUE; answers the rescue password (200)."""
    props = {"adminPass": {"type": "string"}, "rescue_image_ref": {"type": "string", "format": "uuid"}}
    schema = _body_schema("rescue", props, [])
    schema["properties"]["rescue"]["type"] = ["object", "null"]
    validate(schema, body)
    req = body["rescue"] or {}
    service.rescue(
        runtime(request),
        ctx,
        server_id,
        image_ref=req.get("rescue_image_ref"),
        volume_backed_ok=request_version(request) >= V(2, 87),  # 2.87: stable rescue of BFV servers
    )
    return JSONResponse({"adminPass": req.get("adminPass") or generate_password()})
