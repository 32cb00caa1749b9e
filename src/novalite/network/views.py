"""Neutron representations of the network rows (plain dicts; ORM objects stay in the service)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from novalite.db.models.network import Network, Port, SecurityGroup, SecurityGroupRule, Subnet
from novalite.network import networks, ports, security_groups, tags


def stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _common(row: Any, s: Session | None = None) -> dict[str, Any]:
    return {"id": row.id, "tenant_id": row.project_id, "project_id": row.project_id,
            "created_at": stamp(row.created_at), "updated_at": stamp(row.updated_at),
            "revision_number": row.revision_number, "tags": tags.tags_of(s, row.id) if s is not None else []}


def network_view(s: Session, net: Network) -> dict[str, Any]:
    out = _common(net, s)
    out.update({
        "name": net.name, "description": net.description, "status": net.status,
        "admin_state_up": net.admin_state_up, "shared": net.shared, "router:external": net.router_external,
        "mtu": net.mtu, "subnets": [sub.id for sub in networks.network_subnets(s, net.id)],
        "availability_zone_hints": [], "availability_zones": ["nova"], "ipv4_address_scope": None,
        "ipv6_address_scope": None, "port_security_enabled": True, "is_default": False,
        "l2_adjacency": True, "qos_policy_id": None, "dns_domain": "",
    })
    return out


def subnet_view(s: Session, subnet: Subnet) -> dict[str, Any]:
    out = _common(subnet, s)
    out.update({
        "name": subnet.name, "description": subnet.description, "network_id": subnet.network_id,
        "ip_version": subnet.ip_version, "cidr": subnet.cidr, "gateway_ip": subnet.gateway_ip,
        "allocation_pools": list(subnet.allocation_pools), "enable_dhcp": subnet.enable_dhcp,
        "dns_nameservers": list(subnet.dns_nameservers), "host_routes": list(subnet.host_routes),
        "ipv6_ra_mode": subnet.ipv6_ra_mode, "ipv6_address_mode": subnet.ipv6_address_mode,
        "subnetpool_id": None, "service_types": [], "segment_id": None, "dns_publish_fixed_ip": False,
    })
    return out


def port_view(s: Session, port: Port) -> dict[str, Any]:
    out = _common(port, s)
    bound = bool(port.binding_host_id)
    out.update({
        "name": port.name, "description": port.description, "network_id": port.network_id,
        "mac_address": port.mac_address, "admin_state_up": port.admin_state_up, "status": port.status,
        "device_id": port.device_id, "device_owner": port.device_owner,
        "fixed_ips": [{"subnet_id": ip.subnet_id, "ip_address": ip.ip_address} for ip in ports.port_ips(s, port.id)],
        "security_groups": ports.port_group_ids(s, port.id),
        "binding:host_id": port.binding_host_id, "binding:vnic_type": port.vnic_type,
        "binding:vif_type": "ovs" if bound else "unbound",
        "binding:vif_details": {"port_filter": True} if bound else {},
        "binding:profile": dict(port.binding_profile or {}),
        "port_security_enabled": port.port_security_enabled,
        "allowed_address_pairs": [dict(p) for p in port.allowed_address_pairs or []],
        "extra_dhcp_opts": [dict(o) for o in port.extra_dhcp_opts or []], "dns_name": "", "dns_assignment": [], "qos_policy_id": None,
        "qos_network_policy_id": None, "propagate_uplink_status": False,
    })
    return out


def rule_view(rule: SecurityGroupRule) -> dict[str, Any]:
    out = _common(rule)
    del out["tags"]
    prefix = rule.remote_ip_prefix
    out.update({
        "security_group_id": rule.security_group_id, "direction": rule.direction, "ethertype": rule.ethertype,
        "protocol": rule.protocol, "port_range_min": rule.port_range_min, "port_range_max": rule.port_range_max,
        "remote_ip_prefix": prefix, "remote_group_id": rule.remote_group_id, "remote_address_group_id": None,
        "normalized_cidr": prefix, "description": rule.description, "belongs_to_default_sg": None,
    })
    return out


def security_group_view(s: Session, group: SecurityGroup) -> dict[str, Any]:
    out = _common(group, s)
    out.update({
        "name": group.name, "description": group.description, "stateful": group.stateful, "shared": False,
        "security_group_rules": [rule_view(r) for r in security_groups.group_rules(s, group.id)],
    })
    return out
