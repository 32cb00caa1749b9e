"""Ports: MAC and fixed-IP allocation, security groups, binding and release.

Addresses come from ``ipam.first_free`` over what the subnet has handed out; the unique
``(subnet_id, ip_address)`` in ``port_ips`` is the final arbiter. Each insert runs in a
savepoint, so when a concurrent allocation took the same address (PostgreSQL) the insert
is retried with the next free one instead of failing the request. A released address is
free again at once (the next allocation may return it).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.network import FloatingIP, Network, Port, PortIP, PortSecurityGroup, Router, Subnet
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.network import ipam, port_extras, quotas, security_groups, tags
from novalite.network.networks import get_network, network_subnets, policy_denied

# Each failed insert means a concurrent transaction committed that address, so retrying
# always makes progress; the cap only bounds pathological contention.
_RETRIES = 1000


def port_not_found(port_id: str) -> NotFound:
    return NotFound(f"Port {port_id} could not be found.", kind="PortNotFound")


def visible_ports(s: Session, ctx: RequestContext) -> list[Port]:
    q = select(Port).order_by(Port.created_at, Port.id)
    if not ctx.is_admin:
        q = q.join(Network, Network.id == Port.network_id).where(
            or_(Port.project_id == ctx.project_id, Network.project_id == ctx.project_id)
        )
    return list(s.scalars(q))


def get_port(s: Session, ctx: RequestContext, port_id: str) -> Port:
    port = s.get(Port, port_id)
    if port is None:
        raise port_not_found(port_id)
    if not ctx.is_admin and port.project_id != ctx.project_id:
        net = s.get(Network, port.network_id)
        if net is None or net.project_id != ctx.project_id:
            raise port_not_found(port_id)
    return port


def port_ips(s: Session, port_id: str) -> list[PortIP]:
    return list(s.scalars(select(PortIP).where(PortIP.port_id == port_id).order_by(PortIP.subnet_id)))


def port_group_ids(s: Session, port_id: str) -> list[str]:
    q = select(PortSecurityGroup.security_group_id).where(PortSecurityGroup.port_id == port_id)
    return sorted(s.scalars(q))


def _taken(s: Session, subnet_id: str) -> set[str]:
    return set(s.scalars(select(PortIP.ip_address).where(PortIP.subnet_id == subnet_id)))


def _insert_ip(s: Session, port: Port, subnet: Subnet, address: str) -> bool:
    try:
        with s.begin_nested():
            s.add(PortIP(port_id=port.id, subnet_id=subnet.id, ip_address=address))
            s.flush()
        return True
    except IntegrityError:
        return False


def _allocate_next(s: Session, port: Port, subnet: Subnet) -> str:
    if subnet.ipv6_address_mode in ipam.SLAAC_MODES:
        address = ipam.eui64_address(ipaddress.ip_network(subnet.cidr), port.mac_address)
        if _insert_ip(s, port, subnet, address):
            return address
        raise Conflict(
            f"IP address {address} already allocated in subnet {subnet.id}", kind="IpAddressAlreadyAllocated"
        )
    for _ in range(_RETRIES):
        free = ipam.first_free(subnet.allocation_pools, _taken(s, subnet.id))
        if free is None:
            break
        if _insert_ip(s, port, subnet, free):
            return free
    raise Conflict(
        f"No more IP addresses available for subnet {subnet.id}.", kind="IpAddressGenerationFailure"
    )


def _allocate_fixed(s: Session, port: Port, subnet: Subnet, address: str) -> None:
    ip = ipam.parse_ip(address)
    if ip.version != subnet.ip_version or ip not in ipaddress.ip_network(subnet.cidr):
        raise BadRequest(
            f"IP address {address} is not a valid IP for the specified subnet.", kind="InvalidIpForSubnet"
        )
    if subnet.ipv6_address_mode in ipam.SLAAC_MODES:
        raise BadRequest(
            f"Invalid input for operation: IPv6 address {address} cannot be directly assigned to a "
            f"port on subnet {subnet.id} as the subnet is configured for automatic addresses.",
            kind="InvalidInput",
        )
    if not _insert_ip(s, port, subnet, str(ip)):
        raise Conflict(
            f"IP address {ip} already allocated in subnet {subnet.id}", kind="IpAddressAlreadyAllocated"
        )


def _subnet_for_address(subnets: list[Subnet], address: str) -> Subnet:
    ip = ipam.parse_ip(address)
    for subnet in subnets:
        if ip.version == subnet.ip_version and ip in ipaddress.ip_network(subnet.cidr):
            return subnet
    raise BadRequest(
        f"IP address {address} is not a valid IP for any of the subnets on the specified network.",
        kind="InvalidIpForNetwork",
    )


def _allocate_requested(
    s: Session, port: Port, subnets: list[Subnet], requested: list[dict[str, Any]]
) -> None:
    by_id = {sub.id: sub for sub in subnets}
    for item in requested:
        subnet_id, address = item.get("subnet_id"), item.get("ip_address")
        if subnet_id is not None and subnet_id not in by_id:
            raise BadRequest(
                f"Invalid input for operation: Failed to create port on network {port.network_id}, "
                f"because fixed_ips included invalid subnet {subnet_id}.",
                kind="InvalidInput",
            )
        if subnet_id is None and address is None:
            raise BadRequest(
                "Invalid input for operation: Exceeded maximum amount of fixed ips per port or "
                "no subnet_id or ip_address given.",
                kind="InvalidInput",
            )
        if subnet_id is not None:
            subnet = by_id[subnet_id]
        else:
            assert address is not None
            subnet = _subnet_for_address(subnets, address)
        if address is None:
            _allocate_next(s, port, subnet)
        else:
            _allocate_fixed(s, port, subnet, address)


def _allocate_default(s: Session, port: Port, subnets: list[Subnet]) -> None:
    """Neutron's choice: one IPv4 and one stateful IPv6 address, plus every SLAAC subnet."""
    for version in (4, 6):
        candidates = [
            sub
            for sub in subnets
            if sub.ip_version == version and sub.ipv6_address_mode not in ipam.SLAAC_MODES
        ]
        for subnet in candidates:
            try:
                _allocate_next(s, port, subnet)
                break
            except Conflict:
                continue
        else:
            if candidates:
                raise Conflict(
                    f"No more IP addresses available on network {port.network_id}.",
                    kind="IpAddressGenerationFailure",
                )
    for subnet in subnets:
        if subnet.ipv6_address_mode in ipam.SLAAC_MODES:
            _allocate_next(s, port, subnet)


