"""/network/v2.0/ports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.network import ports
from novalite.network.attributes import check_body, check_create
from novalite.network.bulk import create_response
from novalite.network.listing import fields_of, list_response
from novalite.network.views import load_related, port_view

router = APIRouter(prefix="/network/v2.0")


@router.get("/ports")
def list_ports(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        found = ports.visible_ports(s, ctx)
        rel = load_related(s, [p.id for p in found], kind="port")
        items = [port_view(s, p, rel) for p in found]
    return list_response(request, "ports", items, not_found=ports.port_not_found)


@router.get("/ports/{port_id}")
def show_port(
    port_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"port": fields_of(request, port_view(s, ports.get_port(s, ctx, port_id)))}


@router.post("/ports")
async def create_port(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    items, bulk = check_create("port", await json_body(request))
    return await run_in_threadpool(
        create_response,
        request,
        ctx,
        items,
        bulk,
        member="port",
        create=lambda s, fields: ports.create_port(s, ctx, fields),
        view=port_view,
    )


def _update_port(
    request: Request, ctx: RequestContext, port_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        port = ports.get_port(s, ctx, port_id)
        ports.update_port(s, ctx, port, changes)
        return {"port": port_view(s, port)}


@router.put("/ports/{port_id}")
async def update_port(
    port_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    changes = check_body("port", await json_body(request), update=True)
    return await run_in_threadpool(_update_port, request, ctx, port_id, changes)


@router.delete("/ports/{port_id}", status_code=204)
def delete_port(port_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    with runtime(request).db.session() as s:
        ports.delete_port(s, ctx, ports.get_port(s, ctx, port_id))
    return Response(status_code=204)
