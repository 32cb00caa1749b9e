"""Cinder v3 snapshots and backups: list/detail, create, show, update (snapshots), delete, and a
backup's restore. The records and the data copies are in ``snapshots`` and ``backups``."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime
from novalite.api.microversion import V
from novalite.db.models.volume import VolumeBackup, VolumeSnapshot
from novalite.errors import BadRequest, NotFound
from novalite.volume import backups, quotas, snapshots
from novalite.volume import views as v
from novalite.volume.api import (
    VolumeRequest,
    add_count,
    boolean,
    integer,
    metadata,
    only,
    respond,
    section,
    text,
    volume_request,
)

router = APIRouter()
MAX_LIMIT = 1000
T = TypeVar("T", VolumeSnapshot, VolumeBackup)


def _filtered(request: Request, vr: VolumeRequest, items: list[T]) -> list[T]:
    q = request.query_params
    for key in ("name", "status", "volume_id"):
        if key in q:
            items = [x for x in items if getattr(x, key) == q[key]]
    if q.get("project_id") and vr.ctx.is_admin:
        items = [x for x in items if x.project_id == q["project_id"]]
    limit = integer("limit", q["limit"], minimum=0) if "limit" in q else MAX_LIMIT
    start = integer("offset", q["offset"], minimum=0) if "offset" in q else 0
    if q.get("marker"):
        ids = [x.id for x in items]
        if q["marker"] not in ids:
            raise NotFound(f"Marker {q['marker']} could not be found.", kind="MarkerNotFound")
        start = ids.index(q["marker"]) + 1
    return items[start : start + min(limit or MAX_LIMIT, MAX_LIMIT)]


def _all_projects(request: Request) -> bool:
    return boolean("all_tenants", request.query_params.get("all_tenants", "false"))


def _no_content(vr: VolumeRequest) -> Response:
    return Response(status_code=202, headers={"OpenStack-API-Version": f"volume {vr.version}"})


# --- snapshots -------------------------------------------------------------------------------


def _list_snapshots(request: Request, vr: VolumeRequest, detail: bool) -> JSONResponse:
    with runtime(request).db.reader() as s:
        found = snapshots.visible_snapshots(s, vr.ctx, all_projects=_all_projects(request))
        page = _filtered(request, vr, found)
        body: dict[str, Any] = {"snapshots": [v.snapshot_view(x, vr.version, extended=detail) for x in page]}
    return respond(vr, add_count(request, vr, body, len(found)))


@router.get("/snapshots")
def list_snapshots(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    return _list_snapshots(request, vr, detail=False)


@router.get("/snapshots/detail")
def list_snapshots_detail(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    return _list_snapshots(request, vr, detail=True)


def _show_snapshot(
    request: Request,
    vr: VolumeRequest,
    snapshot_id: str,
    status: int = 200,
    task: BackgroundTask | None = None,
) -> JSONResponse:
    with runtime(request).db.reader() as s:
        snap = snapshots.get_snapshot_row(s, vr.ctx, snapshot_id)
        return respond(vr, {"snapshot": v.snapshot_view(snap, vr.version)}, status, task)


@router.get("/snapshots/{snapshot_id}")
def show_snapshot(
    snapshot_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    return _show_snapshot(request, vr, snapshot_id)


def _create_snapshot(request: Request, vr: VolumeRequest, body: dict[str, Any]) -> JSONResponse:
    volume_id = text("volume_id", body.get("volume_id"))
    if not volume_id:
        raise BadRequest("Invalid input received: 'volume_id' is a required property", kind="InvalidInput")
    force = boolean("force", body.get("force", False))
    if vr.version >= V(3, 66):  # 3.66: an in-use volume needs no force
        force = True
    fields = {
        "name": text("name", body.get("name", body.get("display_name"))),
        "description": text("description", body.get("description", body.get("display_description"))),
        "metadata": metadata(body.get("metadata")),
    }
    rt = runtime(request)
    with rt.db.serialized(quotas.quota_lock(vr.ctx.project_id)) as s:
        snapshot_id = snapshots.create_snapshot(s, vr.ctx, volume_id, force=force, fields=fields).id
    return _show_snapshot(
        request, vr, snapshot_id, 202, BackgroundTask(snapshots.finish_snapshot, rt, snapshot_id)
    )


@router.post("/snapshots")
async def create_snapshot(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    body = section(await json_body(request), "snapshot")
    return await run_in_threadpool(_create_snapshot, request, vr, body)


def _update_snapshot(
    request: Request, vr: VolumeRequest, snapshot_id: str, body: dict[str, Any]
) -> JSONResponse:
    allowed = {"name", "description", "display_name", "display_description"}
    only(body, allowed, "snapshot")
    with runtime(request).db.session() as s:
        snap = snapshots.get_snapshot_row(s, vr.ctx, snapshot_id)
        for key, alias in (("name", "display_name"), ("description", "display_description")):
            if key in body or alias in body:
                setattr(snap, key, text(key, body.get(key, body.get(alias))))
    return _show_snapshot(request, vr, snapshot_id)


@router.put("/snapshots/{snapshot_id}")
async def update_snapshot(
    snapshot_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    body = section(await json_body(request), "snapshot")
    return await run_in_threadpool(_update_snapshot, request, vr, snapshot_id, body)


@router.delete("/snapshots/{snapshot_id}")
def delete_snapshot(
    snapshot_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    snapshots.delete_snapshot(runtime(request), vr.ctx, snapshot_id)
    return _no_content(vr)


# --- backups ---------------------------------------------------------------------------------


def _list_backups(request: Request, vr: VolumeRequest, detail: bool) -> JSONResponse:
    with runtime(request).db.reader() as s:
        found = backups.visible_backups(s, vr.ctx, all_projects=_all_projects(request))
        page = _filtered(request, vr, found)
        items = [
            v.backup_detail(request, vr.ctx, vr.version, x) if detail else v.backup_summary(request, x)
            for x in page
        ]
    body: dict[str, Any] = {"backups": items}
    return respond(vr, add_count(request, vr, body, len(found)))


@router.get("/backups")
def list_backups(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    return _list_backups(request, vr, detail=False)


@router.get("/backups/detail")
def list_backups_detail(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    return _list_backups(request, vr, detail=True)


@router.get("/backups/{backup_id}")
def show_backup(
    backup_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    with runtime(request).db.reader() as s:
        backup = backups.get_backup_row(s, vr.ctx, backup_id)
        return respond(vr, {"backup": v.backup_detail(request, vr.ctx, vr.version, backup)})


def _create_backup(request: Request, vr: VolumeRequest, body: dict[str, Any]) -> JSONResponse:
    volume_id = text("volume_id", body.get("volume_id"))
    if not volume_id:
        raise BadRequest("Invalid input received: 'volume_id' is a required property", kind="InvalidInput")
    fields = {
        "name": text("name", body.get("name")),
        "description": text("description", body.get("description")),
        "container": text("container", body.get("container")),
        "snapshot_id": text("snapshot_id", body.get("snapshot_id")),
        "metadata": metadata(body.get("metadata")),
    }
    boolean("incremental", body.get("incremental", False))  # a full backup either way
    force = boolean("force", body.get("force", False))
    rt = runtime(request)
    with rt.db.serialized(quotas.quota_lock(vr.ctx.project_id)) as s:
        backup = backups.create_backup(s, vr.ctx, volume_id, force=force, fields=fields)
        summary, backup_id = v.backup_summary(request, backup), backup.id
    return respond(vr, {"backup": summary}, 202, BackgroundTask(backups.finish_backup, rt, backup_id))


@router.post("/backups")
async def create_backup(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    body = section(await json_body(request), "backup")
    return await run_in_threadpool(_create_backup, request, vr, body)


@router.delete("/backups/{backup_id}")
def delete_backup(backup_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)) -> Response:
    backups.delete_backup(runtime(request), vr.ctx, backup_id)
    return _no_content(vr)


def _restore(request: Request, vr: VolumeRequest, backup_id: str, body: dict[str, Any]) -> JSONResponse:
    fields = {"volume_id": text("volume_id", body.get("volume_id")), "name": text("name", body.get("name"))}
    rt = runtime(request)
    with rt.db.serialized(quotas.quota_lock(vr.ctx.project_id)) as s:
        vol = backups.start_restore(s, vr.ctx, backup_id, fields)
        restore = {"backup_id": backup_id, "volume_id": vol.id, "volume_name": vol.name}
    return respond(vr, {"restore": restore}, 202, BackgroundTask(backups.finish_restore, rt, backup_id))


@router.post("/backups/{backup_id}/restore")
async def restore_backup(
    backup_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    body = section(await json_body(request), "restore")
    return await run_in_threadpool(_restore, request, vr, backup_id, body)