def _mac(s: Session, network_id: str, requested: str | None) -> str:
    def used(mac: str) -> bool:
        q = select(Port.id).where(Port.network_id == network_id, Port.mac_address == mac)
        return s.scalars(q).first() is not None

    if requested is not None:
        if not ipam.valid_mac(requested):
            raise BadRequest(
                f"Invalid input for mac_address. Reason: '{requested}' is not a valid MAC address.",
                kind="InvalidInput",
            )
        if used(requested.lower()):
            raise Conflict(
                f"Unable to complete operation for network {network_id}. The mac address {requested} "
                "is in use.",
                kind="MacAddressInUse",
            )
        return requested.lower()
    for _ in range(16):
        mac = ipam.random_mac()
        if not used(mac):
            return mac
    raise Conflict(
        f"Unable to generate unique mac on network {network_id}.", kind="MacAddressGenerationFailure"
    )


def set_security_groups(s: Session, port: Port, group_ids: list[str]) -> None:
    for link in s.scalars(select(PortSecurityGroup).where(PortSecurityGroup.port_id == port.id)):
        s.delete(link)
    s.flush()
    for group_id in group_ids:
        s.add(PortSecurityGroup(port_id=port.id, security_group_id=group_id))


def _initial_groups(s: Session, ctx: RequestContext, port: Port, requested: list[str] | None) -> list[str]:
    if requested is not None:
        groups = security_groups.resolve_for_port(s, ctx, port.project_id, requested)
        if groups and not port.port_security_enabled:
            raise BadRequest(
                "Port has security group associated. Cannot disable port security or ip address "
                "until security group is removed.",
                kind="PortSecurityAndIPRequiredForSecurityGroups",
            )
        return groups
    if not port.port_security_enabled or port.device_owner.startswith("network:"):
        return []
    return [security_groups.ensure_default_group(s, port.project_id).id]


ADMIN_ONLY = ("binding:host_id", "binding:profile")  # Neutron's policy: only admins bind ports


def _check_admin_only(ctx: RequestContext, fields: dict[str, Any], action: str) -> None:
    for key in ADMIN_ONLY:
        if key in fields and not ctx.is_admin:
            raise policy_denied(f"rule:{action}_port and rule:{action}_port:{key}")


def create_port(s: Session, ctx: RequestContext, fields: dict[str, Any]) -> Port:
    """Create a port from type-checked API attributes; allocates MAC, addresses and groups."""
    _check_admin_only(ctx, fields, "create")
    net = get_network(s, ctx, fields["network_id"])
    project_id = fields.get("project_id") or ctx.project_id
    if not ctx.is_admin and (
        project_id != ctx.project_id or net.project_id != ctx.project_id and not net.shared
    ):
        raise policy_denied("rule:create_port")
    if "port_security_enabled" in fields and not ctx.is_admin and net.project_id != ctx.project_id:
        # create_port:port_security_enabled is admin or the network's owner (member)
        raise policy_denied("rule:create_port and rule:create_port:port_security_enabled")
    if project_id:  # a router's gateway or a floating IP's port belongs to no project
        quotas.check(s, project_id, "port")
    host = fields.get("binding:host_id") or ""
    port = Port(
        network_id=net.id,
        project_id=project_id,
        name=fields.get("name") or "",
        description=fields.get("description") or "",
        mac_address=_mac(s, net.id, fields.get("mac_address")),
        device_id=fields.get("device_id") or "",
        device_owner=fields.get("device_owner") or "",
        binding_host_id=host,
        binding_profile=fields.get("binding:profile") or {},
        admin_state_up=fields.get("admin_state_up", True),
        vnic_type=fields.get("binding:vnic_type") or "normal",
        # the network's setting unless the port names its own (Neutron's port-security extension)
        port_security_enabled=fields.get("port_security_enabled", net.port_security_enabled),
        status="ACTIVE" if host else "DOWN",
    )
    s.add(port)
    s.flush()
    subnets = network_subnets(s, net.id)
    if fields.get("fixed_ips") is not None:
        _allocate_requested(s, port, subnets, fields["fixed_ips"])
    else:
        _allocate_default(s, port, subnets)
    set_security_groups(s, port, _initial_groups(s, ctx, port, fields.get("security_groups")))
    port.allowed_address_pairs = port_extras.address_pairs(
        fields.get("allowed_address_pairs") or [], port.mac_address, port.port_security_enabled
    )
    port.extra_dhcp_opts = port_extras.dhcp_options([], fields.get("extra_dhcp_opts") or [])
    s.flush()
    return port


