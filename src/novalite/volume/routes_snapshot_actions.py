"""Cinder v3 snapshot metadata (``/snapshots/{id}/metadata[/{key}]``), the admin actions on
snapshots and backups (``os-reset_status``, ``os-force_delete``), and a backup's update (3.9;
metadata from 3.43)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime
from novalite.api.microversion import V
from novalite.errors import BadRequest, NotFound
from novalite.volume import backups, snapshots
from novalite.volume import views as v
from novalite.volume.api import VolumeRequest, metadata, require, respond, section, text, volume_request
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


def _metadata(
    request: Request, vr: VolumeRequest, snapshot_id: str, new: dict[str, str] | None, replace: bool
) -> JSONResponse:
    with runtime(request).db.session() as s:
        snap = snapshots.get_snapshot_row(s, vr.ctx, snapshot_id)
        if new is not None:
            snap.snapshot_metadata = dict(new) if replace else {**(snap.snapshot_metadata or {}), **new}
        return respond(vr, {"metadata": dict(snap.snapshot_metadata or {})})


@router.get("/snapshots/{snapshot_id}/metadata")
def show_snapshot_metadata(
    snapshot_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    return _metadata(request, vr, snapshot_id, None, False)


@router.post("/snapshots/{snapshot_id}/metadata")
@router.put("/snapshots/{snapshot_id}/metadata")
async def set_snapshot_metadata(
    snapshot_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    body = await json_body(request)
    if not isinstance(body, dict) or "metadata" not in body:
        raise BadRequest(
            "Missing required element 'metadata' in request body.", kind="MissingRequiredElement"
        )
    new = metadata(body["metadata"])
    return await run_in_threadpool(_metadata, request, vr, snapshot_id, new, request.method == "PUT")


def _key_missing(snapshot_id: str, key: str) -> NotFound:
    return NotFound(
        f"Snapshot {snapshot_id} has no metadata with key {key}.", kind="SnapshotMetadataNotFound"
    )


@router.get("/snapshots/{snapshot_id}/metadata/{key}")
def show_snapshot_metadata_key(
    snapshot_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    with runtime(request).db.reader() as s:
        meta = dict(snapshots.get_snapshot_row(s, vr.ctx, snapshot_id).snapshot_metadata or {})
    if key not in meta:
        raise _key_missing(snapshot_id, key)
    return respond(vr, {"meta": {key: meta[key]}})


def _set_key(request: Request, vr: VolumeRequest, snapshot_id: str, key: str, value: str) -> JSONResponse:
    with runtime(request).db.session() as s:
        snap = snapshots.get_snapshot_row(s, vr.ctx, snapshot_id)
        snap.snapshot_metadata = {**(snap.snapshot_metadata or {}), key: value}
    return respond(vr, {"meta": {key: value}})


@router.put("/snapshots/{snapshot_id}/metadata/{key}")
async def update_snapshot_metadata_key(
    snapshot_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    body = await json_body(request)
    if not isinstance(body, dict) or "meta" not in body:
        raise BadRequest("Missing required element 'meta' in request body.", kind="MissingRequiredElement")
    meta = metadata(body["meta"])
    if list(meta) != [key]:
        raise BadRequest("Request body and URI mismatch", kind="InvalidInput")
    return await run_in_threadpool(_set_key, request, vr, snapshot_id, key, meta[key])


@router.delete("/snapshots/{snapshot_id}/metadata/{key}")
def delete_snapshot_metadata_key(
    snapshot_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    with runtime(request).db.session() as s:
        snap = snapshots.get_snapshot_row(s, vr.ctx, snapshot_id)
        meta = dict(snap.snapshot_metadata or {})
        if key not in meta:
            raise _key_missing(snapshot_id, key)
        del meta[key]
        snap.snapshot_metadata = meta
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


def _snapshot_action(request: Request, vr: VolumeRequest, snapshot_id: str, name: str, args: Any) -> Response:
    location: str | None = None
    with runtime(request).db.session() as s:
        snap = snapshots.get_snapshot_row(s, vr.ctx, snapshot_id)
        if name == "os-reset_status":
            vr.ctx.require_admin("volume_extension:snapshot_admin_actions:reset_status")
            snap.status = _new_status(args, SNAPSHOT_STATUSES)
        elif name == "os-force_delete":
            vr.ctx.require_admin("volume_extension:snapshot_admin_actions:force_delete")
            location = snap.location
            s.delete(snap)
        else:
            raise BadRequest(f"There is no such action: {name}", kind="InvalidInput")
    delete_location(location)
    return _accepted(vr)


@router.post("/snapshots/{snapshot_id}/action")
async def snapshot_action(
    snapshot_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    name, args = _one_action(await json_body(request))
    return await run_in_threadpool(_snapshot_action, request, vr, snapshot_id, name, args)


def _backup_action(request: Request, vr: VolumeRequest, backup_id: str, name: str, args: Any) -> Response:
    location: str | None = None
    with runtime(request).db.session() as s:
        backup = backups.get_backup_row(s, vr.ctx, backup_id)
        if name == "os-reset_status":
            vr.ctx.require_admin("volume_extension:backup_admin_actions:reset_status")
            backup.status = _new_status(args, BACKUP_STATUSES)
        elif name == "os-force_delete":
            vr.ctx.require_admin("volume_extension:backup_admin_actions:force_delete")
            location = backup.location
            s.delete(backup)
        else:
            raise BadRequest(f"There is no such action: {name}", kind="InvalidInput")
    delete_location(location)
    return _accepted(vr)


@router.post("/backups/{backup_id}/action")
async def backup_action(
    backup_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    name, args = _one_action(await json_body(request))
    return await run_in_threadpool(_backup_action, request, vr, backup_id, name, args)


# --- backup update (3.9) -------------------------------------------------------------------------


def _update_backup(request: Request, vr: VolumeRequest, backup_id: str, body: dict[str, Any]) -> JSONResponse:
    allowed = {"name", "description"} | ({"metadata"} if vr.version >= V(3, 43) else set())  # 3.43: metadata
    unknown = sorted(set(body) - allowed)
    if unknown or not body:
        raise BadRequest(
            f"Invalid input for field/attribute backup. Additional properties are not allowed "
            f"({', '.join(unknown)} were unexpected)",
            kind="ValidationError",
        )
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
