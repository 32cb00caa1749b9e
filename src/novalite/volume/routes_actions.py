"""POST /volumes/{id}/action: os-extend, os-reset_status (admin), os-set_bootable,
os-update_readonly_flag, os-set_image_metadata, os-unset_image_metadata, os-show_image_metadata,
and the legacy attach actions of ``legacy_actions``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime
from novalite.db.models.volume import Volume
from novalite.errors import BadRequest, NotFound
from novalite.volume import legacy_actions as legacy
from novalite.volume import records, service
from novalite.volume.api import VolumeRequest, boolean, integer, metadata, respond, volume_request

router = APIRouter()
STATUSES = (
    "available",
    "error",
    "creating",
    "deleting",
    "in-use",
    "attaching",
    "detaching",
    "reserved",
    "error_deleting",
    "maintenance",
    "error_extending",
    "extending",
)
Handler = Callable[[Any, Session, VolumeRequest, Volume, Any], dict[str, Any] | None]


def _arg(args: Any, key: str) -> Any:
    if not isinstance(args, dict) or key not in args:
        raise BadRequest(f"Missing required element '{key}' in request body.", kind="MissingRequiredElement")
    return args[key]


def _extend(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    service.extend_volume(rt, s, vol, integer("new_size", _arg(args, "new_size")))


def _reset_status(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    vr.ctx.require_admin("volume_extension:volume_admin_actions:reset_status")
    if not isinstance(args, dict):
        raise BadRequest("Missing required element 'status' in request body.", kind="MissingRequiredElement")
    status = args.get("status")
    if status is not None:
        if status not in STATUSES:
            raise BadRequest(
                f"Invalid input received: Must specify a valid status, got '{status}'.", kind="InvalidInput"
            )
        vol.status = status
    attach_status = args.get("attach_status")
    if attach_status is not None:
        if attach_status not in ("attached", "detached"):
            raise BadRequest(
                f"Invalid input received: Must specify a valid attach status, got '{attach_status}'.",
                kind="InvalidInput",
            )
        vol.attach_status = attach_status


def _retype(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    new_type = _arg(args, "new_type")
    if not isinstance(new_type, str):
        raise BadRequest(
            "Invalid input received: new_type must be a volume type name or id.", kind="InvalidInput"
        )
    if vol.status not in ("available", "in-use"):
        raise records.invalid_volume(
            f"Volume {vol.id} status must be available or in-use, but current status is: {vol.status}."
        )
    vol.volume_type_id = records.find_type(s, new_type, vr.ctx).id


def _bootable(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    vol.bootable = boolean("bootable", _arg(args, "bootable"))


def _readonly(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    vol.read_only = boolean("readonly", _arg(args, "readonly"))
    # Cinder shows the flag (an admin metadata item) among the volume's metadata
    vol.volume_metadata = {**(vol.volume_metadata or {}), "readonly": str(vol.read_only)}


def _set_image_metadata(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> dict[str, Any]:
    vol.image_metadata = {**(vol.image_metadata or {}), **metadata(_arg(args, "metadata"))}
    return {"metadata": dict(vol.image_metadata)}


def _unset_image_metadata(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> None:
    key = _arg(args, "key")
    meta = dict(vol.image_metadata or {})
    if key not in meta:
        raise NotFound(
            f"Glance metadata for volume {vol.id} with key {key} could not be found.",
            kind="GlanceMetadataNotFound",
        )
    del meta[key]
    vol.image_metadata = meta


def _show_image_metadata(rt: Any, s: Session, vr: VolumeRequest, vol: Volume, args: Any) -> dict[str, Any]:
    return {"metadata": dict(vol.image_metadata or {})}


ACTIONS: dict[str, tuple[Handler, int]] = {
    "os-extend": (_extend, 202),
    "os-reset_status": (_reset_status, 202),
    "os-set_bootable": (_bootable, 200),
    "os-update_readonly_flag": (_readonly, 202),
    "os-set_image_metadata": (_set_image_metadata, 200),
    "os-unset_image_metadata": (_unset_image_metadata, 200),
    "os-show_image_metadata": (_show_image_metadata, 200),
    "os-retype": (_retype, 202),
    "os-reserve": (legacy.reserve, 202),
    "os-unreserve": (legacy.unreserve, 202),
    "os-attach": (legacy.attach, 202),
    "os-begin_detaching": (legacy.begin_detaching, 202),
    "os-roll_detaching": (legacy.roll_detaching, 202),
    "os-detach": (legacy.detach, 202),
    "os-initialize_connection": (legacy.initialize_connection, 200),
    "os-terminate_connection": (legacy.terminate_connection, 202),
    "os-force_detach": (legacy.force_detach, 202),
    "os-force_delete": (legacy.force_delete, 202),
}


def _run(request: Request, vr: VolumeRequest, volume_id: str, name: str, args: Any) -> Response:
    rt = runtime(request)
    with rt.db.session() as s:
        vol = records.get_volume_row(s, vr.ctx, volume_id)  # 404 before any body check, as Cinder
        if name not in ACTIONS:
            raise BadRequest(f"There is no such action: {name}", kind="InvalidInput")
        handler, status = ACTIONS[name]
        body = handler(rt, s, vr, vol, args)
    if body is not None:
        return respond(vr, body, status)
    return Response(status_code=status, headers={"OpenStack-API-Version": f"volume {vr.version}"})


@router.post("/volumes/{volume_id}/action")
async def volume_action(
    volume_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid request body: exactly one action is required.", kind="InvalidInput")
    name, args = next(iter(body.items()))
    return await run_in_threadpool(_run, request, vr, volume_id, name, args)
