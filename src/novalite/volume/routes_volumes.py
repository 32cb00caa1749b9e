"""Cinder v3 volumes: list/detail, create (blank or from an image), show, update, delete,
actions (extend, reset status, bootable, read-only, image metadata) and metadata."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime
from novalite.db.models.volume import Volume, VolumeAttachment, VolumeType
from novalite.errors import BadRequest, NotFound
from novalite.volume import quotas, records, service
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
from novalite.volume.metadata_routes import (
    MetadataOwner,
    all_metadata,
    delete_key,
    meta_body,
    metadata_body,
    set_key,
    show_key,
)

router = APIRouter()
MAX_LIMIT = 1000  # Cinder's osapi_max_limit: longer lists come in pages
SORTABLE = {"id", "name", "status", "size", "created_at", "updated_at", "availability_zone", "bootable"}


def _filters(request: Request, vr: VolumeRequest, vols: list[Volume]) -> list[Volume]:
    q = request.query_params
    if q.get("project_id") and vr.ctx.is_admin:
        vols = [x for x in vols if x.project_id == q["project_id"]]
    if "name" in q:
        vols = [x for x in vols if x.name == q["name"]]
    if "status" in q:
        vols = [x for x in vols if x.status == q["status"]]
    if "availability_zone" in q:
        vols = [x for x in vols if x.availability_zone == q["availability_zone"]]
    if "bootable" in q:
        want = boolean("bootable", q["bootable"])
        vols = [x for x in vols if x.bootable == want]
    if "metadata" in q:
        try:
            wanted = json.loads(q["metadata"].replace("'", '"'))
        except ValueError:
            raise BadRequest(
                "Invalid input received: metadata filter must be a JSON object.", kind="InvalidInput"
            ) from None
        if not isinstance(wanted, dict):
            raise BadRequest(
                "Invalid input received: metadata filter must be a JSON object.", kind="InvalidInput"
            )
        vols = [x for x in vols if all((x.volume_metadata or {}).get(k) == val for k, val in wanted.items())]
    return vols


def _sort(request: Request, vols: list[Volume]) -> list[Volume]:
    q = request.query_params
    pairs: list[tuple[str, str]] = []
    if q.get("sort"):
        for item in q["sort"].split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key, direction or "desc"))
    elif q.get("sort_key"):
        pairs.append((q["sort_key"], q.get("sort_dir", "desc")))
    for key, direction in reversed(pairs):
        if key not in SORTABLE or direction not in ("asc", "desc"):
            raise BadRequest(
                f"Invalid input received: Invalid sort key or direction: {key}:{direction}",
                kind="InvalidInput",
            )
        # (present, value): None sorts first and is never compared with a value
        vols = sorted(
            vols, key=lambda x: (getattr(x, key) is not None, getattr(x, key)), reverse=direction == "desc"
        )
    return vols


def _page(request: Request, vols: list[Volume]) -> tuple[list[Volume], bool]:
    q = request.query_params
    limit = integer("limit", q["limit"], minimum=0) if "limit" in q else None
    start = integer("offset", q["offset"], minimum=0) if "offset" in q else 0
    if q.get("marker"):
        ids = [x.id for x in vols]
        if q["marker"] not in ids:
            raise NotFound(f"Marker {q['marker']} could not be found.", kind="MarkerNotFound")
        start = ids.index(q["marker"]) + 1
    limit = MAX_LIMIT if not limit else min(limit, MAX_LIMIT)
    page = vols[start : start + limit]
    return page, len(page) == limit  # Cinder: a full page has a next link


def _attachments_by_volume(s: Session, volume_ids: list[str]) -> dict[str, list[VolumeAttachment]]:
    """Each volume's attachment rows, oldest first, in one query."""
    atts: dict[str, list[VolumeAttachment]] = {vid: [] for vid in volume_ids}
    if atts:
        q = select(VolumeAttachment).where(VolumeAttachment.volume_id.in_(list(atts)))
        for att in s.scalars(q.order_by(VolumeAttachment.created_at, VolumeAttachment.id)):
            atts[att.volume_id].append(att)
    return atts


def _details(request: Request, s: Session, vr: VolumeRequest, page: list[Volume]) -> list[dict[str, Any]]:
    types = {t.id: t for t in s.scalars(select(VolumeType))}
    atts = _attachments_by_volume(s, [x.id for x in page])
    return [
        v.volume_detail(request, s, vr.ctx, vr.version, x, types.get(x.volume_type_id), atts=atts[x.id])
        for x in page
    ]


def _next_link(request: Request, page: list[Volume]) -> dict[str, str]:
    params = [(k, val) for k, val in request.query_params.multi_items() if k != "marker"]
    href = f"{runtime(request).public_url}{request.url.path}?{urlencode(params + [('marker', page[-1].id)])}"
    return {"rel": "next", "href": href}


def _list(request: Request, vr: VolumeRequest, detail: bool) -> JSONResponse:
    all_projects = boolean("all_tenants", request.query_params.get("all_tenants", "false"))
    with runtime(request).db.reader() as s:
        vols = _sort(
            request, _filters(request, vr, records.visible_volumes(s, vr.ctx, all_projects=all_projects))
        )
        page, more = _page(request, vols)
        items = _details(request, s, vr, page) if detail else [v.volume_summary(request, x) for x in page]
    body: dict[str, Any] = {"volumes": items}
    if more:
        body["volumes_links"] = [_next_link(request, page)]
    return respond(vr, add_count(request, vr, body, len(vols)))


