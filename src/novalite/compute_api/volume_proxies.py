"""The compute API's proxies to Block Storage, gone from microversion 2.36 (404 from there on):
``os-volumes`` (list, detail, show, create, delete) and ``os-snapshots`` (the same for volume
snapshots), with Nova's camelCase views (``services.volume_proxies``). Lists page with
``limit``/``offset`` as Nova's ``common.limited``. Create answers 200, delete 202, as Nova."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, reject_nul, request_context, runtime, validate
from novalite.api.microversion import V, request_version
from novalite.context import RequestContext
from novalite.errors import BadRequest, Forbidden, NotFound, RequestTooLarge
from novalite.services import volume_proxies as service

MAX_LIMIT = 1000
BOOLEAN = {
    "type": ["boolean", "string"],
    "enum": [
        *(True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes"),
        *(False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"),
    ],
}
TRUE = (True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes")
NAME = {"type": "string", "maxLength": 255}

VOLUME_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "volume": {
            "type": "object",
            "properties": {
                "volume_type": NAME,
                "metadata": {"type": "object", "additionalProperties": NAME},
                "snapshot_id": NAME,
                "size": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
                "availability_zone": NAME,
                "display_name": NAME,
                "display_description": NAME,
            },
            "required": ["size"],
            "additionalProperties": False,
        }
    },
    "required": ["volume"],
    "additionalProperties": False,
}
SNAPSHOT_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "snapshot": {
            "type": "object",
            "properties": {
                "volume_id": NAME,
                "force": BOOLEAN,
                "display_name": NAME,
                "display_description": NAME,
            },
            "required": ["volume_id"],
            "additionalProperties": False,
        }
    },
    "required": ["snapshot"],
    "additionalProperties": False,
}


def _proxies_available(request: Request) -> None:
    if request_version(request) >= V(2, 36):  # 2.36: the proxy APIs are gone
        raise NotFound("The resource could not be found.")


router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul), Depends(_proxies_available)])


def _param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} param must be an integer") from None
    if value < 0:
        raise BadRequest(f"{name} param must be positive")
    return value


def limited(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nova's ``common.limited``: ``offset`` items skipped, at most ``limit`` (0: the maximum)."""
    offset = _param(request, "offset", 0)
    limit = min(MAX_LIMIT, _param(request, "limit", MAX_LIMIT) or MAX_LIMIT)
    return items[offset : offset + limit]


def _over_quota_is_403(call: Any, *args: Any, **kw: Any) -> Any:
    try:
        return call(*args, **kw)
    except RequestTooLarge as exc:  # Cinder's 413 over quota: Nova's OverQuota, 403
        raise Forbidden(exc.message, kind="OverQuota") from None


# -- os-volumes -----------------------------------------------------------------------------------


@router.get("/os-volumes")
async def list_volumes(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    found = await run_in_threadpool(service.list_volumes, runtime(request), ctx)
    return {"volumes": limited(request, found)}


@router.get("/os-volumes/detail")
async def list_volumes_detail(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    found = await run_in_threadpool(service.list_volumes, runtime(request), ctx)
    return {"volumes": limited(request, found)}


@router.get("/os-volumes/{volume_id}")
async def show_volume(
    volume_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return {"volume": await run_in_threadpool(service.show_volume, runtime(request), ctx, volume_id)}


@router.post("/os-volumes")
async def create_volume(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    body = await json_body(request)
    validate(VOLUME_CREATE, body)
    vol = body["volume"]
    fields = {
        "size": int(vol["size"]),
        "name": vol.get("display_name"),
        "description": vol.get("display_description"),
        "volume_type": vol.get("volume_type"),
        "availability_zone": vol.get("availability_zone"),
        "metadata": {str(k): str(v) for k, v in (vol.get("metadata") or {}).items()},
        "snapshot_id": vol.get("snapshot_id"),
    }
    view, finish = await run_in_threadpool(
        _over_quota_is_403, service.create_volume, runtime(request), ctx, fields
    )
    return JSONResponse({"volume": view}, background=BackgroundTask(finish))


@router.delete("/os-volumes/{volume_id}")
async def delete_volume(
    volume_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    await run_in_threadpool(service.delete_volume, runtime(request), ctx, volume_id)
    return Response(status_code=202)


# -- os-snapshots ---------------------------------------------------------------------------------


@router.get("/os-snapshots")
async def list_snapshots(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    found = await run_in_threadpool(service.list_snapshots, runtime(request), ctx)
    return {"snapshots": limited(request, found)}


@router.get("/os-snapshots/detail")
async def list_snapshots_detail(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    found = await run_in_threadpool(service.list_snapshots, runtime(request), ctx)
    return {"snapshots": limited(request, found)}


@router.get("/os-snapshots/{snapshot_id}")
async def show_snapshot(
    snapshot_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return {"snapshot": await run_in_threadpool(service.show_snapshot, runtime(request), ctx, snapshot_id)}


@router.post("/os-snapshots")
async def create_snapshot(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    body = await json_body(request)
    validate(SNAPSHOT_CREATE, body)
    snap = body["snapshot"]
    fields = {"name": snap.get("display_name"), "description": snap.get("display_description")}
    view, finish = await run_in_threadpool(
        _over_quota_is_403,
        service.create_snapshot,
        runtime(request),
        ctx,
        snap["volume_id"],
        force=snap.get("force", False) in TRUE,
        fields=fields,
    )
    return JSONResponse({"snapshot": view}, background=BackgroundTask(finish))


@router.delete("/os-snapshots/{snapshot_id}")
async def delete_snapshot(
    snapshot_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    await run_in_threadpool(service.delete_snapshot, runtime(request), ctx, snapshot_id)
    return Response(status_code=202)
