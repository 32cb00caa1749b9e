"""Routers: create/update/delete, the external gateway and the interfaces, with Neutron's checks
and messages (neutron/db/l3_db.py).

A router's interfaces and its gateway are ports whose ``device_id`` is the router: an interface
is ``network:router_interface`` and owned by the router's project; the gateway is
``network:router_gateway`` on an external network and owned by no project, as in Neutron.
There is no data plane: the rows are what the API answers and what floating IPs are checked
against (a floating IP reaches a subnet through a router with an interface on it and its
gateway on the floating IP's network).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.network import FloatingIP, Port, PortIP, Router, Subnet
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.network import extra_routes, networks, ports, quotas, tags
from novalite.network.networks import policy_denied

INTERFACE = "network:router_interface"
GATEWAY = "network:router_gateway"


def router_not_found(router_id: str) -> NotFound:
    return NotFound(f"Router {router_id} could not be found", kind="RouterNotFound")


def bad_request(msg: str) -> BadRequest:
    return BadRequest(f"Bad router request: {msg}.", kind="BadRequest")


def visible_routers(s: Session, ctx: RequestContext) -> list[Router]:
    q = select(Router).order_by(Router.created_at, Router.id)
    if not ctx.is_admin:
        q = q.where(Router.project_id == ctx.project_id)
    return list(s.scalars(q))


def get_router(s: Session, ctx: RequestContext, router_id: str) -> Router:
    router = s.get(Router, router_id) if len(router_id) <= 36 else None
    if router is None or not ctx.can_access_project(router.project_id):
        raise router_not_found(router_id)
    return router


def router_ports(s: Session, router_id: str, owner: str = INTERFACE) -> list[Port]:
    q = select(Port).where(Port.device_id == router_id, Port.device_owner == owner)
    return list(s.scalars(q.order_by(Port.created_at, Port.id)))


def _service_context() -> RequestContext:
    """The L3 service's own identity: its gateway and floating ports belong to no project."""
    return RequestContext.system()


# -- the external gateway -------------------------------------------------------------------------


def _check_gateway_admin_only(ctx: RequestContext, info: dict[str, Any], action: str) -> None:
    """``enable_snat`` and ``external_fixed_ips`` of the gateway are admin-only in Neutron."""
    for key in ("enable_snat", "external_fixed_ips"):
        if key in info and not ctx.is_admin:
            raise policy_denied(
                f"rule:{action}_router and rule:{action}_router:external_gateway_info and "
                f"rule:{action}_router:external_gateway_info:{key}"
            )


def _drop_gateway_port(s: Session, router: Router) -> None:
    for port in router_ports(s, router.id, GATEWAY):
        tags.clear(s, port.id)
        s.delete(port)
    router.gw_port_id = router.gw_network_id = None
    s.flush()


def _gateway_in_use(s: Session, router: Router) -> None:
    q = select(FloatingIP.id).where(FloatingIP.router_id == router.id)
    if router.gw_network_id and s.scalars(q).first() is not None:
        raise Conflict(
            f"Gateway cannot be updated for router {router.id}, since a gateway to external network "
            f"{router.gw_network_id} is required by one or more floating IPs.",
            kind="RouterExternalGatewayInUseByFloatingIp",
        )


def set_gateway(s: Session, ctx: RequestContext, router: Router, info: dict[str, Any] | None) -> None:
    """Set, change or (``info`` None or empty) clear the router's external gateway."""
    network_id = (info or {}).get("network_id")
    if not network_id:
        if router.gw_network_id:
            _gateway_in_use(s, router)
            _drop_gateway_port(s, router)
        return
    assert info is not None
    net = networks.get_network(s, ctx, network_id)
    if not net.router_external:
        raise bad_request(f"Network {net.id} is not an external network")
    for subnet in networks.network_subnets(s, net.id):
        _check_no_overlap(s, router, subnet, gateway=True)
    if "enable_snat" in info:
        router.enable_snat = bool(info["enable_snat"])
    fixed = info.get("external_fixed_ips")
    if router.gw_network_id == net.id and not fixed:
        return
    if router.gw_network_id:
        if router.gw_network_id != net.id:
            _gateway_in_use(s, router)
        _drop_gateway_port(s, router)
    fields: dict[str, Any] = {"network_id": net.id, "device_id": router.id, "device_owner": GATEWAY}
    if fixed:
        fields["fixed_ips"] = fixed
    port = ports.create_port(s, _service_context(), fields)
    port.status = "ACTIVE"
    router.gw_network_id, router.gw_port_id = net.id, port.id
    s.flush()


