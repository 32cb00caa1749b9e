"""/network/v2.0/networks and /network/v2.0/subnets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.network import networks
from novalite.network.attributes import check_body, check_create
from novalite.network.bulk import create_response
from novalite.network.listing import fields_of, list_response
from novalite.network.views import load_related, network_view, subnet_view

router = APIRouter(prefix="/network/v2.0")


@router.get("/networks")
def list_networks(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        found = networks.visible_networks(s, ctx)
        rel = load_related(s, [n.id for n in found], kind="network")
        items = [network_view(s, n, rel, admin=ctx.is_admin) for n in found]
    return list_response(request, "networks", items, not_found=networks.network_not_found)


@router.get("/networks/{network_id}")
def show_network(
    network_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        net = networks.get_network(s, ctx, network_id)
        return {"network": fields_of(request, network_view(s, net, admin=ctx.is_admin))}


@router.post("/networks")
async def create_network(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    items, bulk = check_create("network", await json_body(request))
    return await run_in_threadpool(
        create_response,
        request,
        ctx,
        items,
        bulk,
        member="network",
        create=lambda s, fields: networks.create_network(s, ctx, fields),
        view=lambda s, net: network_view(s, net, admin=ctx.is_admin),
    )


def _update_network(
    request: Request, ctx: RequestContext, network_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        net = networks.get_network(s, ctx, network_id)
        networks.update_network(s, ctx, net, changes)
        s.flush()
        return {"network": network_view(s, net, admin=ctx.is_admin)}


@router.put("/networks/{network_id}")
async def update_network(
    network_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    changes = check_body("network", await json_body(request), update=True)
    return await run_in_threadpool(_update_network, request, ctx, network_id, changes)


@router.delete("/networks/{network_id}", status_code=204)
def delete_network(
    network_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        networks.delete_network(s, ctx, networks.get_network(s, ctx, network_id))
    return Response(status_code=204)


@router.get("/subnets")
def list_subnets(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        found = networks.visible_subnets(s, ctx)
        rel = load_related(s, [sub.id for sub in found])
        items = [subnet_view(s, sub, rel) for sub in found]
    return list_response(request, "subnets", items, not_found=networks.subnet_not_found)


@router.get("/subnets/{subnet_id}")
def show_subnet(
    subnet_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"subnet": fields_of(request, subnet_view(s, networks.get_subnet(s, ctx, subnet_id)))}


@router.post("/subnets")
async def create_subnet(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    items, bulk = check_create("subnet", await json_body(request))
    return await run_in_threadpool(
        create_response,
        request,
        ctx,
        items,
        bulk,
        member="subnet",
        create=lambda s, fields: networks.create_subnet(s, ctx, fields),
        view=subnet_view,
    )


def _update_subnet(
    request: Request, ctx: RequestContext, subnet_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        subnet = networks.get_subnet(s, ctx, subnet_id)
        networks.update_subnet(s, ctx, subnet, changes)
        s.flush()
        return {"subnet": subnet_view(s, subnet)}


@router.put("/subnets/{subnet_id}")
async def update_subnet(
    subnet_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    changes = check_body("subnet", await json_body(request), update=True)
    return await run_in_threadpool(_update_subnet, request, ctx, subnet_id, changes)


@router.delete("/subnets/{subnet_id}", status_code=204)
def delete_subnet(
    subnet_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        networks.delete_subnet(s, ctx, networks.get_subnet(s, ctx, subnet_id))
    return Response(status_code=204)
