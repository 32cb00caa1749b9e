"""os-instance-actions (§4.6, §6.11) and the admin os-server-external-events of a server."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from novalite.api.common import compute_links, json_body, request_context, runtime, validate
from novalite.api.microversion import V, request_version
from novalite.compute_api.views.servers import host_id
from novalite.context import RequestContext
from novalite.db.models.compute import Instance, InstanceAction, InstanceActionEvent
from novalite.errors import BadRequest, NotFound
from novalite.services import instance_actions as service
from novalite.services import server_queries as queries

router = APIRouter()  # included by server_subresources under /compute/v2.1
_SERVER = "/servers/{server_id}"
MAX_LIMIT = 1000  # Nova's [api] max_limit default: a larger ?limit= gives pages of this many


# -- os-instance-actions ---------------------------------------------------------------------------


def action_time(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def _action_view(row: InstanceAction, request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {
        "action": row.action,
        "instance_uuid": row.instance_uuid,
        "request_id": row.request_id,
        "user_id": row.user_id,
        "project_id": row.project_id,
        "start_time": action_time(row.start_time),
        "message": row.message,
    }
    if request_version(request) >= V(2, 58):  # 2.58: updated_at
        out["updated_at"] = action_time(row.updated_at)
    return out


def _event_view(
    ev: InstanceActionEvent, inst: Instance, ctx: RequestContext, request: Request
) -> dict[str, Any]:
    version = request_version(request)
    out: dict[str, Any] = {
        "event": ev.event,
        "start_time": action_time(ev.start_time),
        "finish_time": action_time(ev.finish_time),
        "result": ev.result,
    }
    if ctx.is_admin:
        out["traceback"] = ev.traceback
    if version >= V(2, 62):  # 2.62: host (admin) and hostId
        if ctx.is_admin:
            out["host"] = ev.host or ""
        out["hostId"] = host_id(inst.project_id, ev.host)
    if version >= V(2, 84):  # 2.84: details
        out["details"] = ev.details
    return out


def _read_deleted(request: Request) -> bool:
    return request_version(request) >= V(2, 21)  # 2.21: actions of deleted servers


def _action_filters(request: Request) -> dict[str, Any]:
    """2.58 limit / marker (a request id) / changes-since; 2.66 changes-before."""
    version, params = request_version(request), request.query_params
    if version < V(2, 58):
        return {}
    limit = None
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            raise BadRequest(f"Invalid input for query parameters limit. Value: {params['limit']}.") from None
        if limit < 0:
            raise BadRequest(f"Invalid input for query parameters limit. Value: {limit}.")
        limit = min(limit, MAX_LIMIT)  # Nova's [api] max_limit; a SQL LIMIT past 64 bits is a 500
    since = before = None
    if "changes-since" in params:
        since = queries.parse_time("changes-since", params["changes-since"])
    if version >= V(2, 66) and "changes-before" in params:
        before = queries.parse_time("changes-before", params["changes-before"])
    if since and before and before < since:
        raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
    return {"since": since, "before": before, "marker": params.get("marker"), "limit": limit}


@router.get(_SERVER + "/os-instance-actions")
def list_actions(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id, read_deleted=_read_deleted(request))
        filters = _action_filters(request)
        rows = service.list_actions(s, inst.uuid, **filters)
    limit = filters.get("limit")
    out: dict[str, Any] = {"instanceActions": [_action_view(r, request) for r in rows]}
    if limit is not None and rows and len(rows) == limit:
        href = compute_links(request, "servers", server_id)[0]["href"]
        out["links"] = [
            {"rel": "next", "href": f"{href}/os-instance-actions?limit={limit}&marker={rows[-1].request_id}"}
        ]
    return out


@router.get(_SERVER + "/os-instance-actions/{request_id}")
def show_action(
    server_id: str, request_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id, read_deleted=_read_deleted(request))
        row = service.get_action(s, inst.uuid, request_id)
        if row is None:
            raise NotFound(
                f"Action for request_id {request_id} on instance {server_id} not found",
                kind="InstanceActionNotFound",
            )
        events = service.action_events(s, row)
    out = _action_view(row, request)
    if ctx.is_admin or request_version(request) >= V(2, 51):  # 2.51: events for the owner too
        out["events"] = [_event_view(e, inst, ctx, request) for e in events]
    return {"instanceAction": out}


# -- os-server-external-events (admin) -------------------------------------------------------------


def _event_names(request: Request) -> list[str]:
    names = ["network-changed", "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted"]
    version = request_version(request)
    names += ["volume-extended"] if version >= V(2, 51) else []  # 2.51
    names += ["power-update"] if version >= V(2, 76) else []  # 2.76
    names += ["accelerator-request-bound"] if version >= V(2, 82) else []  # 2.82
    names += ["volume-reimaged"] if version >= V(2, 93) else []  # 2.93
    return names


def _events_schema(request: Request) -> dict[str, Any]:
    event = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": _event_names(request)},
            "server_uuid": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["failed", "completed", "in-progress"]},
            "tag": {"type": "string", "maxLength": 255},
        },
        "required": ["name", "server_uuid"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"events": {"type": "array", "minItems": 1, "items": event}},
        "required": ["events"],
        "additionalProperties": False,
    }


def _deliver(request: Request, ctx: RequestContext, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rt = runtime(request)
    uuids = {e["server_uuid"] for e in events}
    with rt.db.reader() as s:
        found = queries.hosts_of(s, uuids)
    compute = rt.services.compute_api
    handler = getattr(compute, "external_instance_event", None)
    out = []
    for event in events:
        result = dict(event, status=event.get("status", "completed"))
        if event["server_uuid"] not in found:
            result.update(code=404, status="failed")
        elif found[event["server_uuid"]] is None:
            result.update(code=422, status="failed")
        else:
            result["code"] = 200
            if handler is not None:
                handler(ctx, event["server_uuid"], dict(result))
        out.append(result)
    return out


@router.post("/os-server-external-events")
async def external_events(request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    if "service" not in ctx.roles:  # Nova's default: the service role (Neutron, Cinder); admins too here
        ctx.require_admin("os_compute_api:os-server-external-events:create")
    body = await json_body(request)
    validate(_events_schema(request), body)
    results = await run_in_threadpool(_deliver, request, ctx, body["events"])
    if all(r["code"] == 404 for r in results):
        raise NotFound("No instances found for any event")
    status = 207 if any(r["code"] != 200 for r in results) else 200
    return JSONResponse({"events": results}, status_code=status)