def gateway_info(s: Session, router: Router) -> dict[str, Any] | None:
    if not router.gw_network_id:
        return None
    fixed = [
        {"subnet_id": ip.subnet_id, "ip_address": ip.ip_address}
        for ip in (ports.port_ips(s, router.gw_port_id) if router.gw_port_id else [])
    ]
    return {
        "network_id": router.gw_network_id,
        "enable_snat": router.enable_snat,
        "external_fixed_ips": fixed,
    }


# -- create / update / delete ---------------------------------------------------------------------


def create_router(s: Session, ctx: RequestContext, fields: dict[str, Any]) -> Router:
    project_id = fields.get("project_id") or ctx.project_id
    networks.require_owner(ctx, project_id, "rule:create_router")
    if "routes" in fields:  # extraroute: routes are set by an update only
        raise BadRequest("Attribute 'routes' not allowed in POST", kind="HTTPBadRequest")
    gateway = fields.get("external_gateway_info")
    if gateway:
        _check_gateway_admin_only(ctx, gateway, "create")
    quotas.check(s, project_id, "router")
    router = Router(
        name=fields.get("name") or "",
        description=fields.get("description") or "",
        project_id=project_id,
        admin_state_up=fields.get("admin_state_up", True),
        enable_snat=True,
    )
    s.add(router)
    s.flush()
    if gateway:
        set_gateway(s, ctx, router, gateway)
    return router


def update_router(s: Session, ctx: RequestContext, router: Router, changes: dict[str, Any]) -> None:
    networks.require_owner(ctx, router.project_id, "rule:update_router")
    for key in ("name", "description", "admin_state_up"):
        if key in changes and changes[key] is not None:
            setattr(router, key, changes[key])
    if "external_gateway_info" in changes:
        gateway = changes["external_gateway_info"]
        if gateway:
            _check_gateway_admin_only(ctx, gateway, "update")
        set_gateway(s, ctx, router, gateway)
    if "routes" in changes:
        own = router_ports(s, router.id) + router_ports(s, router.id, GATEWAY)
        router.routes = extra_routes.checked(s, router, changes["routes"] or [], own)
    router.revision_number += 1
    s.flush()


def delete_router(s: Session, ctx: RequestContext, router: Router) -> None:
    networks.require_owner(ctx, router.project_id, "rule:delete_router")
    if router_ports(s, router.id):
        raise Conflict(f"Router {router.id} still has ports", kind="RouterInUse")
    _gateway_in_use(s, router)
    _drop_gateway_port(s, router)
    tags.clear(s, router.id)
    s.delete(router)
    s.flush()


# -- interfaces -----------------------------------------------------------------------------------


def _interface_subnets(s: Session, router_id: str) -> list[Subnet]:
    q = (
        select(Subnet)
        .join(PortIP, PortIP.subnet_id == Subnet.id)
        .join(Port, Port.id == PortIP.port_id)
        .where(Port.device_id == router_id, Port.device_owner == INTERFACE)
    )
    return list(s.scalars(q))


def _check_no_overlap(s: Session, router: Router, subnet: Subnet, *, gateway: bool = False) -> None:
    """Neutron refuses an interface whose subnet overlaps one the router is already on."""
    new = ipaddress.ip_network(subnet.cidr)
    for other in _interface_subnets(s, router.id):
        if gateway and other.id == subnet.id:
            continue
        if ipaddress.ip_network(other.cidr).overlaps(new):  # type: ignore[arg-type]
            raise bad_request(
                f"Cidr {subnet.cidr} of subnet {subnet.id} overlaps with cidr {other.cidr} "
                f"of subnet {other.id}"
            )


def _interface_answer(router: Router, port: Port, subnet_ids: list[str]) -> dict[str, Any]:
    return {
        "id": router.id,
        "tenant_id": router.project_id,
        "project_id": router.project_id,
        "port_id": port.id,
        "network_id": port.network_id,
        "subnet_id": subnet_ids[0] if subnet_ids else None,
        "subnet_ids": subnet_ids,
    }


def _interface_info(body: Any, action: str) -> tuple[str | None, str | None]:
    if not isinstance(body, dict) or not body:
        raise bad_request("Either subnet_id or port_id must be specified")
    unknown = sorted(set(body) - {"subnet_id", "port_id"})
    if unknown:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'", kind="HTTPBadRequest")
    subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
    for value in (subnet_id, port_id):
        if value is not None and not isinstance(value, str):
            raise BadRequest(
                f"Invalid input for operation: '{value}' is not a valid UUID.", kind="InvalidInput"
            )
    if not subnet_id and not port_id:
        raise bad_request("Either subnet_id or port_id must be specified")
    if subnet_id and port_id and action == "add":
        raise bad_request("Cannot specify both subnet-id and port-id")
    return subnet_id, port_id


