"""Cinder v3 attachments (3.27+; ``os-complete`` 3.44+)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime
from novalite.api.microversion import V
from novalite.errors import BadRequest
from novalite.volume import attachments
from novalite.volume.api import VolumeRequest, boolean, require, respond, section, text, volume_request
from novalite.volume.views import attachment_summary, attachment_view

router = APIRouter()


def _list(request: Request, vr: VolumeRequest, detail: bool) -> JSONResponse:
    require(vr.version, V(3, 27))
    all_projects = boolean("all_tenants", request.query_params.get("all_tenants", "false"))
    volume_id = request.query_params.get("volume_id")
    with runtime(request).db.reader() as s:
        found = attachments.visible_attachments(s, vr.ctx, all_projects=all_projects)
        items = [
            (attachment_view if detail else attachment_summary)(a)
            for a in found
            if volume_id is None or a.volume_id == volume_id
        ]
    return respond(vr, {"attachments": items})


@router.get("/attachments")
def list_attachments(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    return _list(request, vr, detail=False)


@router.get("/attachments/detail")
def list_attachments_detail(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    return _list(request, vr, detail=True)


@router.get("/attachments/{attachment_id}")
def show_attachment(
    attachment_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    require(vr.version, V(3, 27))
    with runtime(request).db.reader() as s:
        att, _ = attachments.get_attachment(s, vr.ctx, attachment_id)
        return respond(vr, {"attachment": attachment_view(att)})


def _connector(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("Invalid input received: connector must be a dictionary.", kind="InvalidInput")
    return value


def _create(request: Request, vr: VolumeRequest, fields: dict[str, Any]) -> JSONResponse:
    with runtime(request).db.session() as s:
        att = attachments.create_attachment(s, vr.ctx, **fields)
        return respond(vr, {"attachment": attachment_view(att)})


@router.post("/attachments")
async def create_attachment(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    require(vr.version, V(3, 27))
    body = section(await json_body(request), "attachment")
    volume_id = text("volume_uuid", body.get("volume_uuid"))
    if not volume_id:
        raise BadRequest(
            "Missing required element 'volume_uuid' in request body.", kind="MissingRequiredElement"
        )
    fields = {
        "volume_id": volume_id,
        "instance_uuid": text("instance_uuid", body.get("instance_uuid"), 36),
        "connector": _connector(body.get("connector")),
        "mode": text("mode", body.get("mode")) or "rw",
    }
    return await run_in_threadpool(_create, request, vr, fields)


def _update(
    request: Request, vr: VolumeRequest, attachment_id: str, connector: dict[str, Any]
) -> JSONResponse:
    with runtime(request).db.session() as s:
        att = attachments.update_attachment(s, vr.ctx, attachment_id, connector)
        return respond(vr, {"attachment": attachment_view(att)})


@router.put("/attachments/{attachment_id}")
async def update_attachment(
    attachment_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    require(vr.version, V(3, 27))
    connector = _connector(section(await json_body(request), "attachment").get("connector")) or {}
    return await run_in_threadpool(_update, request, vr, attachment_id, connector)


def _complete(request: Request, vr: VolumeRequest, attachment_id: str) -> Response:
    with runtime(request).db.session() as s:
        attachments.complete_attachment(s, vr.ctx, attachment_id)
    return Response(status_code=204, headers={"OpenStack-API-Version": f"volume {vr.version}"})


@router.post("/attachments/{attachment_id}/action")
async def attachment_action(
    attachment_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    require(vr.version, V(3, 44))
    body = await json_body(request)
    if not isinstance(body, dict) or list(body) != ["os-complete"]:
        raise BadRequest(
            "Invalid input received: only the os-complete action is supported.", kind="InvalidInput"
        )
    return await run_in_threadpool(_complete, request, vr, attachment_id)


@router.delete("/attachments/{attachment_id}")
def delete_attachment(
    attachment_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    require(vr.version, V(3, 27))
    with runtime(request).db.session() as s:
        att, vol = attachments.get_attachment(s, vr.ctx, attachment_id)
        attachments.delete_attachment(s, vr.ctx, attachment_id)
        remaining = [attachment_summary(a) for a in attachments.volume_attachments(s, vol.id)]
    return respond(vr, {"attachments": remaining})
