"""Keystone's catalog APIs under /identity/v3: services, endpoints and regions (reads and writes
by admins), built on ``identity.catalog``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.db.models.catalog import CatalogEndpoint, CatalogService
from novalite.errors import BadRequest, NotFound
from novalite.identity import catalog
from novalite.identity.routes_common import body_object, list_links, v3_base

router = APIRouter()


def _ready(request: Request) -> None:
    rt = runtime(request)
    catalog.ensure_builtin(rt.db, list(rt.catalog), rt.settings.region)


def _service_view(request: Request, svc: CatalogService) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": svc.id,
        "type": svc.type,
        "name": svc.name,
        "enabled": svc.enabled,
        "links": {"self": f"{v3_base(request)}/services/{svc.id}"},
    }
    if svc.description is not None:
        out["description"] = svc.description
    return out


def _endpoint_view(request: Request, ep: CatalogEndpoint) -> dict[str, Any]:
    return {
        "id": ep.id,
        "interface": ep.interface,
        "region": ep.region_id,
        "region_id": ep.region_id,
        "service_id": ep.service_id,
        "url": catalog.endpoint_url(ep, runtime(request).public_url),
        "enabled": ep.enabled,
        "links": {"self": f"{v3_base(request)}/endpoints/{ep.id}"},
    }


# ---- services ----


@router.get("/v3/services")
def list_services(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("identity:list_services")
    _ready(request)
    q = request.query_params
    with runtime(request).db.reader() as s:
        found = list(s.scalars(select(CatalogService).order_by(CatalogService.created_at, CatalogService.id)))
        if "type" in q:
            found = [x for x in found if x.type == q["type"]]
        if "name" in q:
            found = [x for x in found if x.name == q["name"]]
        return {
            "services": [_service_view(request, x) for x in found],
            "links": list_links(request, "services"),
        }


@router.post("/v3/services")
async def create_service(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    ctx.require_admin("identity:create_service")
    fields = catalog.service_fields(body_object(await json_body(request), "service"), create=True)
    _ready(request)
    with runtime(request).db.session() as s:
        svc = catalog.create_service(s, fields)
        return JSONResponse({"service": _service_view(request, svc)}, status_code=201)


@router.get("/v3/services/{service_id}")
def get_service(
    service_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("identity:get_service")
    _ready(request)
    with runtime(request).db.reader() as s:
        return {"service": _service_view(request, catalog.get_service(s, service_id))}


@router.patch("/v3/services/{service_id}")
async def update_service(
    service_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("identity:update_service")
    ref = body_object(await json_body(request), "service")
    if "id" in ref and ref["id"] != service_id:
        raise BadRequest("Cannot change service ID.")
    fields = catalog.service_fields(ref, create=False)
    _ready(request)
    with runtime(request).db.session() as s:
        svc = catalog.get_service(s, service_id)
        catalog.update_service(svc, fields, set(ref))
        s.flush()
        return {"service": _service_view(request, svc)}


@router.delete("/v3/services/{service_id}")
def delete_service(
    service_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    ctx.require_admin("identity:delete_service")
    _ready(request)
    with runtime(request).db.session() as s:
        catalog.delete_service(s, service_id)
    return Response(status_code=204)


# ---- endpoints ----


@router.get("/v3/endpoints")
def list_endpoints(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("identity:list_endpoints")
    _ready(request)
    q = request.query_params
    filters = {k: q[k] for k in ("interface", "service_id", "region_id") if k in q}
    with runtime(request).db.reader() as s:
        found = catalog.list_endpoints(s, filters)
        return {
            "endpoints": [_endpoint_view(request, x) for x in found],
            "links": list_links(request, "endpoints"),
        }


@router.post("/v3/endpoints")
async def create_endpoint(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    ctx.require_admin("identity:create_endpoint")
    ref = body_object(await json_body(request), "endpoint")
    _ready(request)
    with runtime(request).db.session() as s:
        ep = catalog.create_endpoint(s, ref, runtime(request).settings.region)
        return JSONResponse({"endpoint": _endpoint_view(request, ep)}, status_code=201)


@router.get("/v3/endpoints/{endpoint_id}")
def get_endpoint(
    endpoint_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("identity:get_endpoint")
    _ready(request)
    with runtime(request).db.reader() as s:
        return {"endpoint": _endpoint_view(request, catalog.get_endpoint(s, endpoint_id))}


@router.patch("/v3/endpoints/{endpoint_id}")
async def update_endpoint(
    endpoint_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("identity:update_endpoint")
    ref = body_object(await json_body(request), "endpoint")
    if "id" in ref and ref["id"] != endpoint_id:
        raise BadRequest("Cannot change endpoint ID.")
    _ready(request)
    with runtime(request).db.session() as s:
        ep = catalog.get_endpoint(s, endpoint_id)
        catalog.update_endpoint(s, ep, ref)
        s.flush()
        return {"endpoint": _endpoint_view(request, ep)}


@router.delete("/v3/endpoints/{endpoint_id}")
def delete_endpoint(
    endpoint_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    ctx.require_admin("identity:delete_endpoint")
    _ready(request)
    with runtime(request).db.session() as s:
        s.delete(catalog.get_endpoint(s, endpoint_id))
    return Response(status_code=204)


# ---- regions (the names endpoints use) ----


def _region_view(request: Request, region_id: str) -> dict[str, Any]:
    return {
        "id": region_id,
        "description": "",
        "parent_region_id": None,
        "links": {"self": f"{v3_base(request)}/regions/{region_id}"},
    }


@router.get("/v3/regions")
def list_regions(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    _ready(request)
    with runtime(request).db.reader() as s:
        ids = catalog.region_ids(s, runtime(request).settings.region)
    return {"regions": [_region_view(request, r) for r in ids], "links": list_links(request, "regions")}


@router.get("/v3/regions/{region_id}")
def get_region(
    region_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _ready(request)
    with runtime(request).db.reader() as s:
        ids = catalog.region_ids(s, runtime(request).settings.region)
    if region_id not in ids:
        raise NotFound(f"Could not find region: {region_id}.")
    return {"region": _region_view(request, region_id)}