@router.get("/volumes")
def list_volumes(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    return _list(request, vr, detail=False)


@router.get("/volumes/detail")
def list_volumes_detail(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    return _list(request, vr, detail=True)


def _show(
    request: Request,
    vr: VolumeRequest,
    volume_id: str,
    status: int = 200,
    background: BackgroundTask | None = None,
    *,
    extended: bool = True,
) -> JSONResponse:
    with runtime(request).db.reader() as s:
        vol = records.get_volume_row(s, vr.ctx, volume_id)
        body = v.volume_detail(
            request, s, vr.ctx, vr.version, vol, s.get(VolumeType, vol.volume_type_id), extended=extended
        )
    return respond(vr, {"volume": body}, status, background)


@router.get("/volumes/")
@router.put("/volumes/")
@router.delete("/volumes/")
def volume_without_id(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    """An empty volume id names no volume (Cinder answers 404, not the collection)."""
    raise records.volume_not_found("")


@router.get("/volumes/{volume_id}")
def show_volume(
    volume_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    return _show(request, vr, volume_id)


def _create_fields(body: Any) -> dict[str, Any]:
    vol = section(body, "volume")
    for unsupported in ("backup_id", "consistencygroup_id", "group_id"):
        if vol.get(unsupported):
            raise BadRequest(
                f"Invalid input received: {unsupported} is not supported by this cloud.", kind="InvalidInput"
            )
    fields: dict[str, Any] = {
        "name": text("name", vol.get("name", vol.get("display_name"))),
        "description": text("description", vol.get("description", vol.get("display_description"))),
        "volume_type": text("volume_type", vol.get("volume_type")),
        "availability_zone": text("availability_zone", vol.get("availability_zone")),
        "imageRef": text("imageRef", vol.get("imageRef", vol.get("image_id"))),
        "metadata": metadata(vol.get("metadata")),
        "multiattach": boolean("multiattach", vol.get("multiattach", False)),
        "size": None if vol.get("size") is None else integer("size", vol["size"]),
        "snapshot_id": text("snapshot_id", vol.get("snapshot_id")),
        "source_volid": text("source_volid", vol.get("source_volid")),
    }
    return fields


def _create(request: Request, vr: VolumeRequest, fields: dict[str, Any]) -> JSONResponse:
    rt = runtime(request)
    with rt.db.serialized(quotas.quota_lock(vr.ctx.project_id)) as s:
        volume_id = records.create_volume(s, vr.ctx, fields).id
    return _show(
        request, vr, volume_id, 202, BackgroundTask(service.finish_create, rt, volume_id), extended=False
    )


@router.post("/volumes")
async def create_volume(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    fields = _create_fields(await json_body(request))
    return await run_in_threadpool(_create, request, vr, fields)


def _update(request: Request, vr: VolumeRequest, volume_id: str, changes: dict[str, Any]) -> JSONResponse:
    with runtime(request).db.session() as s:
        service.update_volume(records.get_volume_row(s, vr.ctx, volume_id), changes)
    return _show(request, vr, volume_id, extended=False)


@router.put("/volumes/{volume_id}")
async def update_volume(
    volume_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    vol = section(await json_body(request), "volume")
    allowed = {"name", "description", "display_name", "display_description", "metadata"}
    only(vol, allowed, "volume")
    changes: dict[str, Any] = {}
    for key, alias in (("name", "display_name"), ("description", "display_description")):
        if key in vol or alias in vol:
            changes[key] = text(key, vol.get(key, vol.get(alias)))
    if "metadata" in vol:
        changes["metadata"] = metadata(vol["metadata"])
    return await run_in_threadpool(_update, request, vr, volume_id, changes)


@router.delete("/volumes/{volume_id}")
def delete_volume(volume_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)) -> Response:
    cascade = boolean("cascade", request.query_params.get("cascade", "false"))
    service.delete_volume(runtime(request), vr.ctx, volume_id, cascade=cascade)
    return Response(status_code=202, headers={"OpenStack-API-Version": f"volume {vr.version}"})


VOLUME_METADATA = MetadataOwner("Volume", records.get_volume_row, "volume_metadata")


@router.get("/volumes/{volume_id}/metadata")
def show_metadata(
    volume_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    return all_metadata(request, vr, VOLUME_METADATA, volume_id, None, False)


@router.post("/volumes/{volume_id}/metadata")
@router.put("/volumes/{volume_id}/metadata")
async def set_metadata(
    volume_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    new = metadata_body(await json_body(request))
    replace = request.method == "PUT"
    return await run_in_threadpool(all_metadata, request, vr, VOLUME_METADATA, volume_id, new, replace)


@router.delete("/volumes/{volume_id}/metadata/{key}")
def delete_metadata_key(
    volume_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    delete_key(request, vr, VOLUME_METADATA, volume_id, key)
    return Response(status_code=200)


@router.get("/volumes/{volume_id}/metadata/{key}")
def show_metadata_key(
    volume_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    return show_key(request, vr, VOLUME_METADATA, volume_id, key)


@router.put("/volumes/{volume_id}/metadata/{key}")
async def update_metadata_key(
    volume_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    value = meta_body(await json_body(request), key)
    return await run_in_threadpool(set_key, request, vr, VOLUME_METADATA, volume_id, key, value)
