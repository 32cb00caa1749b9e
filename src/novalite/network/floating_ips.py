"""Floating IPs: allocate from an external network, map to a port's fixed IP, unmap, release;
Neutron's checks and messages (neutron/db/l3_db.py).

The address is held by a ``network:floatingip`` port on the external network (no project, as
in Neutron), so two floating IPs can never share an address. A mapping needs a router that
joins the fixed IP's subnet to the floating IP's network (``routers.router_for``); the
floating IP is ACTIVE while mapped and DOWN otherwise (there is no agent to wait for).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.network import FloatingIP, Network, Port
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.network import networks, ports, quotas, routers, tags
from novalite.network.networks import policy_denied

OWNER = "network:floatingip"


def floating_ip_not_found(fip_id: str) -> NotFound:
    return NotFound(f"Floating IP {fip_id} could not be found", kind="FloatingIPNotFound")


def bad_request(msg: str) -> BadRequest:
    return BadRequest(f"Bad floatingip request: {msg}.", kind="BadRequest")


def visible_floating_ips(s: Session, ctx: RequestContext) -> list[FloatingIP]:
    q = select(FloatingIP).order_by(FloatingIP.created_at, FloatingIP.id)
    if not ctx.is_admin:
        q = q.where(FloatingIP.project_id == ctx.project_id)
    return list(s.scalars(q))


def get_floating_ip(s: Session, ctx: RequestContext, fip_id: str) -> FloatingIP:
    fip = s.get(FloatingIP, fip_id) if len(fip_id) <= 36 else None
    if fip is None or not ctx.can_access_project(fip.project_id):
        raise floating_ip_not_found(fip_id)
    return fip


def _fixed_address(s: Session, port: Port, wanted: str | None) -> tuple[str, str]:
    """The (subnet id, address) of the port's fixed IPv4 address to map, as Neutron picks it."""
    ips = ports.port_ips(s, port.id)
    if wanted is not None:
        for ip in ips:
            if ip.ip_address == wanted:
                return ip.subnet_id, ip.ip_address
        raise bad_request(f"Port {port.id} does not have fixed ip {wanted}")
    v4 = [ip for ip in ips if ipaddress.ip_address(ip.ip_address).version == 4]
    if not v4:
        raise bad_request(f"Cannot add floating IP to port {port.id} that has no fixed IPv4 addresses")
    if len(v4) > 1:
        raise bad_request(
            f"Port {port.id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address "
            "when assigning a floating IP"
        )
    return v4[0].subnet_id, v4[0].ip_address


def associate(
    s: Session, ctx: RequestContext, fip: FloatingIP, port_id: str, fixed_ip: str | None = None
) -> None:
    """Map ``fip`` to ``port_id`` (the port must be reachable from the floating network)."""
    port = ports.get_port(s, ctx, port_id)
    if not ctx.is_admin and port.project_id != fip.project_id:
        raise ports.port_not_found(port_id)
    if port.device_owner.startswith("network:"):
        raise bad_request(
            f"Port {port.id} has owner {port.device_owner} and therefore cannot have a floating IP"
        )
    subnet_id, address = _fixed_address(s, port, fixed_ip)
    taken = s.scalars(
        select(FloatingIP).where(
            FloatingIP.fixed_port_id == port.id,
            FloatingIP.fixed_ip_address == address,
            FloatingIP.floating_network_id == fip.floating_network_id,
            FloatingIP.id != fip.id,
        )
    ).first()
    if taken is not None:
        raise Conflict(
            f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port {port.id} using "
            f"fixed IP {address}, as that fixed IP already has a floating IP on external network "
            f"{fip.floating_network_id}.",
            kind="FloatingIPPortAlreadyAssociated",
        )
    router = routers.router_for(s, subnet_id, fip.floating_network_id)
    if router is None:
        raise NotFound(
            f"External network {fip.floating_network_id} is not reachable from subnet {subnet_id}.  "
            f"Therefore, cannot associate Port {port.id} with a Floating IP.",
            kind="ExternalGatewayForFloatingIPNotFound",
        )
    fip.fixed_port_id, fip.fixed_ip_address, fip.router_id, fip.status = port.id, address, router.id, "ACTIVE"


def disassociate(fip: FloatingIP) -> None:
    fip.fixed_port_id = fip.fixed_ip_address = fip.router_id = None
    fip.status = "DOWN"


