"""Host aggregates (admin): ``/os-aggregates`` and its ``add_host`` / ``remove_host`` /
``set_metadata`` actions, with Nova's bodies and status codes.

Create answers 200 without ``hosts``/``metadata``; delete answers 200 with no body; ids are
integers (anything else is 400). 2.41: ``uuid`` in every view.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.context import RequestContext
from novalite.db.models.aggregates import Aggregate
from novalite.errors import BadRequest
from novalite.services import aggregates as service

router = APIRouter(prefix="/compute/v2.1")

MAX_ID = 2147483647
_PRINTABLE = "^[^\\x00-\\x1f\\x7f]*$"
_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[^\\s\\x00-\\x1f\\x7f]([^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f])?$",
}
_NAME_SPACES = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _PRINTABLE}
_AZ = {
    "oneOf": [
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": "^[^\\s\\x00-\\x1f\\x7f:]([^\\x00-\\x1f\\x7f:]*[^\\s\\x00-\\x1f\\x7f:])?$",
        },
        {"type": "null"},
    ]
}
_HOST = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-._]*$"}
_METADATA = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": ["string", "null"], "maxLength": 255}},
}


def _wrap(key: str, inner: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {key: inner}, "required": [key], "additionalProperties": False}


CREATE_SCHEMA = _wrap(
    "aggregate",
    {
        "type": "object",
        "properties": {"name": _NAME, "availability_zone": _AZ},
        "required": ["name"],
        "additionalProperties": False,
    },
)
UPDATE_SCHEMA = _wrap(
    "aggregate",
    {
        "type": "object",
        "properties": {"name": _NAME_SPACES, "availability_zone": _AZ},
        "additionalProperties": False,
        "anyOf": [{"required": ["name"]}, {"required": ["availability_zone"]}],
    },
)
ACTION_SCHEMAS = {
    "add_host": _wrap(
        "add_host",
        {
            "type": "object",
            "properties": {"host": _HOST},
            "required": ["host"],
            "additionalProperties": False,
        },
    ),
    "remove_host": _wrap(
        "remove_host",
        {
            "type": "object",
            "properties": {"host": _HOST},
            "required": ["host"],
            "additionalProperties": False,
        },
    ),
    "set_metadata": _wrap(
        "set_metadata",
        {
            "type": "object",
            "properties": {"metadata": _METADATA},
            "required": ["metadata"],
            "additionalProperties": False,
        },
    ),
}


# --- views -------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def aggregate_view(
    version: Version, agg: Aggregate, hosts: list[str] | None, metadata: dict[str, str] | None
) -> dict[str, Any]:
    """Nova's aggregate; ``hosts``/``metadata`` None leaves them out (the create answer)."""
    body: dict[str, Any] = {
        "availability_zone": agg.availability_zone,
        "created_at": _iso(agg.created_at),
        "deleted": False,
        "deleted_at": None,
        "id": agg.id,
        "name": agg.name,
        "updated_at": _iso(agg.updated_at),
    }
    if hosts is not None:
        body["hosts"] = hosts
    if metadata is not None:
        body["metadata"] = dict(metadata)
        if agg.availability_zone:
            body["metadata"][service.AZ_KEY] = agg.availability_zone
    if version >= V(2, 41):  # 2.41: uuid
        body["uuid"] = agg.uuid
    return body


def _full_view(request: Request, s: Any, agg: Aggregate) -> dict[str, Any]:
    hosts = service.hosts_of(s, [agg.id])[agg.id]
    metadata = service.metadata_of(s, [agg.id])[agg.id]
    return {"aggregate": aggregate_view(request_version(request), agg, hosts, metadata)}


def _agg_id(raw: str) -> int:
    """Nova's validate_integer: 400 for a non-integer id."""
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("Invalid input received: id must be an integer", kind="InvalidInput") from None
    if not 0 <= value <= MAX_ID:
        raise service.aggregate_not_found(raw)
    return value


def _normalize(name: str) -> str:
    return name.strip()


# --- routes ------------------------------------------------------------------------------


@router.get("/os-aggregates")
def list_aggregates(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-aggregates:index")
    version = request_version(request)
    with runtime(request).db.reader() as s:
        aggs = service.list_aggregates(s)
        ids = [a.id for a in aggs]
        hosts, metadata = service.hosts_of(s, ids), service.metadata_of(s, ids)
        return {"aggregates": [aggregate_view(version, a, hosts[a.id], metadata[a.id]) for a in aggs]}


@router.post("/os-aggregates")
async def create_aggregate(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-aggregates:create")
    body = await json_body(request)
    validate(CREATE_SCHEMA, body)
    name = _normalize(body["aggregate"]["name"])
    zone = body["aggregate"].get("availability_zone")

    def _store() -> dict[str, Any]:
        with runtime(request).db.session() as s:
            agg = service.create_aggregate(s, name, _normalize(zone) if zone else None)
            return {"aggregate": aggregate_view(request_version(request), agg, None, None)}

    return await run_in_threadpool(_store)


@router.get("/os-aggregates/{agg_id}")
def show_aggregate(
    agg_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-aggregates:show")
    with runtime(request).db.reader() as s:
        return _full_view(request, s, service.get_aggregate(s, _agg_id(agg_id)))


@router.put("/os-aggregates/{agg_id}")
async def update_aggregate(
    agg_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-aggregates:update")
    body = await json_body(request)
    validate(UPDATE_SCHEMA, body)
    ident = _agg_id(agg_id)
    updates = dict(body["aggregate"])
    name = _normalize(updates.pop("name")) if "name" in updates else None

    def _store() -> dict[str, Any]:
        with runtime(request).db.session() as s:
            agg = service.update_aggregate(s, ident, name=name, fields=updates)
            return _full_view(request, s, agg)

    return await run_in_threadpool(_store)


@router.delete("/os-aggregates/{agg_id}")
def delete_aggregate(
    agg_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    ctx.require_admin("os_compute_api:os-aggregates:delete")
    ident = _agg_id(agg_id)
    with runtime(request).db.session() as s:
        service.delete_aggregate(s, ident)
    return Response(status_code=200)


@router.post("/os-aggregates/{agg_id}/action")
async def aggregate_action(
    agg_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    name = next(iter(body), None) if isinstance(body, dict) and len(body) == 1 else None
    if name not in ACTION_SCHEMAS:
        raise BadRequest(f"There is no such action: {name}" if name else "Malformed request body")
    ctx.require_admin(f"os_compute_api:os-aggregates:{name}")
    validate(ACTION_SCHEMAS[name], body)
    ident = _agg_id(agg_id)
    args = body[name]

    def _store() -> dict[str, Any]:
        with runtime(request).db.session() as s:
            if name == "add_host":
                agg = service.add_host(s, ident, args["host"])
            elif name == "remove_host":
                agg = service.remove_host(s, ident, args["host"])
            else:
                agg = service.set_metadata(s, ident, args["metadata"])
            return _full_view(request, s, agg)

    return await run_in_threadpool(_store)
