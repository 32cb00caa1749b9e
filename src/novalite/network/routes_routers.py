"""/network/v2.0/routers, their interfaces (add_router_interface, remove_router_interface),
and /network/v2.0/availability_zones."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.domain.zones import DEFAULT_ZONE
from novalite.errors import NotFound
from novalite.network import routers
from novalite.network.attributes import check_body, check_create
from novalite.network.bulk import create_response
from novalite.network.listing import fields_of, list_response
from novalite.network.views import load_related, router_view

router = APIRouter(prefix="/network/v2.0")


def _not_found(marker: str) -> NotFound:
    return routers.router_not_found(marker)


@router.get("/routers")
def list_routers(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        found = routers.visible_routers(s, ctx)
        rel = load_related(s, [r.id for r in found])
        items = [router_view(s, r, rel) for r in found]
    return list_response(request, "routers", items, not_found=_not_found)


@router.get("/routers/{router_id}")
def show_router(
    router_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"router": fields_of(request, router_view(s, routers.get_router(s, ctx, router_id)))}


@router.post("/routers")
async def create_router(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    items, bulk = check_create("router", await json_body(request))
    return await run_in_threadpool(
        create_response,
        request,
        ctx,
        items,
        bulk,
        member="router",
        create=lambda s, fields: routers.create_router(s, ctx, fields),
        view=router_view,
    )


def _update(request: Request, ctx: RequestContext, router_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        row = routers.get_router(s, ctx, router_id)
        routers.update_router(s, ctx, row, changes)
        return {"router": router_view(s, row)}


@router.put("/routers/{router_id}")
async def update_router(
    router_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    changes = check_body("router", await json_body(request), update=True)
    return await run_in_threadpool(_update, request, ctx, router_id, changes)


@router.delete("/routers/{router_id}", status_code=204)
def delete_router(
    router_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        routers.delete_router(s, ctx, routers.get_router(s, ctx, router_id))
    return Response(status_code=204)


def _interface(
    request: Request, ctx: RequestContext, router_id: str, body: Any, *, add: bool
) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        row = routers.get_router(s, ctx, router_id)
        change = routers.add_interface if add else routers.remove_interface
        return change(s, ctx, row, body)


@router.put("/routers/{router_id}/add_router_interface")
async def add_router_interface(
    router_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(_interface, request, ctx, router_id, body, add=True)


@router.put("/routers/{router_id}/remove_router_interface")
async def remove_router_interface(
    router_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(_interface, request, ctx, router_id, body, add=False)


@router.get("/availability_zones")
def list_availability_zones(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    """The availability_zone extension: the one zone networks and routers are in."""
    items = [
        {"name": DEFAULT_ZONE, "resource": resource, "state": "available"}
        for resource in ("network", "router")
    ]
    return list_response(request, "availability_zones", items)
