"""Cinder v3 volume types: CRUD (admin writes), extra specs, and project access to private types."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime
from novalite.db.models.volume import Volume, VolumeType, VolumeTypeAccess
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.volume import records
from novalite.volume.api import VolumeRequest, boolean, respond, section, text, volume_request
from novalite.volume.views import type_view

router = APIRouter()
MANAGE = "volume_extension:types_manage"


def _get(s: Session, vr: VolumeRequest, type_id: str) -> VolumeType:
    vtype = records.ensure_default_type(s) if type_id == "default" else s.get(VolumeType, type_id)
    if vtype is None or not records.type_visible(s, vr.ctx, vtype):
        raise NotFound(f"Volume type {type_id} could not be found.", kind="VolumeTypeNotFound")
    return vtype


def _specs(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and 0 < len(k) <= 255 and isinstance(x, str) and len(x) <= 255
        for k, x in value.items()
    ):
        raise BadRequest(
            "Invalid input received: extra_specs must be a map of strings of at most 255 characters.",
            kind="InvalidInput",
        )
    return dict(value)


@router.get("/types")
def list_types(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    with runtime(request).db.session() as s:
        records.ensure_default_type(s)
        q = select(VolumeType).order_by(VolumeType.created_at, VolumeType.name)
        items = [
            type_view(t, admin=vr.ctx.is_admin) for t in s.scalars(q) if records.type_visible(s, vr.ctx, t)
        ]
    return respond(vr, {"volume_types": items})


@router.get("/types/{type_id}")
def show_type(type_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    with runtime(request).db.session() as s:
        return respond(vr, {"volume_type": type_view(_get(s, vr, type_id), admin=vr.ctx.is_admin)})


def _create_type(request: Request, vr: VolumeRequest, fields: dict[str, Any]) -> JSONResponse:
    with runtime(request).db.session() as s:
        if s.scalars(select(VolumeType).where(VolumeType.name == fields["name"])).first() is not None:
            raise Conflict(f"Volume Type {fields['name']} already exists.", kind="VolumeTypeExists")
        vtype = VolumeType(**fields)
        s.add(vtype)
        s.flush()
        return respond(vr, {"volume_type": type_view(vtype, admin=True, create=True)})


@router.post("/types")
async def create_type(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    vr.ctx.require_admin(MANAGE)
    body = section(await json_body(request), "volume_type")
    name = text("name", body.get("name"))
    if not name or not name.strip():
        raise BadRequest("Invalid input received: volume type name can not be empty.", kind="InvalidInput")
    fields = {
        "name": name,
        "description": text("description", body.get("description")),
        "extra_specs": _specs(body.get("extra_specs") or {}),
        "is_public": boolean("is_public", body.get("os-volume-type-access:is_public", True)),
    }
    return await run_in_threadpool(_create_type, request, vr, fields)


def _update_type(request: Request, vr: VolumeRequest, type_id: str, changes: dict[str, Any]) -> JSONResponse:
    with runtime(request).db.session() as s:
        vtype = _get(s, vr, type_id)
        if "name" in changes and changes["name"] != vtype.name:
            if vtype.name == records.DEFAULT_TYPE:
                raise BadRequest("The default volume type can not be renamed.", kind="InvalidVolumeType")
            if s.scalars(select(VolumeType).where(VolumeType.name == changes["name"])).first() is not None:
                raise Conflict(f"Volume Type {changes['name']} already exists.", kind="VolumeTypeExists")
        for key, value in changes.items():
            setattr(vtype, key, value)
        view = type_view(vtype, admin=True, create=True)
        del view["os-volume-type-access:is_public"]  # Cinder's update answer does not carry it
        return respond(vr, {"volume_type": view})


@router.put("/types/{type_id}")
async def update_type(
    type_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    vr.ctx.require_admin(MANAGE)
    body = section(await json_body(request), "volume_type")
    changes: dict[str, Any] = {}
    if "name" in body:
        name = text("name", body["name"])
        if not name or not name.strip():
            raise BadRequest(
                "Invalid input received: volume type name can not be empty.", kind="InvalidInput"
            )
        changes["name"] = name
    if "description" in body:
        changes["description"] = text("description", body["description"])
    if "is_public" in body:
        changes["is_public"] = boolean("is_public", body["is_public"])
    if not changes:
        raise BadRequest(
            "Invalid input received: Specify volume type name, description, is_public or a "
            "combination thereof.",
            kind="InvalidInput",
        )
    return await run_in_threadpool(_update_type, request, vr, type_id, changes)


@router.delete("/types/{type_id}")
def delete_type(type_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)) -> Response:
    vr.ctx.require_admin(MANAGE)
    with runtime(request).db.session() as s:
        vtype = _get(s, vr, type_id)
        if vtype.name == records.DEFAULT_TYPE:
            raise BadRequest("Default volume type can not be deleted.", kind="VolumeTypeDefaultDeletionError")
        if s.scalars(select(Volume.id).where(Volume.volume_type_id == vtype.id)).first() is not None:
            raise BadRequest("Target volume type is still in use.", kind="VolumeTypeInUse")
        s.delete(vtype)
    return Response(status_code=202)


def _set_specs(
    request: Request, vr: VolumeRequest, type_id: str, specs: dict[str, str], key: str | None
) -> JSONResponse:
    with runtime(request).db.session() as s:
        vtype = _get(s, vr, type_id)
        vtype.extra_specs = {**(vtype.extra_specs or {}), **specs}
    return respond(vr, specs if key else {"extra_specs": specs})


@router.get("/types/{type_id}/extra_specs")
def list_specs(type_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    with runtime(request).db.session() as s:
        return respond(vr, {"extra_specs": dict(_get(s, vr, type_id).extra_specs or {})})


@router.post("/types/{type_id}/extra_specs")
async def create_specs(
    type_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    vr.ctx.require_admin(MANAGE)
    body = await json_body(request)
    if not isinstance(body, dict) or "extra_specs" not in body:
        raise BadRequest(
            "Missing required element 'extra_specs' in request body.", kind="MissingRequiredElement"
        )
    return await run_in_threadpool(_set_specs, request, vr, type_id, _specs(body["extra_specs"]), None)


@router.get("/types/{type_id}/extra_specs/{key}")
def show_spec(
    type_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    with runtime(request).db.session() as s:
        specs = dict(_get(s, vr, type_id).extra_specs or {})
    if key not in specs:
        raise NotFound(
            f"Volume Type {type_id} has no extra specs with key {key}.", kind="VolumeTypeExtraSpecsNotFound"
        )
    return respond(vr, {key: specs[key]})


@router.put("/types/{type_id}/extra_specs/{key}")
async def update_spec(
    type_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    vr.ctx.require_admin(MANAGE)
    specs = _specs(await json_body(request))
    if list(specs) != [key]:
        raise BadRequest("Request body and URI mismatch", kind="InvalidInput")
    return await run_in_threadpool(_set_specs, request, vr, type_id, specs, key)


@router.delete("/types/{type_id}/extra_specs/{key}")
def delete_spec(
    type_id: str, key: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    vr.ctx.require_admin(MANAGE)
    with runtime(request).db.session() as s:
        vtype = _get(s, vr, type_id)
        specs = dict(vtype.extra_specs or {})
        if key not in specs:
            raise NotFound(
                f"Volume Type {type_id} has no extra specs with key {key}.",
                kind="VolumeTypeExtraSpecsNotFound",
            )
        del specs[key]
        vtype.extra_specs = specs
    return Response(status_code=202)


@router.get("/types/{type_id}/os-volume-type-access")
def list_access(type_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    vr.ctx.require_admin("volume_extension:volume_type_access")
    with runtime(request).db.session() as s:
        vtype = _get(s, vr, type_id)
        if vtype.is_public:
            raise NotFound(
                "Access list not available for public volume types.", kind="VolumeTypeAccessNotFound"
            )
        rows = s.scalars(select(VolumeTypeAccess).where(VolumeTypeAccess.volume_type_id == vtype.id))
        items = [{"volume_type_id": r.volume_type_id, "project_id": r.project_id} for r in rows]
    return respond(vr, {"volume_type_access": items})


def _access(request: Request, vr: VolumeRequest, type_id: str, action: str, project: str) -> Response:
    with runtime(request).db.session() as s:
        vtype = _get(s, vr, type_id)
        if vtype.is_public:
            raise BadRequest(
                "Invalid volume type: Type access modification is not applicable to public volume type.",
                kind="InvalidVolumeType",
            )
        row = s.get(VolumeTypeAccess, (vtype.id, project))
        if action == "addProjectAccess":
            if row is not None:
                raise Conflict(
                    f"Volume type access for {vtype.id} / {project} combination already exists.",
                    kind="VolumeTypeAccessExists",
                )
            s.add(VolumeTypeAccess(volume_type_id=vtype.id, project_id=project))
        else:
            if row is None:
                raise NotFound(
                    f"Volume type access not found for {vtype.id} / {project} combination.",
                    kind="VolumeTypeAccessNotFound",
                )
            s.delete(row)
    return Response(status_code=202)


@router.post("/types/{type_id}/action")
async def type_action(
    type_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> Response:
    vr.ctx.require_admin("volume_extension:volume_type_access:addProjectAccess")
    body = await json_body(request)
    if (
        not isinstance(body, dict)
        or len(body) != 1
        or next(iter(body)) not in ("addProjectAccess", "removeProjectAccess")
    ):
        raise BadRequest(
            "Invalid request body: addProjectAccess or removeProjectAccess expected.", kind="InvalidInput"
        )
    action, args = next(iter(body.items()))
    project = text("project", args.get("project") if isinstance(args, dict) else None, 64)
    if not project:
        raise BadRequest("Missing required element 'project' in request body.", kind="MissingRequiredElement")
    return await run_in_threadpool(_access, request, vr, type_id, action, project)
