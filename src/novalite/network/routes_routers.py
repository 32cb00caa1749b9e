"""/network/v2.0/routers, their interfaces (add_router_interface, remove_router_interface),
and /network/v2.0/availability_zones."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.domain.zones import DEFAULT_ZONE
from novalite.network import routers
from novalite.network.listing import list_response
from novalite.network.resource_routes import Resource, add_member_routes
from novalite.network.views import router_view

router = APIRouter(prefix="/network/v2.0")


ROUTER = Resource(
    member="router",
    collection="routers",
    visible=routers.visible_routers,
    get=routers.get_router,
    view=lambda s, ctx, row, rel: router_view(s, row, rel),
    not_found=routers.router_not_found,
    create=routers.create_router,
    update=routers.update_router,
    delete=routers.delete_router,
)


add_member_routes(router, "/routers", ROUTER, "router_id")


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
