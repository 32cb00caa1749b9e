"""``/servers/{id}/os-volume_attachments``: volumes attached to a server.

List and show (``volumeAttachment``: device, serverId, volumeId, ``id`` before 2.89 /
``attachment_id`` + ``bdm_uuid`` from 2.89, ``tag`` from 2.70, ``delete_on_termination`` from
2.79); POST attach (``volumeId``, ``device``, ``tag`` 2.49, ``delete_on_termination`` 2.79) -> 200
(from 2.101: 202, no body);
DELETE detach -> 202 (the root volume of a boot-from-volume server: 400); PUT -> 202: swap to
another volume (admin only), or from 2.85 change ``delete_on_termination`` of the same volume.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.compute_api.schemas.servers import TAG, UUID
from novalite.context import RequestContext
from novalite.errors import BadRequest
from novalite.services import device_hotplug as hotplug
from novalite.services import server_devices as devices
from novalite.services import server_queries as queries
from novalite.services.server_actions import record_action

router = APIRouter(prefix="/compute/v2.1")
_BASE = "/servers/{server_id}/os-volume_attachments"
DEVICE: dict[str, Any] = {
    "type": ["string", "null"],
    "pattern": "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$",
}
SWAP_RULE = "os_compute_api:os-volumes-attachments:swap"


def _wrap(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "volumeAttachment": {
                "type": "object",
                "properties": props,
                "required": required,
                "additionalProperties": False,
            }
        },
        "required": ["volumeAttachment"],
        "additionalProperties": False,
    }


def attach_schema(version: Version) -> dict[str, Any]:
    props: dict[str, Any] = {"volumeId": UUID, "device": DEVICE}
    if version >= V(2, 49):  # 2.49: tagged attach
        props["tag"] = TAG
    if version >= V(2, 79):  # 2.79: delete_on_termination at attach
        props["delete_on_termination"] = {"type": "boolean"}
    return _wrap(props, ["volumeId"])


def update_schema(version: Version) -> dict[str, Any]:
    props: dict[str, Any] = {"volumeId": UUID}
    if version >= V(2, 85):  # 2.85: the other fields may be sent (unchanged), delete_on_termination changed
        props.update(
            {
                "id": UUID,
                "serverId": UUID,
                "device": DEVICE,
                "tag": TAG,
                "delete_on_termination": {"type": "boolean"},
            }
        )
    return _wrap(props, ["volumeId"])


def attachment_view(dev: devices.VolumeDevice, version: Version, *, created: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"device": dev.device, "serverId": dev.server_id, "volumeId": dev.volume_id}
    if created or version < V(2, 89):
        out["id"] = dev.volume_id
    else:  # 2.89: the Cinder attachment id and the BDM id instead of id
        out["attachment_id"] = dev.attachment_id
        out["bdm_uuid"] = dev.bdm_uuid
    if version >= V(2, 70):  # 2.70: device tags shown
        out["tag"] = dev.tag
    if version >= V(2, 79):  # 2.79: delete_on_termination shown
        out["delete_on_termination"] = dev.delete_on_termination
    return out


@router.get(_BASE)
def list_attachments(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    version = request_version(request)
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
        items = devices.list_volumes(s, inst)
    return {"volumeAttachments": [attachment_view(d, version) for d in items]}


@router.get(_BASE + "/{volume_id}")
def show_attachment(
    server_id: str, volume_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    version = request_version(request)
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
        dev = devices.get_volume(s, inst, volume_id)
    return {"volumeAttachment": attachment_view(dev, version)}


def _attach(request: Request, ctx: RequestContext, server_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    version = request_version(request)
    dev = hotplug.attach_volume(  # a real guest gets the volume plugged in by its host
        runtime(request),
        ctx,
        server_id,
        spec["volumeId"],
        device=spec.get("device"),
        tag=spec.get("tag"),
        delete_on_termination=bool(spec.get("delete_on_termination", False)),
    )
    return {"volumeAttachment": attachment_view(dev, version, created=True)}


def attach_answers_body(version: Version) -> bool:
    """Before 2.101 an attach answers 200 with the attachment; from 2.101 202 and no body."""
    return version < V(2, 101)


@router.post(_BASE, response_model=None)
async def attach_volume(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any] | Response:
    body = await json_body(request)
    validate(attach_schema(request_version(request)), body)
    out = await run_in_threadpool(_attach, request, ctx, server_id, body["volumeAttachment"])
    if attach_answers_body(request_version(request)):
        return out
    return Response(status_code=202)  # 2.101


def _check_immutable(dev: devices.VolumeDevice, server_id: str, spec: dict[str, Any]) -> None:
    current = {"id": dev.volume_id, "serverId": server_id, "device": dev.device, "tag": dev.tag}
    for key, value in current.items():
        if key in spec and spec[key] != value:
            raise BadRequest(f"The {key} property is not mutable", kind="HTTPBadRequest")


def _update(
    request: Request, ctx: RequestContext, server_id: str, volume_id: str, spec: dict[str, Any]
) -> None:
    version = request_version(request)
    new_id = spec["volumeId"]
    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        if version >= V(2, 85) and new_id == volume_id:  # 2.85: an update of the same attachment
            _check_immutable(devices.get_volume(s, inst, volume_id), inst.uuid, spec)
            devices.update_volume(
                s, ctx, inst, volume_id, delete_on_termination=spec.get("delete_on_termination")
            )
            return
        ctx.require_admin(SWAP_RULE)
        if "delete_on_termination" in spec:
            raise BadRequest(
                "delete_on_termination can only be changed without swapping the volume", kind="HTTPBadRequest"
            )
        devices.swap_volume(s, ctx, inst, volume_id, new_id)
        record_action(s, ctx, inst, "swap_volume", event="compute_swap_volume")


@router.put(_BASE + "/{volume_id}", status_code=202)
async def update_attachment(
    server_id: str, volume_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    body = await json_body(request)
    validate(update_schema(request_version(request)), body)
    await run_in_threadpool(_update, request, ctx, server_id, volume_id, body["volumeAttachment"])
    return Response(status_code=202)


def _detach(request: Request, ctx: RequestContext, server_id: str, volume_id: str) -> None:
    hotplug.detach_volume(runtime(request), ctx, server_id, volume_id)


@router.delete(_BASE + "/{volume_id}", status_code=202)
def detach_volume(
    server_id: str, volume_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    _detach(request, ctx, server_id, volume_id)
    return Response(status_code=202)
