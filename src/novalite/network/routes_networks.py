"""/network/v2.0/networks and /network/v2.0/subnets."""

from __future__ import annotations

from fastapi import APIRouter

from novalite.network import networks
from novalite.network.resource_routes import Resource, add_member_routes
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


add_member_routes(router, "/networks", NETWORK, "network_id")
add_member_routes(router, "/subnets", SUBNET, "subnet_id")