def add_interface(s: Session, ctx: RequestContext, router: Router, body: Any) -> dict[str, Any]:
    networks.require_owner(ctx, router.project_id, "rule:add_router_interface")
    subnet_id, port_id = _interface_info(body, "add")
    if port_id:
        port = ports.get_port(s, ctx, port_id)
        if port.device_id:
            raise Conflict(
                f"Unable to complete operation on port {port.id} for network {port.network_id}. "
                f"Port already has an attached device {port.device_id}.",
                kind="PortInUse",
            )
        ips = ports.port_ips(s, port.id)
        if not ips:
            raise bad_request("Router port must have at least one fixed IP")
        for ip in ips:
            subnet = s.get(Subnet, ip.subnet_id)
            if subnet is not None:
                _check_no_overlap(s, router, subnet)
        port.device_id, port.device_owner, port.status = router.id, INTERFACE, "ACTIVE"
        port.revision_number += 1
        s.flush()
        return _interface_answer(router, port, [ip.subnet_id for ip in ips])
    assert subnet_id is not None
    subnet = networks.get_subnet(s, ctx, subnet_id)
    if not subnet.gateway_ip:
        raise bad_request("Subnet for router interface must have a gateway IP")
    _check_no_overlap(s, router, subnet)
    fields = {
        "network_id": subnet.network_id,
        "project_id": router.project_id,
        "fixed_ips": [{"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}],
        "device_id": router.id,
        "device_owner": INTERFACE,
    }
    port = ports.create_port(
        s, RequestContext(user_id="neutron", project_id=router.project_id, roles=("admin",)), fields
    )
    port.status = "ACTIVE"
    s.flush()
    return _interface_answer(router, port, [subnet.id])


def _fips_through(s: Session, router: Router, subnet: Subnet) -> bool:
    cidr = ipaddress.ip_network(subnet.cidr)
    q = select(FloatingIP).where(FloatingIP.router_id == router.id)
    return any(
        fip.fixed_ip_address and ipaddress.ip_address(fip.fixed_ip_address) in cidr for fip in s.scalars(q)
    )


def _in_use_by_fips(s: Session, router: Router, subnet: Subnet) -> None:
    if _fips_through(s, router, subnet):
        raise Conflict(
            f"Router interface for subnet {subnet.id} on router {router.id} cannot be deleted, as it is "
            "required by one or more floating IPs.",
            kind="RouterInterfaceInUseByFloatingIP",
        )


def remove_interface(s: Session, ctx: RequestContext, router: Router, body: Any) -> dict[str, Any]:
    networks.require_owner(ctx, router.project_id, "rule:remove_router_interface")
    subnet_id, port_id = _interface_info(body, "remove")
    if port_id:
        port = s.get(Port, port_id) if len(port_id) <= 36 else None
        if port is None or port.device_id != router.id or port.device_owner != INTERFACE:
            raise NotFound(
                f"Router {router.id} does not have an interface with id {port_id}",
                kind="RouterInterfaceNotFound",
            )
        ips = ports.port_ips(s, port.id)
        if subnet_id and subnet_id not in [ip.subnet_id for ip in ips]:
            raise BadRequest(
                f"Subnet on port {port_id} does not match the requested subnet {subnet_id}.",
                kind="SubnetMismatchForPort",
            )
    else:
        assert subnet_id is not None
        found = [
            p
            for p in router_ports(s, router.id)
            if subnet_id in [ip.subnet_id for ip in ports.port_ips(s, p.id)]
        ]
        if not found:
            networks.get_subnet(s, ctx, subnet_id)
            raise NotFound(
                f"Router {router.id} has no interface on subnet {subnet_id}",
                kind="RouterInterfaceNotFoundForSubnet",
            )
        port = found[0]
        ips = ports.port_ips(s, port.id)
    subnet_ids = [ip.subnet_id for ip in ips]
    for sid in subnet_ids:
        subnet = s.get(Subnet, sid)
        if subnet is not None:
            _in_use_by_fips(s, router, subnet)
            extra_routes.check_not_needed(router, subnet)
    answer = _interface_answer(router, port, subnet_ids)
    tags.clear(s, port.id)
    s.delete(port)
    s.flush()
    return answer


def router_for(s: Session, subnet_id: str, external_network_id: str) -> Router | None:
    """A router joining ``subnet_id`` to ``external_network_id`` (interface + gateway), if any."""
    q = (
        select(Router)
        .join(Port, Port.device_id == Router.id)
        .join(PortIP, PortIP.port_id == Port.id)
        .where(
            Port.device_owner == INTERFACE,
            PortIP.subnet_id == subnet_id,
            Router.gw_network_id == external_network_id,
        )
        .order_by(Router.created_at, Router.id)
    )
    return s.scalars(q).first()
