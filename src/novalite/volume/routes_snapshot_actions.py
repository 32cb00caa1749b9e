"""Cinder v3 snapshot metadata (``/snapshots/{id}/metadata[/{key}]``), the admin actions on
snapshots and backups (``os-reset_status``, ``os-force_delete``), and a backup's update (3.9;
metadata from 3.43)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime
from novalite.api.microversion import V
from novalite.context import RequestContext
from novalite.errors import BadRequest
from novalite.volume import backups, snapshots
from novalite.volume import views as v
from novalite.volume.api import (
    VolumeRequest,
    metadata,
    only,
    require,
    respond,
    section,
    text,
    volume_request,
)
from novalite.volume.metadata_routes import (
    MetadataOwner,
    all_metadata,
    delete_key,
    meta_body,
    metadata_body,
    set_key,
    show_key,
)
from novalite.volume.storage import delete_location

router = APIRouter()
SNAPSHOT_STATUSES = (
    "error",
    "available",
    "creating",
    "deleting",
    "updating",
    "error_deleting",
    "unmanaging",
    "backing-up",
    "restoring",
)
BACKUP_STATUSES = ("available", "error")


def _accepted(vr: VolumeRequest) -> Response:
    return Response(status_code=202, headers={"OpenStack-API-Version": f"volume {vr.version}"})


# --- snapshot metadata ---------------------------------------------------------------------------


SNAPSHOT_METADATA = MetadataOwner("Snapshot", snapshots.get_snapshot_row, "snapshot_metadata")


@router.get("/snapshots/{snapshot_id}/metadata")
def show_snapshot_metadata(
    snapshot_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    return all_metadata(request, vr, SNAPSHOT_METADATA, snapshot_id, None, False)


@router.post("/snapshots/{snapshot_id}/metadata")
@router.put("/snapshots/{snapshot_id}/metadata")
async def set_snapshot_metadata(
    snapshot_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    new = metadata_body(await json_body(request))
    replace = request.method == "PUT"
    return await run_in_threadpool(all_metadata, request, vr, SNAPSHOT_METADATA, snapshot_id, new, replace)


@router.get("/snapshots/{snapshot_id}/metadata/{key}")
def show_snapshot_metadata_key(
    snapshot_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    return show_key(request, vr, SNAPSHOT_METADATA, snapshot_id, key)


@router.put("/snapshots/{snapshot_id}/metadata/{key}")
async def update_snapshot_metadata_key(
    snapshot_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    value = meta_body(await json_body(request), key)
    return await run_in_threadpool(set_key, request, vr, SNAPSHOT_METADATA, snapshot_id, key, value)


@router.delete("/snapshots/{snapshot_id}/metadata/{key}")
def delete_snapshot_metadata_key(
    snapshot_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    delete_key(request, vr, SNAPSHOT_METADATA, snapshot_id, key)
    return Response(status_code=200, headers={"OpenStack-API-Version": f"volume {vr.version}"})


# --- admin actions -------------------------------------------------------------------------------


def _one_action(body: Any) -> tuple[str, Any]:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid request body: exactly one action is required.", kind="InvalidInput")
    return next(iter(body.items()))


def _new_status(args: Any, allowed: tuple[str, ...]) -> str:
    status = args.get("status") if isinstance(args, dict) else None
    if status is None:
        raise BadRequest("Missing required element 'status' in request body.", kind="MissingRequiredElement")
    if status not in allowed:
        raise BadRequest(
            f"Invalid input received: Must specify a valid status, got '{status}'.", kind="InvalidInput"
        )
    return str(status)


@dataclass(frozen=True)
class AdminActions:
    """What the admin actions of snapshots or backups differ in: the row's loader, the policy
    rules' prefix (``{policy}:reset_status``, ``{policy}:force_delete``) and the statuses a reset
    may set."""

    load: Callable[[Session, RequestContext, str], Any]
    policy: str
    statuses: tuple[str, ...]


SNAPSHOT_ADMIN = AdminActions(
    snapshots.get_snapshot_row, "volume_extension:snapshot_admin_actions", SNAPSHOT_STATUSES
)
BACKUP_ADMIN = AdminActions(backups.get_backup_row, "volume_extension:backup_admin_actions", BACKUP_STATUSES)


def _admin_action(
    request: Request, vr: VolumeRequest, kind: AdminActions, row_id: str, name: str, args: Any
) -> Response:
    """os-reset_status or os-force_delete of a snapshot or backup."""
    location: str | None = None
    with runtime(request).db.session() as s:
        row = kind.load(s, vr.ctx, row_id)
        if name == "os-reset_status":
            vr.ctx.require_admin(f"{kind.policy}:reset_status")
            row.status = _new_status(args, kind.statuses)
        elif name == "os-force_delete":
            vr.ctx.require_admin(f"{kind.policy}:force_delete")
            location = row.location
            s.delete(row)
        else:
            raise BadRequest(f"There is no such action: {name}", kind="InvalidInput")
    delete_location(location)
    return _accepted(vr)


@router.post("/snapshots/{snapshot_id}/action")
async def snapshot_action(
    snapshot_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    name, args = _one_action(await json_body(request))
    return await run_in_threadpool(_admin_action, request, vr, SNAPSHOT_ADMIN, snapshot_id, name, args)


@router.post("/backups/{backup_id}/action")
async def backup_action(
    backup_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    name, args = _one_action(await json_body(request))
    return await run_in_threadpool(_admin_action, request, vr, BACKUP_ADMIN, backup_id, name, args)


# --- backup update (3.9) -------------------------------------------------------------------------


def _update_backup(request: Request, vr: VolumeRequest, backup_id: str, body: dict[str, Any]) -> JSONResponse:
    allowed = {"name", "description"} | ({"metadata"} if vr.version >= V(3, 43) else set())  # 3.43: metadata
    only(body, allowed, "backup")
    with runtime(request).db.session() as s:
        backup = backups.get_backup_row(s, vr.ctx, backup_id)
        for key in ("name", "description"):
            if key in body:
                setattr(backup, key, text(key, body[key]))
        if "metadata" in body:
            backup.backup_metadata = metadata(body["metadata"])
        s.flush()
        return respond(vr, {"backup": v.backup_summary(request, backup)})


@router.put("/backups/{backup_id}")
async def update_backup(
    backup_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    require(vr.version, V(3, 9))  # 3.9: backups can be updated
    body = section(await json_body(request), "backup")
    return await run_in_threadpool(_update_backup, request, vr, backup_id, body)
