"""/network/v2.0/ports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from novalite.api.common import request_context
from novalite.context import RequestContext
from novalite.network import ports
from novalite.network.resource_routes import (
    Resource,
    create_members,
    delete_member,
    list_members,
    show_member,
    update_member,
)
from novalite.network.views import port_view

router = APIRouter(prefix="/network/v2.0")


PORT = Resource(
    member="port",
    collection="ports",
    visible=ports.visible_ports,
    get=ports.get_port,
    view=lambda s, ctx, row, rel: port_view(s, row, rel),
    not_found=ports.port_not_found,
    create=ports.create_port,
    update=ports.update_port,
    delete=ports.delete_port,
    related_kind="port",
)


@router.get("/ports")
def list_ports(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return list_members(request, ctx, PORT)


@router.get("/ports/{port_id}")
def show_port(
    port_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return show_member(request, ctx, PORT, port_id)


@router.post("/ports")
async def create_port(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    return await create_members(request, ctx, PORT)


@router.put("/ports/{port_id}")
async def update_port(
    port_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return await update_member(request, ctx, PORT, port_id)


@router.delete("/ports/{port_id}", status_code=204)
def delete_port(port_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    return delete_member(request, ctx, PORT, port_id)
