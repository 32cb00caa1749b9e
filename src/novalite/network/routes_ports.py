"""/network/v2.0/ports."""

from __future__ import annotations

from fastapi import APIRouter

from novalite.network import ports
from novalite.network.resource_routes import Resource, add_member_routes
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


add_member_routes(router, "/ports", PORT, "port_id")