def create_floating_ip(s: Session, ctx: RequestContext, fields: dict[str, Any]) -> FloatingIP:
    project_id = fields.get("project_id") or ctx.project_id
    networks.require_owner(ctx, project_id, "rule:create_floatingip")
    if fields.get("floating_ip_address") and not ctx.is_admin:
        raise policy_denied("rule:create_floatingip and rule:create_floatingip:floating_ip_address")
    net = networks.get_network(s, ctx, fields["floating_network_id"])
    if not net.router_external:
        raise bad_request(f"Network {net.id} is not a valid external network")
    quotas.check(s, project_id, "floatingip")
    fip = FloatingIP(
        project_id=project_id,
        floating_network_id=net.id,
        floating_ip_address="",
        floating_port_id="",
        description=fields.get("description") or "",
        status="DOWN",
    )
    s.add(fip)
    s.flush()
    port_fields: dict[str, Any] = {"network_id": net.id, "device_id": fip.id, "device_owner": OWNER}
    wanted = {k: fields[k] for k in ("subnet_id",) if fields.get(k)}
    if fields.get("floating_ip_address"):
        wanted["ip_address"] = fields["floating_ip_address"]
    if wanted:
        port_fields["fixed_ips"] = [wanted]
    port = ports.create_port(s, RequestContext.system(), port_fields)
    v4 = [ip for ip in ports.port_ips(s, port.id) if ipaddress.ip_address(ip.ip_address).version == 4]
    if not v4:
        raise bad_request(f"Network {net.id} does not contain any IPv4 subnet")
    fip.floating_port_id, fip.floating_ip_address = port.id, v4[0].ip_address
    port.status = "N/A"
    if fields.get("port_id"):
        associate(s, ctx, fip, fields["port_id"], fields.get("fixed_ip_address"))
    s.flush()
    return fip


def update_floating_ip(s: Session, ctx: RequestContext, fip: FloatingIP, changes: dict[str, Any]) -> None:
    networks.require_owner(ctx, fip.project_id, "rule:update_floatingip")
    if "description" in changes and changes["description"] is not None:
        fip.description = changes["description"]
    if "port_id" in changes:
        if changes["port_id"]:
            associate(s, ctx, fip, changes["port_id"], changes.get("fixed_ip_address"))
        else:
            disassociate(fip)
    elif changes.get("fixed_ip_address"):
        if not fip.fixed_port_id:
            raise bad_request("fixed_ip_address cannot be specified without a port_id")
        associate(s, ctx, fip, fip.fixed_port_id, changes["fixed_ip_address"])
    fip.revision_number += 1
    s.flush()


def delete_floating_ip(s: Session, ctx: RequestContext, fip: FloatingIP) -> None:
    networks.require_owner(ctx, fip.project_id, "rule:delete_floatingip")
    port = s.get(Port, fip.floating_port_id)
    if port is not None:
        s.delete(port)
    tags.clear(s, fip.id)
    s.delete(fip)
    s.flush()


def port_details(s: Session, fip: FloatingIP) -> dict[str, Any] | None:
    """The fip-port-details extension: a summary of the mapped port."""
    port = s.get(Port, fip.fixed_port_id) if fip.fixed_port_id else None
    if port is None:
        return None
    return {
        "name": port.name,
        "network_id": port.network_id,
        "mac_address": port.mac_address,
        "admin_state_up": port.admin_state_up,
        "status": port.status,
        "device_id": port.device_id,
        "device_owner": port.device_owner,
    }


def pools(s: Session, ctx: RequestContext) -> list[dict[str, Any]]:
    """floatingip_pools: every IPv4 subnet of the external networks the caller can see."""
    out: list[dict[str, Any]] = []
    for net in networks.visible_networks(s, ctx):
        if not net.router_external:
            continue
        for subnet in networks.network_subnets(s, net.id):
            if subnet.ip_version == 4:
                out.append(
                    {
                        "subnet_id": subnet.id,
                        "subnet_name": subnet.name,
                        "network_id": net.id,
                        "cidr": subnet.cidr,
                        "tenant_id": subnet.project_id,
                        "project_id": subnet.project_id,
                    }
                )
    return out


def floating_addresses(s: Session, device_ids: list[str]) -> list[tuple[str, str, str, str]]:
    """``(device_id, network name, floating address, mac)`` for the floating IPs mapped to the
    devices' ports: Nova's ``addresses`` list them as ``OS-EXT-IPS:type`` floating."""
    if not device_ids:
        return []
    q = (
        select(Port.device_id, Network.name, FloatingIP.floating_ip_address, Port.mac_address)
        .join(FloatingIP, FloatingIP.fixed_port_id == Port.id)
        .join(Network, Network.id == Port.network_id)
        .where(Port.device_id.in_(device_ids))
        .order_by(Port.created_at, Port.id, FloatingIP.created_at)
    )
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in s.execute(q)]
