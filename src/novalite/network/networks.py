"""Networks and subnets: visibility, create/update/delete with Neutron's checks and messages.

Visibility (Neutron's default policy): admins see everything; a project sees its own
networks plus shared and external ones, and the subnets of the networks it can see.
Only the owner (or an admin) may change or delete a network or create subnets on it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.network import Network, Port, PortIP, Subnet
from novalite.errors import BadRequest, Conflict, Forbidden, NotFound
from novalite.network import ipam, quotas, tags


def network_not_found(network_id: str) -> NotFound:
    return NotFound(f"Network {network_id} could not be found.", kind="NetworkNotFound")


def subnet_not_found(subnet_id: str) -> NotFound:
    return NotFound(f"Subnet {subnet_id} could not be found.", kind="SubnetNotFound")


def policy_denied(rule: str) -> Forbidden:
    """Neutron's 403: the match rule's text, in parentheses when it joins several checks."""
    text = f"({rule})" if " and " in rule else rule
    return Forbidden(f"{text} is disallowed by policy", kind="PolicyNotAuthorized")


def can_see(ctx: RequestContext, net: Network) -> bool:
    return ctx.is_admin or net.project_id == ctx.project_id or net.shared or net.router_external


def visible_networks(s: Session, ctx: RequestContext) -> list[Network]:
    q = select(Network).order_by(Network.created_at, Network.id)
    if not ctx.is_admin:
        q = q.where(
            or_(
                Network.project_id == ctx.project_id,
                Network.shared.is_(True),
                Network.router_external.is_(True),
            )
        )
    return list(s.scalars(q))


def get_network(s: Session, ctx: RequestContext, network_id: str) -> Network:
    net = s.get(Network, network_id)
    if net is None or not can_see(ctx, net):
        raise network_not_found(network_id)
    return net


def require_owner(ctx: RequestContext, project_id: str, rule: str) -> None:
    if not ctx.is_admin and project_id != ctx.project_id:
        raise policy_denied(rule)


# Neutron's network attributes with ``enforce_policy`` (neutron/conf/policies/network.py), in the
# order its match rule adds them; all admin-only but port_security_enabled (admin or member).
POLICY_ATTRS = (
    "shared",
    "router:external",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    "port_security_enabled",
    "is_default",
)
ADMIN_ONLY = frozenset(POLICY_ATTRS) - {"port_security_enabled"}
# on create an attribute is checked only when it differs from its default (policy-and-tokens §3.1)
_DEFAULTS: dict[str, Any] = {"shared": False, "router:external": False, "is_default": False}
_NO_DEFAULT = object()


def check_attribute_policy(ctx: RequestContext, action: str, fields: dict[str, Any], *, update: bool) -> None:
    """Refuse, don't drop: a non-admin setting an admin-only attribute gets Neutron's 403, whose
    message is the whole match rule (``rule:<action>`` and one ``rule:<action>:<attr>`` per
    attribute set)."""
    if ctx.is_admin:
        return
    checked = [
        key
        for key in POLICY_ATTRS
        if key in fields and (update or fields[key] != _DEFAULTS.get(key, _NO_DEFAULT))
    ]
    if not ADMIN_ONLY.intersection(checked):
        return
    rule = f"rule:{action}"
    for key in checked:
        rule = f"({rule} and rule:{action}:{key})"
    raise Forbidden(f"{rule} is disallowed by policy", kind="PolicyNotAuthorized")


UNDERLAY_MTU = 1500  # Neutron's global_physnet_mtu default: the hosts' own network
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 (network/dataplane/l2_vxlan.py)


def default_mtu(fields: dict[str, Any]) -> int:
    """Neutron's MTU for a new network: a tenant network's bridges on several hosts are joined by
    VXLAN, so it gets the underlay's less VXLAN's 50 bytes (1450); an external, flat or VLAN one
    the underlay's. The guests learn it by DHCP (option 26) and the bridges and VXLAN devices
    carry it."""
    if fields.get("router:external") or fields.get("provider:network_type") in ("flat", "vlan"):
        return UNDERLAY_MTU
    return UNDERLAY_MTU - VXLAN_OVERHEAD


def create_network(s: Session, ctx: RequestContext, fields: dict[str, Any]) -> Network:
    """``fields`` are type-checked API attributes (name, shared, router:external, mtu, ...)."""
    project_id = fields.get("project_id") or ctx.project_id
    require_owner(ctx, project_id, "rule:create_network")
    check_attribute_policy(ctx, "create_network", fields, update=False)
    if fields.get("is_default"):
        raise BadRequest("Invalid input for operation: is_default is not supported.", kind="InvalidInput")
    quotas.check(s, project_id, "network")
    net = Network(
        name=fields.get("name") or "",
        project_id=project_id,
        shared=bool(fields.get("shared")),
        router_external=bool(fields.get("router:external")),
        admin_state_up=fields.get("admin_state_up", True),
        mtu=fields.get("mtu") or default_mtu(fields),
        description=fields.get("description") or "",
        port_security_enabled=fields.get("port_security_enabled", True),
        provider_network_type=fields.get("provider:network_type"),
        provider_physical_network=fields.get("provider:physical_network"),
        provider_segmentation_id=fields.get("provider:segmentation_id"),
    )
    s.add(net)
    s.flush()
    return net


def update_network(s: Session, ctx: RequestContext, net: Network, changes: dict[str, Any]) -> None:
    require_owner(ctx, net.project_id, "rule:update_network")
    check_attribute_policy(ctx, "update_network", changes, update=True)
    if changes.get("is_default"):
        raise BadRequest("Invalid input for operation: is_default is not supported.", kind="InvalidInput")
    mapping = {
        "name": "name",
        "description": "description",
        "admin_state_up": "admin_state_up",
        "mtu": "mtu",
        "shared": "shared",
        "router:external": "router_external",
        "port_security_enabled": "port_security_enabled",
    }
    for key, attr in mapping.items():
        if key in changes and changes[key] is not None:
            setattr(net, attr, changes[key])
    provider = {
        "provider:network_type": "provider_network_type",
        "provider:physical_network": "provider_physical_network",
        "provider:segmentation_id": "provider_segmentation_id",
    }
    for key, attr in provider.items():
        if key in changes:
            setattr(net, attr, changes[key])
    net.revision_number += 1


# ports Neutron deletes with their network or subnet; any other port (a server's, a router's
# interface or gateway, a floating IP's) keeps the network in use
AUTO_DELETED_OWNERS = ("network:dhcp", "network:distributed")


def _user_ports(s: Session, network_id: str) -> list[Port]:
    q = select(Port).where(Port.network_id == network_id)
    return [p for p in s.scalars(q) if p.device_owner not in AUTO_DELETED_OWNERS]


def delete_network(s: Session, ctx: RequestContext, net: Network) -> None:
    require_owner(ctx, net.project_id, "rule:delete_network")
    if _user_ports(s, net.id):
        raise Conflict(
            f"Unable to complete operation on network {net.id}. There are one or more ports still "
            "in use on the network.",
            kind="NetworkInUse",
        )
    doomed: list[str] = [net.id]
    for port in s.scalars(select(Port).where(Port.network_id == net.id)):
        doomed.append(port.id)
        s.delete(port)
    for subnet in s.scalars(select(Subnet).where(Subnet.network_id == net.id)):
        doomed.append(subnet.id)
        s.delete(subnet)
    s.flush()
    tags.clear(s, *doomed)
    s.delete(net)


def network_subnets(s: Session, network_id: str) -> list[Subnet]:
    q = select(Subnet).where(Subnet.network_id == network_id).order_by(Subnet.created_at, Subnet.id)
    return list(s.scalars(q))


def visible_subnets(s: Session, ctx: RequestContext) -> list[Subnet]:
    q = select(Subnet).order_by(Subnet.created_at, Subnet.id)
    if not ctx.is_admin:
        q = q.join(Network, Network.id == Subnet.network_id).where(
            or_(
                Subnet.project_id == ctx.project_id,
                Network.project_id == ctx.project_id,
                Network.shared.is_(True),
                Network.router_external.is_(True),
            )
        )
    return list(s.scalars(q))


def get_subnet(s: Session, ctx: RequestContext, subnet_id: str) -> Subnet:
    subnet = s.get(Subnet, subnet_id)
    if subnet is None:
        raise subnet_not_found(subnet_id)
    net = s.get(Network, subnet.network_id)
    if net is None or not (ctx.is_admin or subnet.project_id == ctx.project_id or can_see(ctx, net)):
        raise subnet_not_found(subnet_id)
    return subnet


def _invalid(reason: str) -> BadRequest:
    return BadRequest(f"Invalid input for operation: {reason}", kind="InvalidInput")


def _check_ipv6_modes(fields: dict[str, Any], net: ipam.IPNetwork) -> tuple[str | None, str | None]:
    ra, addr = fields.get("ipv6_ra_mode"), fields.get("ipv6_address_mode")
    if net.version == 4:
        if ra is not None or addr is not None:
            raise _invalid("ipv6_ra_mode or ipv6_address_mode cannot be set when ip_version is 4.")
        return None, None
    if ra is not None and addr is not None and ra != addr:
        raise _invalid(
            f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{addr}' is not valid. "
            "If both attributes are set, they must be the same value."
        )
    if (addr in ipam.SLAAC_MODES or ra in ipam.SLAAC_MODES) and net.prefixlen != 64:
        raise _invalid(
            f"Invalid CIDR {net} for IPv6 address mode. OpenStack uses the EUI-64 address format, "
            "which requires the prefix to be /64."
        )
    return ra, addr


def _gateway(fields: dict[str, Any], net: ipam.IPNetwork) -> str | None:
    if "gateway_ip" not in fields:
        return ipam.default_gateway(net)
    gw = fields["gateway_ip"]
    if gw is None:
        return None
    address = ipam.parse_ip(gw, "gateway_ip")
    bad_v4 = net.version == 4 and address in (net.network_address, net.broadcast_address)
    if address.version != net.version or address not in net or bad_v4:
        raise _invalid(f"Gateway is not valid on subnet: {gw}")
    return str(address)


def create_subnet(s: Session, ctx: RequestContext, fields: dict[str, Any]) -> Subnet:
    net = get_network(s, ctx, fields["network_id"])
    require_owner(ctx, net.project_id, "rule:create_subnet")
    cidr = ipam.parse_cidr(fields["cidr"], fields["ip_version"])
    for other in network_subnets(s, net.id):
        if ipaddress.ip_network(other.cidr).overlaps(cidr):  # type: ignore[arg-type]
            raise _invalid(
                f"Requested subnet with cidr: {cidr} for network: {net.id} overlaps with another subnet."
            )
    ra, addr = _check_ipv6_modes(fields, cidr)
    gateway = _gateway(fields, cidr)
    pools = fields.get("allocation_pools")
    pools = ipam.check_pools(cidr, pools, gateway) if pools else ipam.default_pools(cidr, gateway)
    for server in fields.get("dns_nameservers") or []:
        ipam.parse_ip(server, "dns_nameservers")
    project_id = fields.get("project_id") or net.project_id
    quotas.check(s, project_id, "subnet")
    subnet = Subnet(
        name=fields.get("name") or "",
        network_id=net.id,
        project_id=project_id,
        ip_version=cidr.version,
        cidr=str(cidr),
        gateway_ip=gateway,
        allocation_pools=pools,
        enable_dhcp=fields.get("enable_dhcp", True),
        dns_nameservers=fields.get("dns_nameservers") or [],
        host_routes=fields.get("host_routes") or [],
        ipv6_ra_mode=ra,
        ipv6_address_mode=addr,
        description=fields.get("description") or "",
    )
    s.add(subnet)
    s.flush()
    if addr in ipam.SLAAC_MODES:  # existing ports get their autoconfigured address, as in Neutron
        for port in s.scalars(select(Port).where(Port.network_id == net.id)):
            s.add(
                PortIP(
                    port_id=port.id,
                    subnet_id=subnet.id,
                    ip_address=ipam.eui64_address(cidr, port.mac_address),
                )
            )
    return subnet


def update_subnet(s: Session, ctx: RequestContext, subnet: Subnet, changes: dict[str, Any]) -> None:
    require_owner(ctx, subnet.project_id, "rule:update_subnet")
    cidr = ipaddress.ip_network(subnet.cidr)
    if "gateway_ip" in changes:
        subnet.gateway_ip = _gateway(changes, cidr)
    if changes.get("allocation_pools"):
        subnet.allocation_pools = ipam.check_pools(cidr, changes["allocation_pools"], subnet.gateway_ip)
    for server in changes.get("dns_nameservers") or []:
        ipam.parse_ip(server, "dns_nameservers")
    for key in ("name", "description", "enable_dhcp", "dns_nameservers", "host_routes"):
        if key in changes and changes[key] is not None:
            setattr(subnet, key, changes[key])
    subnet.revision_number += 1


def delete_subnet(s: Session, ctx: RequestContext, subnet: Subnet) -> None:
    require_owner(ctx, subnet.project_id, "rule:delete_subnet")
    q = select(Port).join(PortIP, PortIP.port_id == Port.id).where(PortIP.subnet_id == subnet.id)
    if any(p.device_owner not in AUTO_DELETED_OWNERS for p in s.scalars(q)):
        raise Conflict(
            f"Unable to complete operation on subnet {subnet.id}: One or more ports have an IP "
            "allocation from this subnet.",
            kind="SubnetInUse",
        )
    tags.clear(s, subnet.id)
    s.delete(subnet)
