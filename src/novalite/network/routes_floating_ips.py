"""/network/v2.0/floatingips and /network/v2.0/floatingip_pools."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from novalite.api.common import request_context, runtime
from novalite.context import RequestContext
from novalite.network import floating_ips
from novalite.network.listing import list_response
from novalite.network.resource_routes import Resource, add_member_routes
from novalite.network.views import floating_ip_view

router = APIRouter(prefix="/network/v2.0")


FLOATING_IP = Resource(
    member="floatingip",
    collection="floatingips",
    visible=floating_ips.visible_floating_ips,
    get=floating_ips.get_floating_ip,
    view=lambda s, ctx, row, rel: floating_ip_view(s, row, rel),
    not_found=floating_ips.floating_ip_not_found,
    create=floating_ips.create_floating_ip,
    update=floating_ips.update_floating_ip,
    delete=floating_ips.delete_floating_ip,
)


add_member_routes(router, "/floatingips", FLOATING_IP, "floatingip_id")


@router.get("/floatingip_pools")
def list_floating_ip_pools(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        items = floating_ips.pools(s, ctx)
    return list_response(request, "floatingip_pools", items)
