"""Neutron representations of the network rows (plain dicts; ORM objects stay in the service)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.db.models.network import (
    FloatingIP,
    Network,
    NetworkTag,
    Port,
    PortIP,
    PortSecurityGroup,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)
from novalite.domain.zones import DEFAULT_ZONE
from novalite.network import floating_ips, routers, security_groups


@dataclass
class Related:
    """What the views show beside a row, loaded for a whole list in a few queries."""

    tags: dict[str, list[str]] = field(default_factory=dict)
    subnets: dict[str, list[str]] = field(default_factory=dict)  # network id -> subnet ids
    ips: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # port id -> fixed_ips
    groups: dict[str, list[str]] = field(default_factory=dict)  # port id -> security group ids


CHUNK = 500  # ids per IN (...) list, well under every backend's parameter limit


def load_related(s: Session, ids: Sequence[str], *, kind: str = "") -> Related:
    """Tags of ``ids``; plus subnets (kind "network") or addresses and groups (kind "port")."""
    rel = Related()
    for start in range(0, len(ids), CHUNK):
        _load_chunk(s, rel, list(ids[start : start + CHUNK]), kind)
    return rel


def _load_chunk(s: Session, rel: Related, wanted: list[str], kind: str) -> None:
    for row in s.execute(
        select(NetworkTag.resource_id, NetworkTag.tag)
        .where(NetworkTag.resource_id.in_(wanted))
        .order_by(NetworkTag.tag)
    ):
        rel.tags.setdefault(row[0], []).append(row[1])
    if kind == "network":
        q = select(Subnet.network_id, Subnet.id).where(Subnet.network_id.in_(wanted))
        for net_id, sub_id in s.execute(q.order_by(Subnet.created_at, Subnet.id)):
            rel.subnets.setdefault(net_id, []).append(sub_id)
    if kind == "port":
        q2 = select(PortIP).where(PortIP.port_id.in_(wanted)).order_by(PortIP.subnet_id)
        for ip in s.scalars(q2):
            rel.ips.setdefault(ip.port_id, []).append(
                {"subnet_id": ip.subnet_id, "ip_address": ip.ip_address}
            )
        q3 = select(PortSecurityGroup).where(PortSecurityGroup.port_id.in_(wanted))
        for link in s.scalars(q3):
            rel.groups.setdefault(link.port_id, []).append(link.security_group_id)


def stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _common(row: Any, rel: Related | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant_id": row.project_id,
        "project_id": row.project_id,
        "created_at": stamp(row.created_at),
        "updated_at": stamp(row.updated_at),
        "revision_number": row.revision_number,
        "tags": list(rel.tags.get(row.id, [])) if rel else [],
    }


def network_view(
    s: Session, net: Network, rel: Related | None = None, *, admin: bool = False
) -> dict[str, Any]:
    """``admin``: with the provider:* attributes (``get_network:provider:*`` is admin-only in
    Neutron: others never see them)."""
    rel = rel or load_related(s, [net.id], kind="network")
    out = _common(net, rel)
    out.update(
        {
            "name": net.name,
            "description": net.description,
            "status": net.status,
            "admin_state_up": net.admin_state_up,
            "shared": net.shared,
            "router:external": net.router_external,
            "mtu": net.mtu,
            "subnets": list(rel.subnets.get(net.id, [])),
            "availability_zone_hints": [],
            "availability_zones": [DEFAULT_ZONE],
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "port_security_enabled": net.port_security_enabled,
            "is_default": False,
            "l2_adjacency": True,
            "qos_policy_id": None,
            "dns_domain": "",
        }
    )
    if admin:
        out["provider:network_type"] = net.provider_network_type
        out["provider:physical_network"] = net.provider_physical_network
        out["provider:segmentation_id"] = net.provider_segmentation_id
    return out


def subnet_view(s: Session, subnet: Subnet, rel: Related | None = None) -> dict[str, Any]:
    out = _common(subnet, rel or load_related(s, [subnet.id]))
    out.update(
        {
            "name": subnet.name,
            "description": subnet.description,
            "network_id": subnet.network_id,
            "ip_version": subnet.ip_version,
            "cidr": subnet.cidr,
            "gateway_ip": subnet.gateway_ip,
            "allocation_pools": list(subnet.allocation_pools),
            "enable_dhcp": subnet.enable_dhcp,
            "dns_nameservers": list(subnet.dns_nameservers),
            "host_routes": list(subnet.host_routes),
            "ipv6_ra_mode": subnet.ipv6_ra_mode,
            "ipv6_address_mode": subnet.ipv6_address_mode,
            "subnetpool_id": None,
            "service_types": [],
            "segment_id": None,
            "dns_publish_fixed_ip": False,
        }
    )
    return out


def port_view(s: Session, port: Port, rel: Related | None = None) -> dict[str, Any]:
    rel = rel or load_related(s, [port.id], kind="port")
    out = _common(port, rel)
    bound = bool(port.binding_host_id)
    out.update(
        {
            "name": port.name,
            "description": port.description,
            "network_id": port.network_id,
            "mac_address": port.mac_address,
            "admin_state_up": port.admin_state_up,
            "status": port.status,
            "device_id": port.device_id,
            "device_owner": port.device_owner,
            "fixed_ips": list(rel.ips.get(port.id, [])),
            "security_groups": sorted(rel.groups.get(port.id, [])),
            "binding:host_id": port.binding_host_id,
            "binding:vnic_type": port.vnic_type,
            "binding:vif_type": "ovs" if bound else "unbound",
            "binding:vif_details": {"port_filter": True} if bound else {},
            "binding:profile": dict(port.binding_profile or {}),
            "port_security_enabled": port.port_security_enabled,
            "allowed_address_pairs": [dict(p) for p in port.allowed_address_pairs or []],
            "extra_dhcp_opts": [dict(o) for o in port.extra_dhcp_opts or []],
            "dns_name": "",
            "dns_assignment": [],
            "qos_policy_id": None,
            "qos_network_policy_id": None,
            "propagate_uplink_status": False,
        }
    )
    return out


def rule_view(rule: SecurityGroupRule) -> dict[str, Any]:
    out = _common(rule)
    del out["tags"]
    prefix = rule.remote_ip_prefix
    out.update(
        {
            "security_group_id": rule.security_group_id,
            "direction": rule.direction,
            "ethertype": rule.ethertype,
            "protocol": rule.protocol,
            "port_range_min": rule.port_range_min,
            "port_range_max": rule.port_range_max,
            "remote_ip_prefix": prefix,
            "remote_group_id": rule.remote_group_id,
            "remote_address_group_id": None,
            "normalized_cidr": prefix,
            "description": rule.description,
            "belongs_to_default_sg": None,
        }
    )
    return out


def security_group_view(s: Session, group: SecurityGroup, rel: Related | None = None) -> dict[str, Any]:
    out = _common(group, rel or load_related(s, [group.id]))
    out.update(
        {
            "name": group.name,
            "description": group.description,
            "stateful": group.stateful,
            "shared": False,
            "security_group_rules": [rule_view(r) for r in security_groups.group_rules(s, group.id)],
        }
    )
    return out


def router_view(s: Session, router: Router, rel: Related | None = None) -> dict[str, Any]:
    out = _common(router, rel or load_related(s, [router.id]))
    out.update(
        {
            "name": router.name,
            "description": router.description,
            "status": router.status,
            "admin_state_up": router.admin_state_up,
            "external_gateway_info": routers.gateway_info(s, router),
            "routes": [dict(r) for r in router.routes or []],
            "availability_zone_hints": [],
            "availability_zones": [DEFAULT_ZONE],
        }
    )
    return out


def floating_ip_view(s: Session, fip: FloatingIP, rel: Related | None = None) -> dict[str, Any]:
    out = _common(fip, rel or load_related(s, [fip.id]))
    out.update(
        {
            "floating_ip_address": fip.floating_ip_address,
            "floating_network_id": fip.floating_network_id,
            "router_id": fip.router_id,
            "port_id": fip.fixed_port_id,
            "fixed_ip_address": fip.fixed_ip_address,
            "status": fip.status,
            "description": fip.description,
            "port_details": floating_ips.port_details(s, fip),
        }
    )
    return out