def update_port(s: Session, ctx: RequestContext, port: Port, changes: dict[str, Any]) -> None:
    if not ctx.is_admin and port.project_id != ctx.project_id:
        raise policy_denied("rule:update_port")
    _check_admin_only(ctx, changes, "update")
    if "port_security_enabled" in changes and not ctx.is_admin:
        net = s.get(Network, port.network_id)
        if net is None or net.project_id != ctx.project_id:
            raise policy_denied("rule:update_port and rule:update_port:port_security_enabled")
    if "mac_address" in changes:
        if not ctx.is_admin:
            raise policy_denied("rule:update_port:mac_address")
        port.mac_address = _mac(s, port.network_id, changes["mac_address"])
    simple = {
        "name": "name",
        "description": "description",
        "admin_state_up": "admin_state_up",
        "device_id": "device_id",
        "device_owner": "device_owner",
        "binding:vnic_type": "vnic_type",
        "port_security_enabled": "port_security_enabled",
    }
    for key, attr in simple.items():
        if key in changes and changes[key] is not None:
            setattr(port, attr, changes[key])
    if "binding:profile" in changes:
        port.binding_profile = changes["binding:profile"] or {}
    if "binding:host_id" in changes:
        port.binding_host_id = changes["binding:host_id"] or ""
        port.status = "ACTIVE" if port.binding_host_id else "DOWN"
    if changes.get("fixed_ips") is not None:
        for ip in port_ips(s, port.id):
            s.delete(ip)
        s.flush()
        _allocate_requested(s, port, network_subnets(s, port.network_id), changes["fixed_ips"])
    if changes.get("security_groups") is not None:
        groups = security_groups.resolve_for_port(s, ctx, port.project_id, changes["security_groups"])
        if groups and not port.port_security_enabled:
            raise Conflict(
                "Port has security group associated. Cannot disable port security or ip address until "
                "security group is removed.",
                kind="PortSecurityAndIPRequiredForSecurityGroups",
            )
        set_security_groups(s, port, groups)
    elif "port_security_enabled" in changes and not port.port_security_enabled and port_group_ids(s, port.id):
        raise Conflict(
            "Port has security group associated. Cannot disable port security or ip address until "
            "security group is removed.",
            kind="PortSecurityAndIPRequiredForSecurityGroups",
        )
    if changes.get("allowed_address_pairs") is not None:
        port.allowed_address_pairs = port_extras.address_pairs(
            changes["allowed_address_pairs"], port.mac_address, port.port_security_enabled
        )
    if changes.get("extra_dhcp_opts") is not None:
        port.extra_dhcp_opts = port_extras.dhcp_options(
            port.extra_dhcp_opts or [], changes["extra_dhcp_opts"]
        )
    port.revision_number += 1
    s.flush()


L3_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip")


def _l3_owner_exists(s: Session, port: Port) -> bool:
    if port.device_owner == "network:floatingip":
        return s.get(FloatingIP, port.device_id) is not None
    return s.get(Router, port.device_id) is not None


def disassociate_floating_ips(s: Session, port_ids: list[str]) -> None:
    """Neutron unmaps the floating IPs of a port that goes away; they stay allocated."""
    if not port_ids:
        return
    for fip in s.scalars(select(FloatingIP).where(FloatingIP.fixed_port_id.in_(port_ids))):
        fip.fixed_port_id = fip.fixed_ip_address = fip.router_id = None
        fip.status = "DOWN"
        fip.revision_number += 1


def delete_port(s: Session, ctx: RequestContext, port: Port) -> None:
    if not ctx.is_admin and port.project_id != ctx.project_id:
        raise policy_denied("rule:delete_port")
    if port.device_owner in L3_OWNERS and _l3_owner_exists(s, port):
        raise Conflict(
            f"Port {port.id} cannot be deleted directly via the port API: has device owner "
            f"{port.device_owner}.",
            kind="ServicePortInUse",
        )
    disassociate_floating_ips(s, [port.id])
    tags.clear(s, port.id)
    s.delete(port)
    s.flush()
