"""/network/v2.0/networks and /network/v2.0/subnets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from novalite.api.common import request_context
from novalite.context import RequestContext
from novalite.network import networks
from novalite.network.resource_routes import (
    Resource,
    create_members,
    delete_member,
    list_members,
    show_member,
    update_member,
)
from novalite.network.views import network_view, subnet_view

router = APIRouter(prefix="/network/v2.0")

NETWORK = Resource(
    member="network",
    collection="networks",
    visible=networks.visible_networks,
    get=networks.get_network,
    view=lambda s, ctx, net, rel: network_view(s, net, rel, admin=ctx.is_admin),
    not_found=networks.network_not_found,
    create=networks.create_network,
    update=networks.update_network,
    delete=networks.delete_network,
    related_kind="network",
)
SUBNET = Resource(
    member="subnet",
    collection="subnets",
    visible=networks.visible_subnets,
    get=networks.get_subnet,
    view=lambda s, ctx, subnet, rel: subnet_view(s, subnet, rel),
    not_found=networks.subnet_not_found,
    create=networks.create_subnet,
    update=networks.update_subnet,
    delete=networks.delete_subnet,
)


@router.get("/networks")
def list_networks(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return list_members(request, ctx, NETWORK)


@router.get("/networks/{network_id}")
def show_network(
    network_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return show_member(request, ctx, NETWORK, network_id)


@router.post("/networks")
async def create_network(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    return await create_members(request, ctx, NETWORK)


@router.put("/networks/{network_id}")
async def update_network(
    network_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return await update_member(request, ctx, NETWORK, network_id)


@router.delete("/networks/{network_id}", status_code=204)
def delete_network(
    network_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    return delete_member(request, ctx, NETWORK, network_id)


@router.get("/subnets")
def list_subnets(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return list_members(request, ctx, SUBNET)


@router.get("/subnets/{subnet_id}")
def show_subnet(
    subnet_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return show_member(request, ctx, SUBNET, subnet_id)


@router.post("/subnets")
async def create_subnet(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    return await create_members(request, ctx, SUBNET)


@router.put("/subnets/{subnet_id}")
async def update_subnet(
    subnet_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return await update_member(request, ctx, SUBNET, subnet_id)


@router.delete("/subnets/{subnet_id}", status_code=204)
def delete_subnet(
    subnet_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    return delete_member(request, ctx, SUBNET, subnet_id)
