"""POST /servers/{id}/action (§6.4): every action by its body key in ``HANDLERS``, an explicit
table; this module's own are the power and lock actions and the security group changes.

A handler runs in the thread pool with (request, ctx, server_id, body) and returns its Response,
or None for a bare 202. Handlers validate the body, call ``services.server_actions`` (or the
rebuild / snapshot services) and render; the states each action accepts are ``domain.actions``.
The actions here load the server before they validate the body (a missing server is a 404 first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.api.microversion import V, request_version
from novalite.compute_api import consoles, network_proxies, server_rebuild, server_snapshot
from novalite.compute_api import server_actions_evacuate as evacuate
from novalite.compute_api import server_actions_moves as moves
from novalite.compute_api import server_misc_actions as misc
from novalite.compute_api.schemas.servers import NAME_PATTERN
from novalite.context import RequestContext
from novalite.domain import actions
from novalite.errors import BadRequest
from novalite.services import server_actions as service
from novalite.services.server_queries import get_instance

router = APIRouter(prefix="/compute/v2.1")

ActionHandler = Callable[[Request, RequestContext, str, dict[str, Any]], "Response | None"]

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


def _power(t: actions.Transition) -> ActionHandler:
    def handler(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
        service.perform(runtime(request), ctx, server_id, t)

    return handler


def reboot(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    def transition() -> actions.Transition:  # once the server is found: a 404 comes first
        validate(REBOOT_SCHEMA, body)
        return actions.reboot(body["reboot"]["type"])

    service.perform(runtime(request), ctx, server_id, transition)


def lock(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    with runtime(request).db.session() as s:
        inst = get_instance(s, ctx, server_id)
        reason = None
        if request_version(request) >= V(2, 73):  # 2.73: an optional locked_reason
            validate(LOCK_SCHEMA_273, body)
            reason = (body["lock"] or {}).get("locked_reason")
        service.lock(s, ctx, inst, reason)


def unlock(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    with runtime(request).db.session() as s:
        service.unlock(s, ctx, get_instance(s, ctx, server_id))


def _security_group(name: str) -> ActionHandler:
    def handler(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
        with runtime(request).db.session() as s:
            inst = get_instance(s, ctx, server_id)
            validate(_group_schema(name), body)
            service.change_security_group(s, inst, body[name]["name"], add=name == "addSecurityGroup")

    return handler


# Every action, by its key in the request body.
HANDLERS: dict[str, ActionHandler] = {
    **{name: _power(t) for name, t in actions.TRANSITIONS.items()},  # os-stop, os-start, pause, ...
    "reboot": reboot,
    "lock": lock,
    "unlock": unlock,
    "addSecurityGroup": _security_group("addSecurityGroup"),
    "removeSecurityGroup": _security_group("removeSecurityGroup"),
    "rescue": misc.rescue,
    "unrescue": misc.unrescue,
    "os-resetState": misc.reset_state,
    "injectNetworkInfo": misc.inject_network_info,
    "resetNetwork": misc.reset_network,
    "forceDelete": misc.force_delete,
    "restore": misc.restore,
    "trigger_crash_dump": misc.trigger_crash_dump,
    "changePassword": misc.change_password,
    "os-getConsoleOutput": misc.console_output,
    "rebuild": server_rebuild.rebuild,
    "createImage": server_snapshot.create_image,
    "createBackup": server_snapshot.create_backup,
    "addFloatingIp": network_proxies.add_floating_ip,  # below 2.44
    "removeFloatingIp": network_proxies.remove_floating_ip,
    "resize": moves.resize,
    "confirmResize": moves.confirm_resize,
    "revertResize": moves.revert_resize,
    "migrate": moves.migrate,
    "os-migrateLive": moves.live_migrate,
    "evacuate": evacuate.evacuate,
    "shelve": moves.shelve_server,
    "shelveOffload": moves.shelve_offload,
    "unshelve": moves.unshelve,
    **{name: consoles.legacy_action(name) for name in consoles.LEGACY_ACTIONS},  # below 2.6
}


@router.post("/servers/{server_id}/action")
async def action(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict) or not body:
        raise BadRequest("Malformed request body")
    name = next(iter(body))
    handler = HANDLERS.get(name)
    if handler is None:
        raise BadRequest("There is no such action: " + name)
    result = await run_in_threadpool(handler, request, ctx, server_id, body)
    return result if result is not None else Response(status_code=202)
