"""Services (admin, §6.12): ``/os-services`` list, update and delete per microversion.

2.11: ``forced_down`` in views and the ``force-down`` action. 2.53: ids are uuids;
``PUT /os-services/{uuid}`` with ``status`` / ``disabled_reason`` / ``forced_down`` replaces
``PUT /os-services/enable|disable|disable-log-reason|force-down`` (host + binary in the body).
2.75: unknown list query parameters are refused. Only nova-compute services may be updated.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.compute_api.schemas.common import BOOLEAN
from novalite.context import RequestContext
from novalite.db.models.placement import Service
from novalite.errors import BadRequest, NotFound
from novalite.services import compute_services as service
from novalite.services.zones import service_is_up

router = APIRouter(prefix="/compute/v2.1")

MAX_ID = 2147483647
_TRUE = {"true", "1", "on", "yes", "y", "t"}
_REASON = {"type": "string", "minLength": 1, "maxLength": 255}
_HOST = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-._]*$"}


def legacy_update_schema(version: Version) -> dict[str, Any]:
    props: dict[str, Any] = {
        "host": _HOST,
        "binary": {"type": "string", "minLength": 1, "maxLength": 255},
        "disabled_reason": _REASON,
    }
    if version >= V(2, 11):  # 2.11: forced_down
        props["forced_down"] = BOOLEAN
    return {
        "type": "object",
        "properties": props,
        "required": ["host", "binary"],
        "additionalProperties": False,
    }


UPDATE_SCHEMA_253 = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "status": {"type": "string", "enum": ["enabled", "disabled"]},
        "disabled_reason": _REASON,
        "forced_down": BOOLEAN,
    },
}


def _as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


# --- views -------------------------------------------------------------------------------


def service_view(version: Version, svc: Service, zone: str, down_time: int) -> dict[str, Any]:
    updated = service.updated_time(svc)
    body: dict[str, Any] = {
        "id": svc.uuid if version >= V(2, 53) else svc.id,  # 2.53: uuid ids
        "binary": svc.binary,
        "host": svc.host,
        "zone": zone,
        "status": "disabled" if svc.disabled else "enabled",
        "state": "up" if service_is_up(svc, down_time) else "down",
        "updated_at": updated.strftime("%Y-%m-%dT%H:%M:%S.%f") if updated else None,
        "disabled_reason": svc.disabled_reason,
    }
    if version >= V(2, 11):  # 2.11: forced_down
        body["forced_down"] = svc.forced_down
    return body


def _down_time(request: Request) -> int:
    return int(runtime(request).settings.service_down_time)


def _detail(request: Request, s: Any, svc: Service) -> dict[str, Any]:
    zone = service.zones_of(s, [svc])[svc.id]
    return {"service": service_view(request_version(request), svc, zone, _down_time(request))}


# --- routes ------------------------------------------------------------------------------


@router.get("/os-services")
def list_services(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-services:list")
    version = request_version(request)
    params = request.query_params
    if version >= V(2, 75):  # 2.75: unknown query parameters are refused
        extra = sorted(set(params.keys()) - {"host", "binary"})
        if extra:
            raise BadRequest(
                f"Invalid input for query parameters {extra[0]}. Value: {params.get(extra[0])}. "
                "Additional properties are not allowed"
            )
    service.ensure_control_services(runtime(request).db, _down_time(request))
    with runtime(request).db.reader() as s:
        found = service.list_services(s, host=params.get("host"), binary=params.get("binary"))
        zones = service.zones_of(s, found)
        return {"services": [service_view(version, svc, zones[svc.id], _down_time(request)) for svc in found]}


@router.put("/os-services/{service_id}")
async def update_service(
    service_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-services:update")
    version = request_version(request)
    body = await json_body(request)
    if version >= V(2, 53):  # 2.53: PUT /os-services/{uuid}
        validate(UPDATE_SCHEMA_253, body)
        _require_uuid(service_id)
        return await run_in_threadpool(_update_253, request, service_id, body)
    validate(legacy_update_schema(version), body)
    return await run_in_threadpool(_legacy_action, request, service_id, body)


def _require_uuid(value: str) -> None:
    try:
        uuidlib.UUID(value)
    except ValueError:
        raise BadRequest(f"Invalid uuid {value}") from None


def _update_253(request: Request, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        svc = service.get_by_uuid(s, service_id)
        service.require_compute(svc)
        if body.get("status") == "enabled" and body.get("disabled_reason"):
            raise BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.")
        if "status" not in body and "forced_down" not in body:
            raise BadRequest(
                "No updates were requested. Fields 'status' or 'forced_down' should be specified."
            )
        if "status" in body:
            disabled = body["status"] == "disabled"
            service.set_disabled(s, svc, disabled, body.get("disabled_reason") if disabled else None)
        if "forced_down" in body:
            service.set_forced_down(s, svc, _as_bool(body["forced_down"]))
        return _detail(request, s, svc)


def _legacy_action(request: Request, action: str, body: dict[str, Any]) -> dict[str, Any]:
    """Before 2.53: enable | disable | disable-log-reason | force-down (2.11) on host + binary."""
    version = request_version(request)
    actions = {"enable", "disable", "disable-log-reason"} | ({"force-down"} if version >= V(2, 11) else set())
    if action not in actions:
        raise NotFound("Unknown action")
    host, binary = body["host"], body["binary"]
    if action == "disable-log-reason" and "disabled_reason" not in body:
        raise BadRequest("Missing disabled reason field")
    if action == "force-down" and "forced_down" not in body:
        raise BadRequest("Missing forced_down field")
    with runtime(request).db.session() as s:
        svc = service.get_by_host_binary(s, host, binary)
        if action == "force-down":
            forced = _as_bool(body["forced_down"])
            service.set_forced_down(s, svc, forced)
            return {"service": {"host": host, "binary": binary, "forced_down": forced}}
        reason = body["disabled_reason"] if action == "disable-log-reason" else None
        service.set_disabled(s, svc, action != "enable", reason)
    out: dict[str, Any] = {
        "host": host,
        "binary": binary,
        "status": "enabled" if action == "enable" else "disabled",
    }
    if reason:
        out["disabled_reason"] = reason
    return {"service": out}


@router.delete("/os-services/{service_id}", status_code=204)
def delete_service(
    service_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    ctx.require_admin("os_compute_api:os-services:delete")
    with runtime(request).db.session() as s:
        if request_version(request) >= V(2, 53):  # 2.53: uuid ids
            _require_uuid(service_id)
            svc = service.get_by_uuid(s, service_id)
        else:
            svc = service.get_by_id(s, _int_id(service_id))
        service.delete_service(s, svc)
    return Response(status_code=204)


def _int_id(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("Invalid input received: id must be an integer", kind="InvalidInput") from None
    if not 0 <= value <= MAX_ID:
        raise NotFound(f"Service {raw} could not be found.", kind="ServiceNotFound")
    return value
