"""/network/v2.0/floatingips and /network/v2.0/floatingip_pools."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.network import floating_ips
from novalite.network.attributes import check_body, check_create
from novalite.network.bulk import create_response
from novalite.network.listing import fields_of, list_response
from novalite.network.views import floating_ip_view, load_related

router = APIRouter(prefix="/network/v2.0")


@router.get("/floatingips")
def list_floating_ips(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        found = floating_ips.visible_floating_ips(s, ctx)
        rel = load_related(s, [f.id for f in found])
        items = [floating_ip_view(s, f, rel) for f in found]
    return list_response(request, "floatingips", items, not_found=floating_ips.floating_ip_not_found)


@router.get("/floatingips/{floatingip_id}")
def show_floating_ip(
    floatingip_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        fip = floating_ips.get_floating_ip(s, ctx, floatingip_id)
        return {"floatingip": fields_of(request, floating_ip_view(s, fip))}


@router.post("/floatingips")
async def create_floating_ip(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> JSONResponse:
    items, bulk = check_create("floatingip", await json_body(request))
    return await run_in_threadpool(
        create_response,
        request,
        ctx,
        items,
        bulk,
        member="floatingip",
        create=lambda s, fields: floating_ips.create_floating_ip(s, ctx, fields),
        view=floating_ip_view,
    )


def _update(request: Request, ctx: RequestContext, fip_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        fip = floating_ips.get_floating_ip(s, ctx, fip_id)
        floating_ips.update_floating_ip(s, ctx, fip, changes)
        return {"floatingip": floating_ip_view(s, fip)}


@router.put("/floatingips/{floatingip_id}")
async def update_floating_ip(
    floatingip_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    changes = check_body("floatingip", await json_body(request), update=True)
    return await run_in_threadpool(_update, request, ctx, floatingip_id, changes)


@router.delete("/floatingips/{floatingip_id}", status_code=204)
def delete_floating_ip(
    floatingip_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        floating_ips.delete_floating_ip(s, ctx, floating_ips.get_floating_ip(s, ctx, floatingip_id))
    return Response(status_code=204)


@router.get("/floatingip_pools")
def list_floating_ip_pools(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        items = floating_ips.pools(s, ctx)
    return list_response(request, "floatingip_pools", items)
